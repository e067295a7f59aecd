//! Card credentials end to end: mint → verify → redeem for both algorithms, every refusal
//! code, and proof that a refused token spends nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chrono::TimeZone as _;
use onecard_catalog::model::{ActiveStatus, IssuerKey, KeyAlgorithm};

use super::*;
use crate::auth::{MemoryNonceStore, NonceError, NonceStore, SigningKeyFile};

const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const SKEW: Duration = Duration::from_secs(5);
const CARD: &str = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn issuer(alg: KeyAlgorithm, key_id: &str) -> (IssuerSigningKey, IssuerKey) {
    let file = SigningKeyFile::generate(key_id, alg);
    let from = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("date");
    let to = chrono::Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).single().expect("date");
    let anchor = file.issuer_key("浙江省社会保障卡服务平台", from, to).expect("asymmetric");
    (IssuerSigningKey::try_from(file).expect("issuer key"), anchor)
}

fn claims(issued_at: u64, validity: u8) -> CredentialClaims {
    CredentialClaims::new(CARD, "330100", issued_at, validity)
}

fn code<T>(r: Result<T, CredentialError>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn both_algorithms_mint_verify_and_redeem_once() {
    for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2] {
        let (key, anchor) = issuer(alg, "hz-2026");
        let c = claims(T0, 60);
        let token = mint(&key, &c).expect("minted");
        assert!(token.starts_with("v1.") && token.len() <= MAX_TOKEN_LEN, "{token}");
        let v = verify(&token, std::slice::from_ref(&anchor), at(T0 + 10), SKEW).expect("verified");
        assert_eq!(v.key_id, "hz-2026");
        assert_eq!(v.issuer, anchor.issuer);
        assert_eq!(v.claims, c);

        let store = MemoryNonceStore::new(10);
        redeem(&token, std::slice::from_ref(&anchor), &store, at(T0 + 10), SKEW).await.expect("first use");
        let again = redeem(&token, std::slice::from_ref(&anchor), &store, at(T0 + 11), SKEW).await;
        assert_eq!(code(again), "CREDENTIAL_REPLAYED", "{alg:?}");
    }
}

#[test]
fn the_largest_claims_fit_in_512_bytes() {
    let (key, _) = issuer(KeyAlgorithm::Sm2, &"k".repeat(64));
    let mut c = claims(u64::MAX - 60, 60);
    c.card_ref = "c".repeat(128);
    c.nonce = vec![7; 32];
    let token = mint(&key, &c).expect("fits");
    assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
}

#[test]
fn oversized_tokens_are_refused_before_anything_else() {
    let (_, anchor) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let huge = format!("v1.{}.AAAA", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(code(verify(&huge, &[anchor], at(T0), SKEW)), "CREDENTIAL_TOO_LARGE");
}

#[test]
fn malformed_tokens() {
    let (key, anchor) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let good = mint(&key, &claims(T0, 30)).expect("minted");
    let (head, sig) = good.rsplit_once('.').expect("three parts");
    let payload = head.strip_prefix("v1.").expect("v1");
    for (what, token) in [
        ("empty", String::new()),
        ("other version", good.replacen("v1.", "v2.", 1)),
        ("two parts", head.to_string()),
        ("four parts", format!("{good}.x")),
        ("padded payload", format!("v1.{payload}=.{sig}")),
        ("standard-alphabet character", format!("v1.+{}.{sig}", &payload[1..])),
        ("non-canonical trailing bits", format!("v1.{payload}.{}", non_canonical(sig))),
        ("bad payload", format!("v1.AAAA.{sig}")),
        ("not base64 signature", format!("{head}.!!!")),
    ] {
        let res = verify(&token, std::slice::from_ref(&anchor), at(T0), SKEW);
        assert_eq!(code(res), "CREDENTIAL_MALFORMED", "{what}");
    }
}

/// The same base64url text with the unused low bits of its last character set: it decodes to
/// the same bytes under a lenient decoder, so a strict one must refuse it.
fn non_canonical(b64: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 64-byte Ed25519 signature: 86 characters, the last carrying 2 bits of data and 4 unused.
    assert_eq!(b64.len() % 4, 2);
    let last = b64.as_bytes()[b64.len() - 1];
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    let bumped = ALPHABET[index | 0b0001];
    let bumped = if bumped == last { ALPHABET[index ^ 0b0010] } else { bumped };
    format!("{}{}", &b64[..b64.len() - 1], bumped as char)
}

#[test]
fn untrusted_issuers() {
    let (key, anchor) = issuer(KeyAlgorithm::Sm2, "hz-2026");
    let token = mint(&key, &claims(T0, 30)).expect("minted");
    // Unknown key id.
    let mut other = anchor.clone();
    other.key_id = "hz-2025".into();
    assert_eq!(code(verify(&token, &[other], at(T0), SKEW)), "CREDENTIAL_ISSUER_UNTRUSTED");
    // Known but suspended.
    let mut suspended = anchor.clone();
    suspended.status = ActiveStatus::Suspended;
    assert_eq!(code(verify(&token, &[suspended], at(T0), SKEW)), "CREDENTIAL_ISSUER_UNTRUSTED");
    // Known but expired (the token itself is fresh).
    let mut expired = anchor.clone();
    expired.not_after = chrono::Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 0).single().expect("date");
    assert_eq!(code(verify(&token, &[expired], at(T0), SKEW)), "CREDENTIAL_ISSUER_UNTRUSTED");
    // No keys at all.
    assert_eq!(code(verify(&token, &[], at(T0), SKEW)), "CREDENTIAL_ISSUER_UNTRUSTED");
    // The trusted anchor verifies.
    verify(&token, &[anchor], at(T0), SKEW).expect("trusted");
}

