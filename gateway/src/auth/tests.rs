//! Channel authentication end to end over its parts: signer → headers → `authenticate`, for
//! every algorithm and every refusal code, and proof that a refusal spends no nonce.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::TimeZone as _;
use http::HeaderMap;
use onecard_catalog::model::{ActiveStatus, Channel, ChannelKind, KeyAlgorithm};

use super::*;

const CHANNEL: &str = "3300000001";
const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const PATH: &str = "/v1/apps/parks/actions/enter?venue=west-lake&b=2";
const BODY: &[u8] = br#"{"credential":"v1.x.y","params":{}}"#;
const ALGORITHMS: [KeyAlgorithm; 4] =
    [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2, KeyAlgorithm::HmacSha256, KeyAlgorithm::HmacSm3];

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ts(y: i32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single().expect("date")
}

/// A channel with one key of `alg` (id `k-<alg>`), valid 2025–2027; returns it and its signer.
fn channel_with(alg: KeyAlgorithm) -> (Vec<Channel>, RequestSigner) {
    let file = SigningKeyFile::generate(format!("k-{}", keys::algorithm_name(alg).replace('_', "-")), alg);
    let key = file.channel_key(ts(2025), ts(2027));
    let signer = RequestSigner::new(CHANNEL, file.key_id.clone(), file.key).expect("signer");
    let channel = Channel {
        id: CHANNEL.into(),
        name: "gates".into(),
        kind: ChannelKind::VenueOperator,
        status: ActiveStatus::Active,
        keys: vec![key],
    };
    (vec![channel], signer)
}

struct Req {
    method: &'static str,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn signed(signer: &RequestSigner, timestamp: u64, nonce: &str) -> Req {
        let mut headers = HeaderMap::new();
        signer.sign_at("POST", PATH, BODY, timestamp, nonce).apply_to(&mut headers);
        Req { method: "POST", path: PATH.into(), headers, body: BODY.to_vec() }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.insert(headers::header_name(name), http::HeaderValue::from_str(value).expect("value"));
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts { method: self.method, path_and_query: &self.path, headers: &self.headers, body: &self.body }
    }
}

/// Counts calls so a test can prove a refusal never reached the store.
#[derive(Debug, Default)]
struct CountingStore {
    inner: Option<MemoryNonceStore>,
    calls: Mutex<usize>,
    fail: Option<NonceError>,
}

impl CountingStore {
    fn new() -> CountingStore {
        CountingStore { inner: Some(MemoryNonceStore::new(100)), ..CountingStore::default() }
    }
    fn failing(e: NonceError) -> CountingStore {
        CountingStore { fail: Some(e), ..CountingStore::default() }
    }
    fn calls(&self) -> usize {
        *self.calls.lock().expect("lock")
    }
}

#[async_trait]
impl NonceStore for CountingStore {
    async fn check_and_remember(&self, scope: &str, nonce: &str, ttl: Duration) -> Result<(), NonceError> {
        *self.calls.lock().expect("lock") += 1;
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        match &self.inner {
            Some(store) => store.check_and_remember(scope, nonce, ttl).await,
            None => Ok(()),
        }
    }
}

async fn run(
    req: &Req,
    channels: &[Channel],
    store: &dyn NonceStore,
    now: u64,
) -> Result<AuthenticatedChannel, AuthError> {
    authenticate(&req.parts(), channels, store, at(now), &AuthConfig::default()).await
}

const NONCE: &str = "nonce-0123456789abcdef";

/// An edit of a signed request.
type Tamper = Box<dyn Fn(&mut Req)>;

#[tokio::test]
async fn every_algorithm_round_trips() {
    for alg in ALGORITHMS {
        let (channels, signer) = channel_with(alg);
        let store = MemoryNonceStore::new(10);
        let ok = run(&Req::signed(&signer, T0, NONCE), &channels, &store, T0).await.expect("authenticated");
        assert_eq!(ok.channel, CHANNEL);
        assert_eq!(ok.key_id, signer.key_id());
        assert_eq!(ok.algorithm, alg);
        assert_eq!(ok.timestamp, T0);
        // The nonce is now spent in the channel's scope.
        assert_eq!(
            store.check_and_remember(&channel_nonce_scope(CHANNEL), NONCE, Duration::from_secs(1)).await,
            Err(NonceError::Replayed)
        );
    }
}

