//! Key material for the four request-signing algorithms and the two credential-signing ones,
//! behind two small enums so the rest of the gateway never touches a crypto crate directly.
//!
//! Everything here is a thin layer over RustCrypto / dalek crates: `ed25519-dalek` (Ed25519),
//! `sm2` (SM2DSA with SM3, signer id [`SM2_SIGNER_ID`], signatures DER-encoded through
//! `ecdsa`'s codec), `hmac` with `sha2` / `sm3` (HMAC-SHA256, HMAC-SM3; tags compared in constant
//! time). Private material is zeroized on drop and never printed by `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use hmac::Hmac;
use onecard_catalog::model::{ChannelKey, IssuerAlgorithm, IssuerKey, KeyAlgorithm};
use sha2::{Digest as _, Sha256};
use sm3::Sm3;
use zeroize::Zeroizing;

/// The SM2 signer identity (distinguishing identifier) used for every SM2 signature onecard
/// makes or checks, the GB/T 35276 default. A peer that signs with another id fails to verify.
pub const SM2_SIGNER_ID: &str = "1234567812345678";

/// Shortest HMAC secret accepted (bytes), as the catalog requires.
pub const MIN_HMAC_SECRET_BYTES: usize = 16;
/// Longest HMAC secret accepted (bytes).
pub const MAX_HMAC_SECRET_BYTES: usize = 128;
/// Length of a generated HMAC secret (bytes).
pub const GENERATED_HMAC_SECRET_BYTES: usize = 32;

/// Why key material could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The base64 text does not decode.
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    /// The bytes are not a key of the algorithm.
    #[error("not a valid {algorithm} key: {reason}")]
    Invalid {
        /// Algorithm name.
        algorithm: &'static str,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// A field the algorithm needs is absent.
    #[error("the {algorithm} key has no {field}")]
    Missing {
        /// Algorithm name.
        algorithm: &'static str,
        /// Field name.
        field: &'static str,
    },
}

/// The catalog's name of an algorithm (`ed25519`, `sm2`, `hmac_sha256`, `hmac_sm3`).
pub fn algorithm_name(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Ed25519 => "ed25519",
        KeyAlgorithm::Sm2 => "sm2",
        KeyAlgorithm::HmacSha256 => "hmac_sha256",
        KeyAlgorithm::HmacSm3 => "hmac_sm3",
    }
}

/// The channel-key algorithm with the same name as an issuer-key algorithm.
pub fn from_issuer_algorithm(algorithm: IssuerAlgorithm) -> KeyAlgorithm {
    match algorithm {
        IssuerAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
        IssuerAlgorithm::Sm2 => KeyAlgorithm::Sm2,
    }
}

/// The issuer-key algorithm of a channel-key algorithm, when it can sign credentials.
pub fn to_issuer_algorithm(algorithm: KeyAlgorithm) -> Option<IssuerAlgorithm> {
    match algorithm {
        KeyAlgorithm::Ed25519 => Some(IssuerAlgorithm::Ed25519),
        KeyAlgorithm::Sm2 => Some(IssuerAlgorithm::Sm2),
        KeyAlgorithm::HmacSha256 | KeyAlgorithm::HmacSm3 => None,
    }
}

/// Which hash an algorithm family uses for request bodies: SM3 with the national algorithms,
/// SHA-256 otherwise.
pub fn uses_sm3(algorithm: KeyAlgorithm) -> bool {
    matches!(algorithm, KeyAlgorithm::Sm2 | KeyAlgorithm::HmacSm3)
}