#[test]
fn forged_and_tampered_tokens() {
    let (key, anchor) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let (impostor, _) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let forged = mint(&impostor, &claims(T0, 30)).expect("minted");
    assert_eq!(code(verify(&forged, std::slice::from_ref(&anchor), at(T0), SKEW)), "CREDENTIAL_SIGNATURE_INVALID");

    // Another card's payload under this card's signature.
    let mine = mint(&key, &claims(T0, 30)).expect("minted");
    let mut theirs = claims(T0, 30);
    theirs.card_ref = "0".repeat(64);
    let theirs = mint(&key, &theirs).expect("minted");
    let (my_head, _) = mine.rsplit_once('.').expect("parts");
    let (_, their_sig) = theirs.rsplit_once('.').expect("parts");
    let spliced = format!("{my_head}.{their_sig}");
    assert_eq!(code(verify(&spliced, std::slice::from_ref(&anchor), at(T0), SKEW)), "CREDENTIAL_SIGNATURE_INVALID");

    // A longer validity written into a signed payload.
    let head = mine.rsplit_once('.').expect("parts").0;
    let mut payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.strip_prefix("v1.").expect("v1")).expect("b64");
    let validity_at = payload.len() - 1 - 16 - 1;
    assert_eq!(payload[validity_at], 30);
    payload[validity_at] = 60;
    let sig = mine.rsplit_once('.').expect("parts").1;
    let tampered = format!("v1.{}.{sig}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload));
    assert_eq!(code(verify(&tampered, &[anchor], at(T0), SKEW)), "CREDENTIAL_SIGNATURE_INVALID");
}

#[test]
fn validity_window_boundaries() {
    let (key, anchor) = issuer(KeyAlgorithm::Sm2, "hz-2026");
    let token = mint(&key, &claims(T0, 30)).expect("minted");
    let keys = std::slice::from_ref(&anchor);
    // [T0 - 5, T0 + 30 + 5)
    assert_eq!(code(verify(&token, keys, at(T0 - 6), SKEW)), "CREDENTIAL_NOT_YET_VALID");
    assert_eq!(code(verify(&token, keys, at(T0 - 5), SKEW)), "OK");
    assert_eq!(code(verify(&token, keys, at(T0 + 34), SKEW)), "OK");
    assert_eq!(code(verify(&token, keys, at(T0 + 35), SKEW)), "CREDENTIAL_EXPIRED");
    // With no skew the window is exactly [T0, T0 + 30).
    assert_eq!(code(verify(&token, keys, at(T0 - 1), Duration::ZERO)), "CREDENTIAL_NOT_YET_VALID");
    assert_eq!(code(verify(&token, keys, at(T0 + 29), Duration::ZERO)), "OK");
    assert_eq!(code(verify(&token, keys, at(T0 + 30), Duration::ZERO)), "CREDENTIAL_EXPIRED");
}

