//! Demo card tokens. The electronic card's dynamic QR code is a token signed by the card
//! platform's issuer key (format: `onecard_gateway::credential`). A venue scans it; it never
//! mints one. For demos and tests this mints tokens with a published test issuer key, so a
//! sample call can run without a phone.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use onecard_gateway::auth::SigningKeyFile;
use onecard_gateway::credential::{CredentialClaims, IssuerSigningKey, mint};

use crate::ClientError;

/// Mints card tokens with a test issuer key.
#[derive(Debug, Clone)]
pub struct DemoIssuer {
    key: IssuerSigningKey,
}

impl DemoIssuer {
    /// From a key file (`SigningKeyFile` TOML, Ed25519 or SM2).
    pub fn from_key_file(path: &Path) -> Result<DemoIssuer, ClientError> {
        let file = SigningKeyFile::read(path).map_err(|e| ClientError::IssuerKey(e.to_string()))?;
        let key = IssuerSigningKey::new(file.key_id, file.key).map_err(|e| ClientError::IssuerKey(e.to_string()))?;
        Ok(DemoIssuer { key })
    }

    /// A token for the card `card_ref` issued in `region` (six digits), issued now, valid
    /// `validity_secs` (1–60).
    pub fn token(&self, card_ref: &str, region: &str, validity_secs: u8) -> Result<String, ClientError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = CredentialClaims::new(card_ref, region, now, validity_secs);
        mint(&self.key, &claims).map_err(|e| ClientError::Input(format!("cannot mint a token for card {card_ref:?}: {e}")))
    }
}