/// Lower-case hex of the body hash for `algorithm`: SM3 for SM2 and HMAC-SM3, SHA-256 for
/// Ed25519 and HMAC-SHA256.
pub fn body_hash_hex(algorithm: KeyAlgorithm, body: &[u8]) -> String {
    if uses_sm3(algorithm) { hex::encode(Sm3::digest(body)) } else { hex::encode(Sha256::digest(body)) }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Bytes of a shared secret: zeroized on drop, never printed.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    fn new(algorithm: &'static str, bytes: Vec<u8>) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(bytes);
        if !(MIN_HMAC_SECRET_BYTES..=MAX_HMAC_SECRET_BYTES).contains(&bytes.len()) {
            return Err(KeyError::Invalid {
                algorithm,
                reason: format!(
                    "a shared secret has {MIN_HMAC_SECRET_BYTES} to {MAX_HMAC_SECRET_BYTES} bytes, not {}",
                    bytes.len()
                ),
            });
        }
        Ok(SecretBytes(bytes))
    }

    fn generate() -> Self {
        let bytes: [u8; GENERATED_HMAC_SECRET_BYTES] = rand::random();
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

fn sm2_error(reason: impl fmt::Display) -> KeyError {
    KeyError::Invalid { algorithm: "sm2", reason: reason.to_string() }
}

/// A private signing key (or an HMAC shared secret).
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519 (private key: the 32-byte seed).
    Ed25519(ed25519_dalek::SigningKey),
    /// SM2 (private key: the 32-byte big-endian scalar), signer id [`SM2_SIGNER_ID`].
    Sm2(Box<sm2::dsa::SigningKey>),
    /// HMAC-SHA256 shared secret.
    HmacSha256(SecretBytes),
    /// HMAC-SM3 shared secret.
    HmacSm3(SecretBytes),
}

impl SigningKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate(algorithm: KeyAlgorithm) -> SigningKey {
        let mut rng = sm2::elliptic_curve::rand_core::OsRng;
        match algorithm {
            KeyAlgorithm::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            KeyAlgorithm::Sm2 => loop {
                let secret = sm2::SecretKey::random(&mut rng);
                // `new` fails only for a secret equal to n-1, which `random` may in theory draw.
                if let Ok(key) = sm2::dsa::SigningKey::new(SM2_SIGNER_ID, &secret) {
                    break SigningKey::Sm2(Box::new(key));
                }
            },
            KeyAlgorithm::HmacSha256 => SigningKey::HmacSha256(SecretBytes::generate()),
            KeyAlgorithm::HmacSm3 => SigningKey::HmacSm3(SecretBytes::generate()),
        }
    }

    /// Reads a private key from its raw bytes (see the variants for the encodings).
    pub fn from_bytes(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<SigningKey, KeyError> {
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid {
                    algorithm: "ed25519",
                    reason: format!("a private key is a 32-byte seed, not {} bytes", bytes.len()),
                })?;
                Ok(SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeyAlgorithm::Sm2 => {
                if bytes.len() != 32 {
                    return Err(sm2_error(format!("a private key is a 32-byte scalar, not {} bytes", bytes.len())));
                }
                let key = sm2::dsa::SigningKey::from_slice(SM2_SIGNER_ID, bytes)
                    .map_err(|_| sm2_error("the scalar is out of range"))?;
                Ok(SigningKey::Sm2(Box::new(key)))
            }
            KeyAlgorithm::HmacSha256 => Ok(SigningKey::HmacSha256(SecretBytes::new("hmac_sha256", bytes.to_vec())?)),
            KeyAlgorithm::HmacSm3 => Ok(SigningKey::HmacSm3(SecretBytes::new("hmac_sm3", bytes.to_vec())?)),
        }
    }

    /// The raw private bytes (for writing a key file); zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            SigningKey::Ed25519(k) => Zeroizing::new(k.to_bytes().to_vec()),
            SigningKey::Sm2(k) => Zeroizing::new(k.to_bytes().to_vec()),
            SigningKey::HmacSha256(s) | SigningKey::HmacSm3(s) => Zeroizing::new(s.expose().to_vec()),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            SigningKey::Sm2(_) => KeyAlgorithm::Sm2,
            SigningKey::HmacSha256(_) => KeyAlgorithm::HmacSha256,
            SigningKey::HmacSm3(_) => KeyAlgorithm::HmacSm3,
        }
    }

    /// The public key in the catalog's form (base64: the Ed25519 point, or the SM2 SEC1
    /// uncompressed point); `None` for HMAC keys, whose only form is the shared secret.
    pub fn public_key_base64(&self) -> Option<String> {
        match self {
            SigningKey::Ed25519(k) => Some(b64().encode(k.verifying_key().as_bytes())),
            SigningKey::Sm2(k) => Some(b64().encode(k.verifying_key().to_sec1_bytes())),
            SigningKey::HmacSha256(_) | SigningKey::HmacSm3(_) => None,
        }
    }

    /// The key that checks this key's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
            SigningKey::Sm2(k) => VerifyingKey::Sm2(Box::new(k.verifying_key().clone())),
            SigningKey::HmacSha256(s) => VerifyingKey::HmacSha256(s.clone()),
            SigningKey::HmacSm3(s) => VerifyingKey::HmacSm3(s.clone()),
        }
    }

    /// Signs `message`: Ed25519 (64 bytes), SM2 (DER `SEQUENCE { r, s }`), or an HMAC tag
    /// (32 bytes).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            SigningKey::Sm2(k) => {
                let sig: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(k.as_ref(), message);
                sm2_to_der(&sig)
            }
            SigningKey::HmacSha256(s) => hmac_tag::<Hmac<Sha256>>(s, message),
            SigningKey::HmacSm3(s) => hmac_tag::<Hmac<Sm3>>(s, message),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SigningKey");
        d.field("algorithm", &algorithm_name(self.algorithm()));
        if let Some(public) = self.public_key_base64() {
            d.field("public_key", &public);
        }
        d.finish_non_exhaustive()
    }
}