#[tokio::test]
async fn query_order_does_not_matter_but_every_signed_field_does() {
    for alg in ALGORITHMS {
        let (mut channels, signer) = channel_with(alg);
        // A second valid key of the same algorithm, to tamper the key id towards.
        let other = SigningKeyFile::generate("other", alg).channel_key(ts(2025), ts(2027));
        channels[0].keys.push(other);
        let store = CountingStore::new();

        let mut reordered = Req::signed(&signer, T0, NONCE);
        reordered.path = "/v1/apps/parks/actions/enter?b=2&venue=west-lake".into();
        run(&reordered, &channels, &store, T0).await.expect("same parameters, other order");

        let tamperings: Vec<(&str, Tamper)> = vec![
            ("body", Box::new(|r| r.body.push(b' '))),
            ("path", Box::new(|r| r.path = r.path.replace("enter", "exit"))),
            ("query value", Box::new(|r| r.path = r.path.replace("b=2", "b=3"))),
            ("query added", Box::new(|r| r.path.push_str("&c=1"))),
            ("method", Box::new(|r| r.method = "PUT")),
            ("timestamp", Box::new(|r| r.set(headers::TIMESTAMP, &(T0 + 1).to_string()))),
            ("nonce", Box::new(|r| r.set(headers::NONCE, "nonce-fedcba9876543210"))),
            ("key id", Box::new(|r| r.set(headers::KEY_ID, "other"))),
        ];
        for (what, tamper) in tamperings {
            let mut req = Req::signed(&signer, T0, "nonce-tampered-000001");
            tamper(&mut req);
            let err = run(&req, &channels, &store, T0).await.expect_err(what);
            assert_eq!(err.code(), "CHANNEL_SIGNATURE_INVALID", "{alg:?} {what}");
        }
        assert_eq!(store.calls(), 1, "only the good request reached the nonce store");
        // And the refused requests' nonce is still usable.
        run(&Req::signed(&signer, T0, "nonce-tampered-000001"), &channels, &store, T0).await.expect("nonce unspent");
    }
}

#[tokio::test]
async fn a_bad_signature_leaves_the_nonce_usable() {
    let (channels, signer) = channel_with(KeyAlgorithm::Sm2);
    let store = MemoryNonceStore::new(10);
    let mut forged = Req::signed(&signer, T0, NONCE);
    let (_, impostor) = channel_with(KeyAlgorithm::Sm2);
    let forged_sig = impostor.sign_at("POST", PATH, BODY, T0, NONCE).signature;
    forged.set(headers::SIGNATURE, &forged_sig);
    assert_eq!(run(&forged, &channels, &store, T0).await.map(|_| ()), Err(AuthError::SignatureInvalid));
    assert!(store.is_empty());
    run(&Req::signed(&signer, T0, NONCE), &channels, &store, T0).await.expect("the nonce was not spent");
}

