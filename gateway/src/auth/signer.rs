//! The client side of channel authentication: signs a request the way
//! [`authenticate`](super::authenticate) checks it. Used by the venue client, the tests and the load script.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};

use super::canonical::CanonicalRequest;
use super::headers::{self, header_name};
use super::keys::SigningKey;

/// Why a signer could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The channel number is not ten digits.
    #[error("{0}")]
    Channel(String),
    /// The key id is not a catalog key id.
    #[error("{0}")]
    KeyId(String),
}

/// Signs requests for one channel key.
#[derive(Debug, Clone)]
pub struct RequestSigner {
    channel: String,
    key_id: String,
    key: SigningKey,
}

/// The five header values of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-Onecard-Channel`.
    pub channel: String,
    /// `X-Onecard-Key-Id`.
    pub key_id: String,
    /// `X-Onecard-Timestamp`.
    pub timestamp: String,
    /// `X-Onecard-Nonce`.
    pub nonce: String,
    /// `X-Onecard-Signature`.
    pub signature: String,
}

impl SignatureHeaders {
    /// `(name, value)` pairs, in [`headers::ALL`] order.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            (headers::CHANNEL, &self.channel),
            (headers::KEY_ID, &self.key_id),
            (headers::TIMESTAMP, &self.timestamp),
            (headers::NONCE, &self.nonce),
            (headers::SIGNATURE, &self.signature),
        ]
    }

    /// Sets the five headers on `map`, replacing any earlier values.
    pub fn apply_to(&self, map: &mut HeaderMap) {
        for (name, value) in self.pairs() {
            // Every value is ASCII digits, a slug, a nonce or base64: always a valid header value.
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(header_name(name), value);
            }
        }
    }
}

/// A fresh random nonce: 22 characters of base64url (16 random bytes).
pub fn random_nonce() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

impl RequestSigner {
    /// A signer for `key_id` of channel `channel`.
    pub fn new(
        channel: impl Into<String>,
        key_id: impl Into<String>,
        key: SigningKey,
    ) -> Result<RequestSigner, SignerError> {
        let channel = channel.into();
        let key_id = key_id.into();
        onecard_catalog::ids::validate_channel_id(&channel).map_err(SignerError::Channel)?;
        onecard_catalog::ids::validate_slug("key id", &key_id).map_err(SignerError::KeyId)?;
        Ok(RequestSigner { channel, key_id, key })
    }

    /// The channel number.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs with an explicit timestamp (unix seconds) and nonce (16–64 of `[A-Za-z0-9_-]`).
    pub fn sign_at(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: u64,
        nonce: &str,
    ) -> SignatureHeaders {
        let timestamp = timestamp.to_string();
        let canonical = CanonicalRequest {
            method,
            path_and_query,
            channel: &self.channel,
            key_id: &self.key_id,
            timestamp: &timestamp,
            nonce,
            body,
        }
        .to_string_for(self.key.algorithm());
        let signature = base64::engine::general_purpose::STANDARD.encode(self.key.sign(canonical.as_bytes()));
        SignatureHeaders {
            channel: self.channel.clone(),
            key_id: self.key_id.clone(),
            timestamp,
            nonce: nonce.to_string(),
            signature,
        }
    }

    /// Signs with the current time and a random nonce.
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> SignatureHeaders {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.sign_at(method, path_and_query, body, now, &random_nonce())
    }
}

#[cfg(test)]
mod tests {
    use onecard_catalog::model::KeyAlgorithm;

    use super::*;

    /// Vectors computed independently (Python `hmac` + `hashlib`, OpenSSL's SM3), also given
    /// to venue implementers in the module documentation.
    #[test]
    fn hmac_signatures_match_independent_vectors() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let body = br#"{"credential":"v1.x.y"}"#;
        for (alg, expected) in [
            (KeyAlgorithm::HmacSha256, "dOP45vkBw7Cr5hvZ4OYYWR4+wZNhhIajoOIoqQxZwJU="),
            (KeyAlgorithm::HmacSm3, "cOm4eb4RQbuJzNPZEbxCWDHNU/JhKhumYfpkbGuIDBA="),
        ] {
            let key = SigningKey::from_bytes(alg, secret).expect("secret");
            let signer = RequestSigner::new("3300000001", "gate-2026", key).expect("signer");
            let h = signer.sign_at("POST", "/v1/apps/parks/actions/enter?b=2&a=1", body, 1_767_225_600, "abcdefghijklmnop");
            assert_eq!(h.signature, expected, "{alg:?}");
        }
    }

    #[test]
    fn random_nonces_are_well_formed_and_differ() {
        let a = random_nonce();
        assert!(headers::is_valid_nonce(&a), "{a}");
        assert_ne!(a, random_nonce());
    }

    #[test]
    fn signer_refuses_malformed_identities() {
        let key = SigningKey::generate(KeyAlgorithm::HmacSha256);
        assert!(matches!(RequestSigner::new("33", "k", key.clone()), Err(SignerError::Channel(_))));
        assert!(matches!(RequestSigner::new("3300000001", "K!", key), Err(SignerError::KeyId(_))));
    }

    #[test]
    fn headers_are_applied_under_their_names() {
        let signer =
            RequestSigner::new("3300000001", "k1", SigningKey::generate(KeyAlgorithm::Ed25519)).expect("signer");
        let h = signer.sign("POST", "/x", b"{}");
        let mut map = HeaderMap::new();
        h.apply_to(&mut map);
        assert_eq!(map.len(), 5);
        assert_eq!(map.get("x-onecard-channel").and_then(|v| v.to_str().ok()), Some("3300000001"));
        assert_eq!(map.get(headers::NONCE).and_then(|v| v.to_str().ok()), Some(h.nonce.as_str()));
    }
}