fn hmac_tag<M: hmac::Mac + hmac::digest::KeyInit>(secret: &SecretBytes, message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_check<M: hmac::Mac + hmac::digest::KeyInit>(secret: &SecretBytes, message: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret.expose()) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

fn sm2_to_der(sig: &sm2::dsa::Signature) -> Vec<u8> {
    // Both types hold the same (r, s) pair of 32-byte big-endian scalars.
    match ecdsa::Signature::<sm2::Sm2>::from_slice(&sig.to_bytes()) {
        Ok(sig) => sig.to_der().as_bytes().to_vec(),
        Err(_) => unreachable!("an SM2 signature always has non-zero r and s"),
    }
}

fn sm2_from_der(der: &[u8]) -> Option<sm2::dsa::Signature> {
    let sig = ecdsa::Signature::<sm2::Sm2>::from_der(der).ok()?;
    sm2::dsa::Signature::from_slice(&sig.to_bytes()).ok()
}

/// A key that checks signatures (for HMAC, the shared secret itself).
#[derive(Clone)]
pub enum VerifyingKey {
    /// Ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// SM2 public key, signer id [`SM2_SIGNER_ID`].
    Sm2(Box<sm2::dsa::VerifyingKey>),
    /// HMAC-SHA256 shared secret.
    HmacSha256(SecretBytes),
    /// HMAC-SM3 shared secret.
    HmacSm3(SecretBytes),
}

/// Public keys already read, per algorithm (Ed25519, SM2), by their base64 text. Reading one is
/// a curve-point decompression (a field inversion and a square root): for Ed25519 about a
/// tenth of the signature check's own instructions (callgrind, docs/PERFORMANCE.md), and every
/// request names a channel key and an issuer key that the catalog rarely changes. A key is a pure function of its text, so a
/// remembered one is the key a fresh read would give; keys the catalog dropped stay here but
/// are never asked for. Bounded: past [`PARSED_KEYS_MAX`] per algorithm, keys are read every
/// time and not remembered. Invalid keys are never remembered.
static PARSED_KEYS: [std::sync::LazyLock<RwLock<HashMap<String, VerifyingKey>>>; 2] =
    [std::sync::LazyLock::new(Default::default), std::sync::LazyLock::new(Default::default)];
/// Public keys remembered per algorithm, at most: far more than a province's channels and
/// issuers.
const PARSED_KEYS_MAX: usize = 4_096;

impl VerifyingKey {
    /// Reads an asymmetric public key (base64, the catalog's form); a key read before is
    /// remembered ([`PARSED_KEYS`]).
    pub fn from_public_base64(algorithm: KeyAlgorithm, public_key: &str) -> Result<VerifyingKey, KeyError> {
        let public_key = public_key.trim();
        let parsed = match algorithm {
            KeyAlgorithm::Ed25519 => &PARSED_KEYS[0],
            KeyAlgorithm::Sm2 => &PARSED_KEYS[1],
            KeyAlgorithm::HmacSha256 | KeyAlgorithm::HmacSm3 => return Self::read_public_base64(algorithm, public_key),
        };
        if let Some(key) = parsed.read().unwrap_or_else(|p| p.into_inner()).get(public_key) {
            return Ok(key.clone());
        }
        let key = Self::read_public_base64(algorithm, public_key)?;
        let mut parsed = parsed.write().unwrap_or_else(|p| p.into_inner());
        if parsed.len() < PARSED_KEYS_MAX {
            parsed.insert(public_key.to_string(), key.clone());
        }
        Ok(key)
    }

    fn read_public_base64(algorithm: KeyAlgorithm, public_key: &str) -> Result<VerifyingKey, KeyError> {
        let bytes = b64().decode(public_key).map_err(|_| KeyError::Base64("public_key"))?;
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                let point: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Invalid {
                    algorithm: "ed25519",
                    reason: format!("a public key has 32 bytes, not {}", bytes.len()),
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&point)
                    .map(VerifyingKey::Ed25519)
                    .map_err(|_| KeyError::Invalid { algorithm: "ed25519", reason: "not a curve point".into() })
            }
            KeyAlgorithm::Sm2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, &bytes)
                .map(|k| VerifyingKey::Sm2(Box::new(k)))
                .map_err(|_| sm2_error("not a SEC1-encoded curve point")),
            KeyAlgorithm::HmacSha256 | KeyAlgorithm::HmacSm3 => Err(KeyError::Invalid {
                algorithm: algorithm_name(algorithm),
                reason: "an HMAC key has no public half".into(),
            }),
        }
    }

    /// The key of a catalog channel key: `public_key` for Ed25519 and SM2, `secret` for HMAC.
    pub fn from_channel_key(key: &ChannelKey) -> Result<VerifyingKey, KeyError> {
        let name = algorithm_name(key.algorithm);
        if key.algorithm.is_symmetric() {
            let secret = key.secret.as_deref().ok_or(KeyError::Missing { algorithm: name, field: "secret" })?;
            let bytes = b64().decode(secret.trim()).map_err(|_| KeyError::Base64("secret"))?;
            let secret = SecretBytes::new(name, bytes)?;
            Ok(match key.algorithm {
                KeyAlgorithm::HmacSm3 => VerifyingKey::HmacSm3(secret),
                _ => VerifyingKey::HmacSha256(secret),
            })
        } else {
            let public = key.public_key.as_deref().ok_or(KeyError::Missing { algorithm: name, field: "public_key" })?;
            VerifyingKey::from_public_base64(key.algorithm, public)
        }
    }

    /// The key of a catalog issuer key.
    pub fn from_issuer_key(key: &IssuerKey) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_public_base64(from_issuer_algorithm(key.algorithm), &key.public_key)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            VerifyingKey::Sm2(_) => KeyAlgorithm::Sm2,
            VerifyingKey::HmacSha256(_) => KeyAlgorithm::HmacSha256,
            VerifyingKey::HmacSm3(_) => KeyAlgorithm::HmacSm3,
        }
    }

    /// Whether `signature` is this key's signature of `message`. Ed25519 is checked strictly
    /// (no malleable or small-order forms); SM2 signatures must be strict DER; HMAC tags are
    /// compared in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            VerifyingKey::Ed25519(k) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => k.verify_strict(message, &sig).is_ok(),
                Err(_) => false,
            },
            VerifyingKey::Sm2(k) => match sm2_from_der(signature) {
                Some(sig) => k.verify(message, &sig).is_ok(),
                None => false,
            },
            VerifyingKey::HmacSha256(s) => hmac_check::<Hmac<Sha256>>(s, message, signature),
            VerifyingKey::HmacSm3(s) => hmac_check::<Hmac<Sm3>>(s, message, signature),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("VerifyingKey");
        d.field("algorithm", &algorithm_name(self.algorithm()));
        match self {
            VerifyingKey::Ed25519(k) => d.field("public_key", &b64().encode(k.as_bytes())),
            VerifyingKey::Sm2(k) => d.field("public_key", &b64().encode(k.to_sec1_bytes())),
            VerifyingKey::HmacSha256(_) | VerifyingKey::HmacSm3(_) => d.field("secret", &"<redacted>"),
        };
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [KeyAlgorithm; 4] =
        [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2, KeyAlgorithm::HmacSha256, KeyAlgorithm::HmacSm3];

    #[test]
    fn every_algorithm_signs_and_verifies_and_refuses_tampering() {
        for alg in ALL {
            let key = SigningKey::generate(alg);
            let sig = key.sign(b"message");
            let vk = key.verifying_key();
            assert!(vk.verify(b"message", &sig), "{alg:?}");
            assert!(!vk.verify(b"messagE", &sig), "{alg:?} tampered message");
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(!vk.verify(b"message", &bad), "{alg:?} tampered signature");
            assert!(!vk.verify(b"message", &[]), "{alg:?} empty signature");
            let other = SigningKey::generate(alg).verifying_key();
            assert!(!other.verify(b"message", &sig), "{alg:?} other key");
        }
    }

    #[test]
    fn private_keys_round_trip_through_bytes() {
        for alg in ALL {
            let key = SigningKey::generate(alg);
            let again = SigningKey::from_bytes(alg, &key.to_bytes()).expect("reads back");
            assert_eq!(again.public_key_base64(), key.public_key_base64());
            assert!(again.verifying_key().verify(b"m", &key.sign(b"m")), "{alg:?}");
        }
    }

    #[test]
    fn sm2_signatures_are_der_and_checked_with_the_pinned_signer_id() {
        let key = SigningKey::generate(KeyAlgorithm::Sm2);
        let sig = key.sign(b"m");
        assert_eq!(sig[0], 0x30, "a DER SEQUENCE");
        assert_eq!(usize::from(sig[1]) + 2, sig.len());
        let SigningKey::Sm2(inner) = &key else { unreachable!() };
        // The same key with another signer id computes another Z value: the signature fails.
        let other_id =
            sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", &inner.verifying_key().to_sec1_bytes())
                .expect("point");
        let raw = sm2_from_der(&sig).expect("der");
        assert!(other_id.verify(b"m", &raw).is_err());
        // Raw r||s (not DER) is refused.
        assert!(!key.verifying_key().verify(b"m", &raw.to_bytes()));
    }

    #[test]
    fn public_keys_round_trip_through_the_catalog_form() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2] {
            let key = SigningKey::generate(alg);
            let public = key.public_key_base64().expect("asymmetric");
            let vk = VerifyingKey::from_public_base64(alg, &public).expect("decodes");
            assert!(vk.verify(b"m", &key.sign(b"m")));
        }
        assert!(SigningKey::generate(KeyAlgorithm::HmacSm3).public_key_base64().is_none());
    }

    /// A key read twice is remembered once and checks the same signatures; its text is not a
    /// key of the other algorithm for being remembered; a bad key is refused every time.
    #[test]
    fn public_keys_read_before_are_remembered_per_algorithm() {
        let key = SigningKey::generate(KeyAlgorithm::Ed25519);
        let public = key.public_key_base64().expect("asymmetric");
        let first = VerifyingKey::from_public_base64(KeyAlgorithm::Ed25519, &public).expect("decodes");
        assert!(PARSED_KEYS[0].read().unwrap().contains_key(&public));
        let again = VerifyingKey::from_public_base64(KeyAlgorithm::Ed25519, &format!(" {public}\n")).expect("remembered");
        let (VerifyingKey::Ed25519(a), VerifyingKey::Ed25519(b)) = (&first, &again) else { panic!("Ed25519 keys") };
        assert_eq!(a, b);
        assert!(again.verify(b"m", &key.sign(b"m")));
        assert!(!PARSED_KEYS[1].read().unwrap().contains_key(&public));
        assert!(matches!(VerifyingKey::from_public_base64(KeyAlgorithm::Sm2, &public), Err(KeyError::Invalid { .. })));
        let bad = b64().encode([4u8; 65]);
        for _ in 0..2 {
            assert!(matches!(VerifyingKey::from_public_base64(KeyAlgorithm::Sm2, &bad), Err(KeyError::Invalid { .. })));
        }
        assert!(!PARSED_KEYS[1].read().unwrap().contains_key(&bad), "a bad key is not remembered");
    }

    #[test]
    fn malformed_key_material_is_refused() {
        assert!(matches!(SigningKey::from_bytes(KeyAlgorithm::Ed25519, &[1; 31]), Err(KeyError::Invalid { .. })));
        assert!(matches!(SigningKey::from_bytes(KeyAlgorithm::Sm2, &[0; 32]), Err(KeyError::Invalid { .. })));
        assert!(matches!(SigningKey::from_bytes(KeyAlgorithm::Sm2, &[0xff; 32]), Err(KeyError::Invalid { .. })));
        assert!(matches!(SigningKey::from_bytes(KeyAlgorithm::HmacSha256, &[1; 15]), Err(KeyError::Invalid { .. })));
        assert!(matches!(
            VerifyingKey::from_public_base64(KeyAlgorithm::Sm2, "not base64!"),
            Err(KeyError::Base64("public_key"))
        ));
        assert!(matches!(
            VerifyingKey::from_public_base64(KeyAlgorithm::Sm2, &b64().encode([4u8; 65])),
            Err(KeyError::Invalid { .. })
        ));
    }

    #[test]
    fn debug_never_prints_private_material() {
        for alg in ALL {
            let key = SigningKey::generate(alg);
            let secret_b64 = b64().encode(key.to_bytes().as_slice());
            let secret_hex = hex::encode(key.to_bytes().as_slice());
            for text in [format!("{key:?}"), format!("{:?}", key.verifying_key())] {
                assert!(!text.contains(&secret_b64) && !text.contains(&secret_hex), "{alg:?}: {text}");
                assert!(!text.contains(&format!("{:?}", key.to_bytes().as_slice())), "{alg:?}: {text}");
            }
        }
    }

    #[test]
    fn body_hashes_follow_the_algorithm_family() {
        // SM3("abc") and SHA-256("abc"), the standards' own test vectors.
        let sm3_abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        let sha256_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(body_hash_hex(KeyAlgorithm::Sm2, b"abc"), sm3_abc);
        assert_eq!(body_hash_hex(KeyAlgorithm::HmacSm3, b"abc"), sm3_abc);
        assert_eq!(body_hash_hex(KeyAlgorithm::Ed25519, b"abc"), sha256_abc);
        assert_eq!(body_hash_hex(KeyAlgorithm::HmacSha256, b"abc"), sha256_abc);
    }
}
