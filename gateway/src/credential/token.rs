//! Minting and checking card credential tokens: `v1.<payload>.<signature>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use onecard_catalog::model::{ActiveStatus, IssuerKey};

use super::error::{CredentialError, MintError};
use super::issuer::IssuerSigningKey;
use super::payload::{CredentialClaims, Payload};
use crate::auth::NonceStore;
use crate::auth::keys::VerifyingKey;

/// Longest token accepted or minted, bytes.
pub const MAX_TOKEN_LEN: usize = 512;
/// The version prefix, with its separator.
const PREFIX: &str = "v1.";
/// The nonce-store scope of spent credentials.
pub const CREDENTIAL_NONCE_SCOPE: &str = "credential";

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// A credential whose signature, issuer and validity window were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCredential {
    /// The issuer key that signed.
    pub key_id: String,
    /// Who holds that key (from the catalog).
    pub issuer: String,
    /// The claims.
    pub claims: CredentialClaims,
}

impl VerifiedCredential {
    /// The value spent in the [`CREDENTIAL_NONCE_SCOPE`] scope: issuer key id and nonce.
    pub fn replay_key(&self) -> String {
        format!("{}/{}", self.key_id, b64url().encode(&self.claims.nonce))
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Mints a credential token for `claims` with `key`.
pub fn mint(key: &IssuerSigningKey, claims: &CredentialClaims) -> Result<String, MintError> {
    let payload = Payload { key_id: key.key_id().to_string(), claims: claims.clone() };
    payload.validate().map_err(MintError::InvalidClaims)?;
    let mut token = format!("{PREFIX}{}", b64url().encode(payload.encode()));
    let signature = key.key().sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64url().encode(signature));
    if token.len() > MAX_TOKEN_LEN {
        return Err(MintError::InvalidClaims(format!(
            "the token would have {} bytes, more than {MAX_TOKEN_LEN}",
            token.len()
        )));
    }
    Ok(token)
}

/// Checks a token: size, form, issuer key (known, active, valid at `now`), signature, then the
/// validity window `[issued_at − skew, issued_at + validity + skew)`. Does not spend it: see
/// [`redeem`].
pub fn verify(
    token: &str,
    issuer_keys: &[IssuerKey],
    now: SystemTime,
    skew: Duration,
) -> Result<VerifiedCredential, CredentialError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(CredentialError::TooLarge { len: token.len(), max: MAX_TOKEN_LEN });
    }
    let rest = token.strip_prefix(PREFIX).ok_or_else(|| CredentialError::Malformed("not a v1 token".into()))?;
    let (payload_b64, signature_b64) =
        rest.split_once('.').ok_or_else(|| CredentialError::Malformed("a token has three parts".into()))?;
    let signed_len = PREFIX.len() + payload_b64.len();
    let payload_bytes = b64url()
        .decode(payload_b64)
        .map_err(|_| CredentialError::Malformed("the payload is not unpadded base64url".into()))?;
    let signature = b64url()
        .decode(signature_b64)
        .map_err(|_| CredentialError::Malformed("the signature is not unpadded base64url".into()))?;
    let payload = Payload::decode(&payload_bytes)?;

    let now_utc = chrono::DateTime::<chrono::Utc>::from(now);
    let untrusted = || CredentialError::IssuerUntrusted { key_id: payload.key_id.clone() };
    let anchor = issuer_keys
        .iter()
        .find(|k| {
            k.key_id == payload.key_id
                && k.status == ActiveStatus::Active
                && k.not_before <= now_utc
                && now_utc < k.not_after
        })
        .ok_or_else(untrusted)?;
    let verifying = VerifyingKey::from_issuer_key(anchor).map_err(|e| {
        tracing::warn!(key_id = %anchor.key_id, error = %e, "issuer key in the catalog is unusable");
        untrusted()
    })?;
    if !verifying.verify(&token.as_bytes()[..signed_len], &signature) {
        return Err(CredentialError::SignatureInvalid);
    }

    let now_secs = unix_secs(now);
    let skew = skew.as_secs();
    let claims = payload.claims;
    if now_secs.saturating_add(skew) < claims.issued_at {
        return Err(CredentialError::NotYetValid { issued_at: claims.issued_at, now: now_secs });
    }
    if now_secs >= claims.expires_at().saturating_add(skew) {
        return Err(CredentialError::Expired { expires_at: claims.expires_at(), now: now_secs });
    }
    Ok(VerifiedCredential { key_id: payload.key_id, issuer: anchor.issuer.clone(), claims })
}

/// [`verify`], then spends the credential: single use through `nonces` in the
/// [`CREDENTIAL_NONCE_SCOPE`] scope, remembered for the remaining validity plus `skew`. A
/// refused token spends nothing.
pub async fn redeem(
    token: &str,
    issuer_keys: &[IssuerKey],
    nonces: &dyn NonceStore,
    now: SystemTime,
    skew: Duration,
) -> Result<VerifiedCredential, CredentialError> {
    let verified = verify(token, issuer_keys, now, skew)?;
    spend(&verified, nonces, now, skew).await?;
    Ok(verified)
}

/// Spends a credential [`verify`] accepted: single use in the [`CREDENTIAL_NONCE_SCOPE`]
/// scope, remembered for its remaining validity plus `skew`. The gateway verifies early (the
/// card holder keys its rate limiter) and spends only once every earlier step passed.
pub async fn spend(
    verified: &VerifiedCredential,
    nonces: &dyn NonceStore,
    now: SystemTime,
    skew: Duration,
) -> Result<(), CredentialError> {
    let until = verified.claims.expires_at().saturating_add(skew.as_secs());
    let ttl = Duration::from_secs(until.saturating_sub(unix_secs(now)).max(1));
    nonces.check_and_remember(CREDENTIAL_NONCE_SCOPE, &verified.replay_key(), ttl).await?;
    Ok(())
}
