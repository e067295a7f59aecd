//! The private half of an issuer trust anchor: the key a card platform (or a test, or the
//! `onecard card token` command) mints credentials with.

use std::path::Path;

use crate::auth::keys::{SigningKey, algorithm_name, to_issuer_algorithm};
use crate::auth::{KeyFileError, SigningKeyFile};

use super::error::MintError;

/// An Ed25519 or SM2 key that signs card credentials.
#[derive(Debug, Clone)]
pub struct IssuerSigningKey {
    key_id: String,
    key: SigningKey,
}

/// Why an issuer key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerKeyError {
    /// The file.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The key's algorithm.
    #[error(transparent)]
    Algorithm(#[from] MintError),
}

impl IssuerSigningKey {
    /// An issuer key; HMAC keys are refused.
    pub fn new(key_id: impl Into<String>, key: SigningKey) -> Result<IssuerSigningKey, MintError> {
        let key_id = key_id.into();
        onecard_catalog::ids::validate_slug("key id", &key_id).map_err(MintError::InvalidClaims)?;
        if to_issuer_algorithm(key.algorithm()).is_none() {
            return Err(MintError::WrongAlgorithm(algorithm_name(key.algorithm())));
        }
        Ok(IssuerSigningKey { key_id, key })
    }

    /// Reads an issuer key from a key file.
    pub fn read(path: &Path) -> Result<IssuerSigningKey, IssuerKeyError> {
        let file = SigningKeyFile::read(path)?;
        Ok(IssuerSigningKey::new(file.key_id, file.key)?)
    }

    /// The key id carried in credentials.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }
}

impl TryFrom<SigningKeyFile> for IssuerSigningKey {
    type Error = MintError;

    fn try_from(file: SigningKeyFile) -> Result<Self, Self::Error> {
        IssuerSigningKey::new(file.key_id, file.key)
    }
}
