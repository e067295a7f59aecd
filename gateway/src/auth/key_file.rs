//! Private key files: the TOML a channel (or an issuer) keeps its signing key in, and the
//! public half in the catalog's form.
//!
//! ```toml
//! key_id = "gate-2026"
//! algorithm = "sm2"            # ed25519 | sm2 | hmac_sha256 | hmac_sm3
//! private_key = "base64..."    # Ed25519: 32-byte seed; SM2: 32-byte scalar; HMAC: the secret
//! ```
//!
//! Unknown keys are refused. Files are written readable by their owner only and never
//! overwritten.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use onecard_catalog::model::{ActiveStatus, ChannelKey, IssuerKey, KeyAlgorithm, Timestamp};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keys::{KeyError, SigningKey, algorithm_name, to_issuer_algorithm};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong (never the key).
        message: String,
    },
    /// The key itself is unusable.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        source: KeyError,
    },
}

/// The file's TOML form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileToml {
    key_id: String,
    algorithm: KeyAlgorithm,
    private_key: String,
}

/// A signing key with its id, as kept in a key file.
#[derive(Clone)]
pub struct SigningKeyFile {
    /// Key id (a catalog key id).
    pub key_id: String,
    /// The key.
    pub key: SigningKey,
}

impl fmt::Debug for SigningKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyFile").field("key_id", &self.key_id).field("key", &self.key).finish()
    }
}

impl SigningKeyFile {
    /// A freshly generated key.
    pub fn generate(key_id: impl Into<String>, algorithm: KeyAlgorithm) -> SigningKeyFile {
        SigningKeyFile { key_id: key_id.into(), key: SigningKey::generate(algorithm) }
    }

