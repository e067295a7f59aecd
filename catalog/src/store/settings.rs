//! The catalog's own secrets, kept in the database: the Ed25519 key that signs snapshots and
//! the key of the SSN hash (card references). Created once, never exported.

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use super::Store;
use crate::error::{Error, Result, codes};
use crate::ids;

const SIGNING_KEY: &str = "snapshot_signing_key";
const SSN_KEY: &str = "ssn_hash_key";

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Store {
    /// Creates the catalog's keys if they do not exist yet (idempotent).
    pub(crate) async fn ensure_keys(&self) -> Result<()> {
        for key in [SIGNING_KEY, SSN_KEY] {
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(random_hex())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn secret(&self, key: &str) -> Result<[u8; 32]> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let v = v.ok_or_else(|| Error::refused(crate::error::Refusal::Conflict, codes::NOT_INITIALISED, "the catalog has no keys yet"))?;
        hex::decode(&v)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| Error::Internal(format!("setting {key} is corrupt")))
    }

    /// The key that signs snapshots.
    pub async fn signing_key(&self) -> Result<SigningKey> {
        Ok(SigningKey::from_bytes(&self.secret(SIGNING_KEY).await?))
    }

    /// The card reference of a social security number: HMAC-SHA256 under the catalog's key,
    /// hex. Refuses an invalid number.
    pub async fn card_ref(&self, ssn: &str) -> Result<String> {
        let ssn = ids::validate_ssn(ssn).map_err(|e| Error::bad_request(codes::INVALID_SSN, e))?;
        let key = self.secret(SSN_KEY).await?;
        let mut mac = <Hmac<Sha256>>::new_from_slice(&key).map_err(|e| Error::Internal(e.to_string()))?;
        mac.update(ssn.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}