#[tokio::test]
async fn refused_tokens_spend_nothing() {
    let (key, anchor) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let c = claims(T0, 30);
    let token = mint(&key, &c).expect("minted");
    let store = MemoryNonceStore::new(10);
    let keys = std::slice::from_ref(&anchor);
    // Too early, then expired: refused, nothing remembered.
    assert_eq!(code(redeem(&token, keys, &store, at(T0 - 60), SKEW).await), "CREDENTIAL_NOT_YET_VALID");
    assert_eq!(code(redeem(&token, &[], &store, at(T0), SKEW).await), "CREDENTIAL_ISSUER_UNTRUSTED");
    assert!(store.is_empty());
    redeem(&token, keys, &store, at(T0), SKEW).await.expect("still usable");
    assert_eq!(code(redeem(&token, keys, &store, at(T0 + 60), SKEW).await), "CREDENTIAL_EXPIRED");
}

#[tokio::test]
async fn the_single_use_window_covers_the_remaining_validity() {
    // Spent at T0 + 10 with validity 30 and skew 5: remembered until T0 + 35, when the token
    // expires anyway. A store that records the TTL proves it.
    #[derive(Debug, Default)]
    struct Recording(std::sync::Mutex<Vec<(String, String, Duration)>>);
    #[async_trait::async_trait]
    impl NonceStore for Recording {
        async fn check_and_remember(&self, scope: &str, nonce: &str, ttl: Duration) -> Result<(), NonceError> {
            self.0.lock().expect("lock").push((scope.into(), nonce.into(), ttl));
            Ok(())
        }
    }
    let (key, anchor) = issuer(KeyAlgorithm::Sm2, "hz-2026");
    let token = mint(&key, &claims(T0, 30)).expect("minted");
    let store = Recording::default();
    let v = redeem(&token, &[anchor], &store, at(T0 + 10), SKEW).await.expect("redeemed");
    let calls = store.0.lock().expect("lock").clone();
    assert_eq!(calls, vec![(CREDENTIAL_NONCE_SCOPE.to_string(), v.replay_key(), Duration::from_secs(25))]);
    assert!(v.replay_key().starts_with("hz-2026/"));
}

#[tokio::test]
async fn replay_cache_failures_refuse_the_token() {
    #[derive(Debug)]
    struct Failing(NonceError);
    #[async_trait::async_trait]
    impl NonceStore for Failing {
        async fn check_and_remember(&self, _: &str, _: &str, _: Duration) -> Result<(), NonceError> {
            Err(self.0.clone())
        }
    }
    let (key, anchor) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    let token = mint(&key, &claims(T0, 30)).expect("minted");
    let keys = std::slice::from_ref(&anchor);
    let full = redeem(&token, keys, &Failing(NonceError::Full), at(T0), SKEW).await;
    assert_eq!(code(full), "NONCE_STORE_FULL");
    let down = redeem(&token, keys, &Failing(NonceError::Unavailable("x".into())), at(T0), SKEW).await;
    assert_eq!(code(down), "NONCE_STORE_UNAVAILABLE");
}

#[test]
fn minting_refuses_bad_claims_and_hmac_keys() {
    let (key, _) = issuer(KeyAlgorithm::Ed25519, "hz-2026");
    assert!(matches!(mint(&key, &claims(T0, 61)), Err(MintError::InvalidClaims(_))));
    assert!(matches!(mint(&key, &claims(T0, 0)), Err(MintError::InvalidClaims(_))));
    assert!(matches!(mint(&key, &CredentialClaims::new(CARD, "3301", T0, 30)), Err(MintError::InvalidClaims(_))));
    let hmac = SigningKeyFile::generate("h", KeyAlgorithm::HmacSm3);
    assert!(matches!(IssuerSigningKey::try_from(hmac), Err(MintError::WrongAlgorithm("hmac_sm3"))));
}

#[tokio::test]
#[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
async fn credentials_are_single_use_through_redis() {
    let url = std::env::var("ONECARD_TEST_REDIS_URL").expect("ONECARD_TEST_REDIS_URL is set for Redis tests");
    let mut config = crate::auth::RedisNonceConfig::new(url);
    config.key_prefix = format!("onecard-test:{}:", hex::encode(rand::random::<[u8; 8]>()));
    let store =
        crate::auth::RedisNonceStore::connect(&config).await.expect("ONECARD_TEST_REDIS_URL names a reachable Redis");
    let (key, anchor) = issuer(KeyAlgorithm::Sm2, "hz-2026");
    let keys = std::slice::from_ref(&anchor);
    // Use the real clock: Redis forgets on its own clock.
    let now = SystemTime::now();
    let issued = now.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let token = mint(&key, &claims(issued, 60)).expect("minted");
    redeem(&token, keys, &store, now, SKEW).await.expect("first use");
    assert_eq!(code(redeem(&token, keys, &store, now, SKEW).await), "CREDENTIAL_REPLAYED");
}