    /// Parses key-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SigningKeyFile, KeyFileError> {
        let format = |message: String| KeyFileError::Format { path: origin.to_string(), message };
        // toml's messages quote the offending line, which could hold the key: keep only the
        // first line of the message (kind and position).
        let parsed: KeyFileToml = toml::from_str(text)
            .map_err(|e| format(e.message().lines().next().unwrap_or("malformed key file").to_string()))?;
        onecard_catalog::ids::validate_slug("key id", &parsed.key_id).map_err(format)?;
        let bytes =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(parsed.private_key.trim()).map_err(
                |_| KeyFileError::Key { path: origin.to_string(), source: KeyError::Base64("private_key") },
            )?);
        let key = SigningKey::from_bytes(parsed.algorithm, &bytes)
            .map_err(|source| KeyFileError::Key { path: origin.to_string(), source })?;
        Ok(SigningKeyFile { key_id: parsed.key_id, key })
    }

    /// Reads a key file.
    pub fn read(path: &Path) -> Result<SigningKeyFile, KeyFileError> {
        let shown = path.display().to_string();
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: shown.clone(), source })?,
        );
        SigningKeyFile::parse(&text, &shown)
    }

    /// The file's text.
    pub fn to_toml(&self) -> Zeroizing<String> {
        let private_key =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.key.to_bytes().as_slice()));
        Zeroizing::new(format!(
            "# onecard private signing key: keep secret, never commit.\nkey_id = \"{}\"\nalgorithm = \"{}\"\nprivate_key = \"{}\"\n",
            self.key_id,
            algorithm_name(self.key.algorithm()),
            private_key.as_str()
        ))
    }

    /// Writes a new key file (mode 0600 on Unix); an existing file is never overwritten.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_toml().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The catalog's channel key for this key, valid over `[not_before, not_after)`. For HMAC
    /// keys the shared secret goes into `secret`: such a value is secret too.
    pub fn channel_key(&self, not_before: Timestamp, not_after: Timestamp) -> ChannelKey {
        let algorithm = self.key.algorithm();
        ChannelKey {
            key_id: self.key_id.clone(),
            algorithm,
            public_key: self.key.public_key_base64(),
            secret: algorithm
                .is_symmetric()
                .then(|| base64::engine::general_purpose::STANDARD.encode(self.key.to_bytes().as_slice())),
            not_before,
            not_after,
        }
    }

    /// The catalog's issuer key for this key; `None` for HMAC keys, which cannot sign
    /// credentials.
    pub fn issuer_key(
        &self,
        issuer: impl Into<String>,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Option<IssuerKey> {
        Some(IssuerKey {
            key_id: self.key_id.clone(),
            issuer: issuer.into(),
            algorithm: to_issuer_algorithm(self.key.algorithm())?,
            public_key: self.key.public_key_base64()?,
            not_before,
            not_after,
            status: ActiveStatus::Active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_for_every_algorithm() {
        let dir = tempfile::tempdir().expect("tempdir");
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2, KeyAlgorithm::HmacSha256, KeyAlgorithm::HmacSm3] {
            let file = SigningKeyFile::generate("k-1", alg);
            let path = dir.path().join(format!("{}.toml", algorithm_name(alg)));
            file.write_new(&path).expect("written");
            let back = SigningKeyFile::read(&path).expect("read");
            assert_eq!(back.key_id, "k-1");
            assert_eq!(back.key.algorithm(), alg);
            assert!(back.key.verifying_key().verify(b"m", &file.key.sign(b"m")), "{alg:?}");
            assert!(matches!(file.write_new(&path), Err(KeyFileError::Io { .. })), "never overwrites");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
                assert_eq!(mode & 0o077, 0, "owner-only");
            }
        }
    }

    #[test]
    fn unknown_fields_and_bad_keys_are_refused_without_echoing_the_key() {
        let good = SigningKeyFile::generate("k", KeyAlgorithm::Ed25519).to_toml();
        let extra = format!("{}comment = \"x\"\n", good.as_str());
        let err = SigningKeyFile::parse(&extra, "f.toml").expect_err("unknown field");
        assert!(matches!(err, KeyFileError::Format { .. }), "{err}");
        let bad = "key_id = \"k\"\nalgorithm = \"sm2\"\nprivate_key = \"AAAA\"\n";
        assert!(matches!(SigningKeyFile::parse(bad, "f"), Err(KeyFileError::Key { .. })));
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"; // not 32 bytes for ed25519
        let wrong = format!("key_id = \"k\"\nalgorithm = \"ed25519\"\nprivate_key = \"{secret}\"\n");
        let err = SigningKeyFile::parse(&wrong, "f").expect_err("wrong length");
        assert!(!err.to_string().contains(secret), "{err}");
        let typo = format!("key_id = \"k\"\nalgorithm = \"ed25519\"\nprivate_key = {secret}\n");
        let err = SigningKeyFile::parse(&typo, "f").expect_err("unquoted");
        assert!(!err.to_string().contains(secret), "{err}");
        assert!(matches!(
            SigningKeyFile::parse("key_id = \"K\"\nalgorithm = \"ed25519\"\nprivate_key = \"\"\n", "f"),
            Err(KeyFileError::Format { .. })
        ));
    }

    #[test]
    fn public_halves_in_the_catalog_form() {
        let now = onecard_catalog::model::now();
        let later = now + chrono::Duration::days(365);
        let sm2 = SigningKeyFile::generate("iss-1", KeyAlgorithm::Sm2);
        let ck = sm2.channel_key(now, later);
        assert!(ck.secret.is_none());
        assert_eq!(ck.public_key, sm2.key.public_key_base64());
        let ik = sm2.issuer_key("platform", now, later).expect("asymmetric");
        assert_eq!(ik.algorithm, onecard_catalog::model::IssuerAlgorithm::Sm2);
        let hmac = SigningKeyFile::generate("h", KeyAlgorithm::HmacSm3);
        assert!(hmac.issuer_key("platform", now, later).is_none());
        let ck = hmac.channel_key(now, later);
        assert!(ck.public_key.is_none() && ck.secret.is_some());
        assert!(
            super::super::keys::VerifyingKey::from_channel_key(&ck).expect("usable").verify(b"m", &hmac.key.sign(b"m"))
        );
    }
}