#[tokio::test]
async fn a_replay_is_refused() {
    let (channels, signer) = channel_with(KeyAlgorithm::HmacSm3);
    let store = MemoryNonceStore::new(10);
    let req = Req::signed(&signer, T0, NONCE);
    run(&req, &channels, &store, T0).await.expect("first");
    let err = run(&req, &channels, &store, T0 + 10).await.expect_err("replay");
    assert_eq!(err.code(), "REQUEST_REPLAYED");
    assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn nonces_are_scoped_per_channel() {
    let (mut channels, signer) = channel_with(KeyAlgorithm::Ed25519);
    let (second, signer2) = {
        let file = SigningKeyFile::generate("k2", KeyAlgorithm::Ed25519);
        let mut ch = channels[0].clone();
        ch.id = "3300000002".into();
        ch.keys = vec![file.channel_key(ts(2025), ts(2027))];
        (ch, RequestSigner::new("3300000002", "k2", file.key).expect("signer"))
    };
    channels.push(second);
    let store = MemoryNonceStore::new(10);
    run(&Req::signed(&signer, T0, NONCE), &channels, &store, T0).await.expect("channel 1");
    run(&Req::signed(&signer2, T0, NONCE), &channels, &store, T0).await.expect("channel 2, same nonce");
}

#[tokio::test]
async fn skew_is_bounded_inclusively() {
    let (channels, signer) = channel_with(KeyAlgorithm::Ed25519);
    for (now, ok) in [(T0 + 300, true), (T0 - 300, true), (T0 + 301, false), (T0 - 301, false)] {
        let store = CountingStore::new();
        let res = run(&Req::signed(&signer, T0, NONCE), &channels, &store, now).await;
        if ok {
            res.expect("within skew");
        } else {
            let err = res.expect_err("outside skew");
            assert_eq!(err.code(), "REQUEST_TIMESTAMP_SKEW", "now = T0 {:+}", now as i64 - T0 as i64);
            assert_eq!(store.calls(), 0);
        }
    }
    // A configured bound.
    let config = AuthConfig { max_skew_secs: 30 };
    let store = MemoryNonceStore::new(10);
    let req = Req::signed(&signer, T0, NONCE);
    let err = authenticate(&req.parts(), &channels, &store, at(T0 + 31), &config).await.expect_err("31 > 30");
    assert_eq!(err.code(), "REQUEST_TIMESTAMP_SKEW");
    authenticate(&req.parts(), &channels, &store, at(T0 + 30), &config).await.expect("30 = 30");
}

#[tokio::test]
async fn header_problems_come_first_and_name_the_header() {
    let (channels, signer) = channel_with(KeyAlgorithm::HmacSha256);
    let store = CountingStore::new();
    for name in headers::ALL {
        let mut req = Req::signed(&signer, T0, NONCE);
        req.headers.remove(name);
        let err = run(&req, &channels, &store, T0).await.expect_err("missing");
        assert_eq!(err.code(), "CHANNEL_HEADERS_MISSING");
        assert!(err.to_string().contains(name), "{err}");
    }
    // Malformed beats unknown channel and skew: the headers are checked first.
    let mut req = Req::signed(&signer, 1, NONCE);
    req.set(headers::CHANNEL, "9900000009");
    req.set(headers::NONCE, "short");
    assert_eq!(
        run(&req, &channels, &store, T0).await.map(|_| ()).map_err(|e| e.code()),
        Err("CHANNEL_HEADERS_MISSING")
    );
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn unknown_channel_and_unknown_key() {
    let (channels, signer) = channel_with(KeyAlgorithm::Ed25519);
    let store = CountingStore::new();
    let mut req = Req::signed(&signer, T0, NONCE);
    req.set(headers::CHANNEL, "3300000099");
    let err = run(&req, &channels, &store, T0).await.expect_err("unknown channel");
    assert_eq!(err.code(), "CHANNEL_UNKNOWN");

    let mut req = Req::signed(&signer, T0, NONCE);
    req.set(headers::KEY_ID, "nope");
    let err = run(&req, &channels, &store, T0).await.expect_err("unknown key");
    assert_eq!(err.code(), "CHANNEL_KEY_UNKNOWN");

    // A catalog HMAC key without its secret (e.g. an export) is unusable: unknown, not a crash.
    let (mut hmac_channels, hmac_signer) = channel_with(KeyAlgorithm::HmacSha256);
    hmac_channels[0].keys[0].secret = None;
    let err = run(&Req::signed(&hmac_signer, T0, NONCE), &hmac_channels, &store, T0).await.expect_err("no secret");
    assert_eq!(err.code(), "CHANNEL_KEY_UNKNOWN");
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn keys_outside_their_window_are_expired() {
    let (channels, signer) = channel_with(KeyAlgorithm::Sm2);
    let store = CountingStore::new();
    let not_after = 1_798_761_600; // 2027-01-01: the key's end, exclusive
    let not_before = 1_735_689_600; // 2025-01-01: inclusive
    for (now, ok) in [(not_after - 1, true), (not_after, false), (not_before, true), (not_before - 1, false)] {
        let nonce = format!("nonce-window-{now}");
        let res = run(&Req::signed(&signer, now, &nonce), &channels, &store, now).await;
        if ok {
            res.expect("inside the window");
        } else {
            assert_eq!(res.map(|_| ()).map_err(|e| e.code()), Err("CHANNEL_KEY_EXPIRED"), "now = {now}");
        }
    }
    assert_eq!(store.calls(), 2);
}

#[tokio::test]
async fn a_rotated_key_pair_is_chosen_by_validity() {
    // Two keys with the same id (rotation): the one valid now verifies.
    let (mut channels, signer) = channel_with(KeyAlgorithm::Ed25519);
    let old = SigningKeyFile { key_id: signer.key_id().to_string(), key: SigningKey::generate(KeyAlgorithm::Ed25519) };
    channels[0].keys.insert(0, old.channel_key(ts(2020), ts(2025)));
    run(&Req::signed(&signer, T0, NONCE), &channels, &MemoryNonceStore::new(4), T0).await.expect("current key");
}

#[tokio::test]
async fn nonce_store_failures_have_their_codes() {
    let (channels, signer) = channel_with(KeyAlgorithm::Ed25519);
    let full = CountingStore::failing(NonceError::Full);
    let err = run(&Req::signed(&signer, T0, NONCE), &channels, &full, T0).await.expect_err("full");
    assert_eq!(err.code(), "NONCE_STORE_FULL");
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let down = CountingStore::failing(NonceError::Unavailable("connection refused".into()));
    let err = run(&Req::signed(&signer, T0, NONCE), &channels, &down, T0).await.expect_err("down");
    assert_eq!(err.code(), "NONCE_STORE_UNAVAILABLE");
    assert!(err.is_gateway_fault());

    // A real full memory store: the request is refused and nothing was evicted.
    let store = MemoryNonceStore::new(1);
    run(&Req::signed(&signer, T0, "nonce-first-0000000"), &channels, &store, T0).await.expect("room for one");
    let err = run(&Req::signed(&signer, T0, NONCE), &channels, &store, T0).await.expect_err("full");
    assert_eq!(err.code(), "NONCE_STORE_FULL");
    let err = run(&Req::signed(&signer, T0, "nonce-first-0000000"), &channels, &store, T0).await.expect_err("kept");
    assert_eq!(err.code(), "REQUEST_REPLAYED");
}

#[tokio::test]
async fn parts_built_from_http_authenticate() {
    let (channels, signer) = channel_with(KeyAlgorithm::HmacSm3);
    let mut request = http::Request::post(format!("http://gw.local{PATH}")).body(()).expect("request");
    signer.sign_at("POST", PATH, BODY, T0, NONCE).apply_to(request.headers_mut());
    let (parts, ()) = request.into_parts();
    let rp = RequestParts::from_http(&parts, BODY);
    authenticate(&rp, channels.as_slice(), &MemoryNonceStore::new(2), at(T0), &AuthConfig::default())
        .await
        .expect("authenticated");
}

#[tokio::test]
#[cfg_attr(not(onecard_redis), ignore = "needs Redis: set ONECARD_TEST_REDIS_URL")]
async fn replays_are_caught_through_redis() {
    let url = std::env::var("ONECARD_TEST_REDIS_URL").expect("ONECARD_TEST_REDIS_URL is set for Redis tests");
    let mut config = RedisNonceConfig::new(url);
    config.key_prefix = format!("onecard-test:{}:", hex::encode(rand::random::<[u8; 8]>()));
    let store = RedisNonceStore::connect(&config).await.expect("ONECARD_TEST_REDIS_URL names a reachable Redis");
    let (channels, signer) = channel_with(KeyAlgorithm::Sm2);
    let mut forged = Req::signed(&signer, T0, NONCE);
    forged.body.push(b'!');
    assert_eq!(
        run(&forged, &channels, &store, T0).await.map_err(|e| e.code()).map(|_| ()),
        Err("CHANNEL_SIGNATURE_INVALID")
    );
    let req = Req::signed(&signer, T0, NONCE);
    run(&req, &channels, &store, T0).await.expect("first (the forged one spent nothing)");
    assert_eq!(run(&req, &channels, &store, T0).await.map_err(|e| e.code()).map(|_| ()), Err("REQUEST_REPLAYED"));
}
