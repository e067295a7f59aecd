//! A small test city for end-to-end tests: a catalog in a temporary SQLite file with the parks
//! application filed online (its real component and manifest), one venue-operator channel, a
//! trusted issuer, cards in every status, and consents; `onecard serve` started on a loopback
//! port; helpers to sign requests, mint card tokens and read the audit trail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onecard_audit::{AuditStore, LedgerRecord, RecordFields};
use onecard_catalog::Store;
use onecard_catalog::model::{Application, CardStatusPolicy, Filing, Grant, GrantStatus, KeyAlgorithm};
use onecard_catalog::workflow::FilingState;
use onecard_catalog::roles::{Principal, Role};
use onecard_gateway::auth::{RequestSigner, SigningKey};
use onecard_gateway::credential::{CredentialClaims, IssuerSigningKey, mint};
use onecard_gateway::server::{Running, ServeConfig};
use serde_json::Value;

/// The channel of the test city.
pub const CHANNEL: &str = "3300000001";
/// A second channel without any grant.
pub const STRANGER: &str = "3300000002";
/// The venue of the parks application.
pub const VENUE: &str = "west-lake";

/// Card names and their statuses / flags in the test catalog.
const CARDS: &[(&str, &str, &str)] = &[
    ("senior", "normal", ""),
    ("young", "normal", ""),
    ("temporary", "temporary_loss", ""),
    ("lost", "formal_loss", ""),
    ("cancelled", "cancelled", ""),
    ("sealed", "sealed", ""),
    ("locked", "normal", "social_locked = true"),
    ("revoked", "normal", ""),
    ("adult", "normal", "real_person = true"),
];

/// The parks application's configuration: one venue open all day (tests run at any hour).
const PARKS_CONFIG: &str = r#"{"venues": {"west-lake": {"name": "West Lake", "opens": "00:00", "closes": "24:00", "capacity_per_day": 1000, "terminals": ["WL-G1", "WL-G2"], "fees": {"standard_fen": 0, "senior_age": 60, "senior_fen": 0, "resident_regions": ["3301"], "resident_fen": 0}}}}"#;

/// A valid 18-character resident ID number for test `n` (GB 11643 check character).
pub fn test_ssn(n: u32) -> String {
    onecard_catalog::ids::ssn_with_check(&format!("33010619500307{:03}", n % 1000))
}

fn catalog_toml(sha256: &str, hostile_sha: &str, channel_key: &str, issuer_key: &str, extra: &str) -> String {
    let mut cards = String::new();
    for (i, (_, status, flags)) in CARDS.iter().enumerate() {
        cards.push_str(&format!(
            "[[cards]]\ncard_ref = \"ssn:{}\"\ncard_number = \"A{:08}\"\ncard_id_code = \"330100D15600000500000000000000{:02X}\"\nissuing_region = \"330100\"\nstatus = \"{status}\"\nreal_name = true\nreal_card = true\nbank_activated = true\nvalid_until = \"2035-12-31T00:00:00Z\"\n{flags}\n\n",
            test_ssn(i as u32 + 1),
            i + 1,
            i + 1,
        ));
    }
    let senior = test_ssn(1);
    let revoked = test_ssn(8);
    let adult = test_ssn(9);
    format!(
        r#"
[[provinces]]
code = "33"
name = "浙江省"

[[cities]]
code = "3301"
name = "杭州市"

[[departments]]
id = "hz-parks"
name = "杭州市园林文物局"
city = "3301"

[[applications]]
id = "parks"
name = "公园景区入园"
scenario = "park_entry"
department = "hz-parks"

[applications.card_status_policy.check]
allow = ["normal", "temporary_loss"]
temporary_loss_needs_holder_authorization = true

[[applications.filings]]
number = 1
state = "online"
sha256 = "{sha256}"
capabilities = ["card", "kv"]
manifest = {{ plugin = "parks", version = "0", actions = [] }}

[[applications]]
id = "hostile"
name = "测试：行为不端的插件"
scenario = "test"
department = "hz-parks"

[[applications.filings]]
number = 1
state = "online"
sha256 = "{hostile_sha}"
capabilities = ["http", "kv"]
manifest = {{ plugin = "hostile", version = "0", actions = [] }}

[[applications]]
id = "museum"
name = "博物馆预约（已备案未上线）"
scenario = "park_entry"
department = "hz-parks"

[[applications.filings]]
number = 1
state = "filed"
sha256 = "{sha256}"
capabilities = ["card", "kv"]
manifest = {{ plugin = "parks", version = "0", actions = [] }}

[[channels]]
id = "{CHANNEL}"
name = "西湖景区闸机运营"
kind = "venue_operator"

[[channels.keys]]
key_id = "gate-2026"
algorithm = "ed25519"
public_key = "{channel_key}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[channels]]
id = "{STRANGER}"
name = "某第三方应用"
kind = "third_party_app"

[[channels.keys]]
key_id = "app-2026"
algorithm = "ed25519"
public_key = "{channel_key}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[grants]]
channel = "{CHANNEL}"
application = "parks"
actions = ["check", "enter", "exit"]
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[grants]]
channel = "{CHANNEL}"
application = "hostile"
actions = ["ok", "loop", "spy", "not_json"]
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[grants]]
channel = "{CHANNEL}"
application = "museum"
actions = ["check"]
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[consents]]
id = "consent-senior"
card_ref = "ssn:{senior}"
application = "parks"
scopes = ["holder.age"]
purpose = "senior free entry"
channel = "{CHANNEL}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[consents]]
id = "consent-adult"
card_ref = "ssn:{adult}"
application = "parks"
scopes = ["holder.age"]
purpose = "entry"
channel = "{CHANNEL}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[[consents]]
id = "consent-revoked"
card_ref = "ssn:{revoked}"
application = "parks"
scopes = ["holder.age"]
purpose = "senior free entry"
channel = "{CHANNEL}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"
revoked_at = "2026-06-01T00:00:00Z"

[[venues]]
id = "{VENUE}"
application = "parks"
name = "西湖北山门"
operator_channel = "{CHANNEL}"
terminals = ["WL-G1", "WL-G2"]

[[issuer_keys]]
key_id = "test-issuer"
issuer = "浙江省社会保障卡服务平台"
algorithm = "ed25519"
public_key = "{issuer_key}"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

{cards}
{extra}
"#
    )
}

/// What [`file_test_catalog`] made: the keys and card references of the test city.
#[derive(Debug)]
pub struct CityKeys {
    /// The key of [`CHANNEL`] (and [`STRANGER`]).
    pub channel_key: SigningKey,
    /// The trusted issuer's key (`test-issuer`).
    pub issuer_key: SigningKey,
    /// Card references by name.
    pub cards: HashMap<&'static str, String>,
    /// The holder-data file written into `dir`.
    pub holders_file: std::path::PathBuf,
}

/// Files the test city's catalog into `store` (SQLite or PostgreSQL): uploads the components,
/// applies the catalog, writes the holder-data file into `dir`.
pub async fn file_test_catalog(store: &Store, dir: &std::path::Path, wasm: &str, options: &CityOptions) -> CityKeys {
        let bytes = std::fs::read(wasm).expect("read the parks component");
        let sha256 = store.put_artifact("test", &bytes).await.expect("upload artifact");
        let hostile = std::fs::read(crate::artifacts::HOSTILE).expect("read the hostile component");
        let hostile_sha = store.put_artifact("test", &hostile).await.expect("upload artifact");

        let channel_key = SigningKey::generate(KeyAlgorithm::Ed25519);
        let issuer_key = SigningKey::generate(KeyAlgorithm::Ed25519);
        let toml = catalog_toml(
            &sha256,
            &hostile_sha,
            &channel_key.public_key_base64().expect("public key"),
            &issuer_key.public_key_base64().expect("public key"),
            &options.extra_catalog,
        );
        let mut catalog = onecard_catalog::declarative::parse(&toml).expect("test catalog parses");
        // Only reads the plugins' manifests: one instance slot (a pool of 32 is more address
        // space than valgrind can reserve for the instruction-count driver).
        let runtime = crate::runtime_with(onecard_gateway::runtime::RuntimeConfig { max_instances: 1, cache_dir: Some(crate::cache_dir()), ..Default::default() });
        let plugin = crate::load(&runtime, wasm, &onecard_gateway::capabilities::Grants::all()).await;
        let parks_manifest = onecard_gateway::filing::manifest(plugin.info());
        let hostile_plugin = crate::load(&runtime, crate::artifacts::HOSTILE, &onecard_gateway::capabilities::Grants::all()).await;
        catalog.applications[0].config = serde_json::from_str(PARKS_CONFIG).expect("parks config");
        catalog.applications[0].filings[0].manifest = parks_manifest.clone();
        catalog.applications[1].filings[0].manifest = onecard_gateway::filing::manifest(hostile_plugin.info());
        catalog.applications[2].filings[0].manifest = parks_manifest;
        for extra in &options.apps {
            let bytes = std::fs::read(&extra.wasm).unwrap_or_else(|e| panic!("read {}: {e}", extra.wasm));
            let sha256 = store.put_artifact("test", &bytes).await.expect("upload artifact");
            let plugin = crate::load(&runtime, &extra.wasm, &onecard_gateway::capabilities::Grants::all()).await;
            let manifest = onecard_gateway::filing::manifest(plugin.info());
            catalog.grants.push(Grant {
                channel: CHANNEL.into(),
                application: extra.id.clone(),
                actions: manifest.actions.iter().map(|a| a.name.clone()).collect(),
                not_before: "2026-01-01T00:00:00Z".parse().expect("time"),
                not_after: "2036-01-01T00:00:00Z".parse().expect("time"),
                status: GrantStatus::Active,
            });
            catalog.applications.push(Application {
                id: extra.id.clone(),
                name: extra.id.clone(),
                scenario: extra.id.clone(),
                department: "hz-parks".into(),
                card_status_policy: extra.card_status_policy.clone(),
                config: extra.config.clone(),
                notice: None,
                filings: vec![Filing {
                    number: 1,
                    state: FilingState::Online,
                    sha256,
                    capabilities: BTreeSet::new(),
                    manifest,
                    backends: extra.backends.clone(),
                }],
            });
        }
        for app in &mut catalog.applications {
            app.filings[0].capabilities = app.filings[0].manifest.capabilities.clone();
        }
        let admin = Principal { name: "test-admin".into(), role: Role::ProvinceAdmin, department: None, city: None, channel: None };
        onecard_catalog::service::apply(store, &admin, catalog, false, &|_| None).await.expect("apply the test catalog");

        let mut cards = HashMap::new();
        for (i, (name, _, _)) in CARDS.iter().enumerate() {
            cards.insert(*name, store.card_ref(&test_ssn(i as u32 + 1)).await.expect("card ref"));
        }
        let mut holders: serde_json::Map<String, Value> = [("senior", "76"), ("young", "25"), ("revoked", "70"), ("temporary", "40"), ("adult", "35")]
            .into_iter()
            .map(|(name, age)| (cards[name].clone(), serde_json::json!({ "holder.age": age, "holder.name": "测试持卡人" })))
            .collect();
        for (name, scope, value) in &options.holders {
            let card_ref = match name.strip_prefix("ssn:") {
                Some(ssn) => store.card_ref(ssn).await.expect("card ref"),
                None => cards[name].clone(),
            };
            let entry = holders.entry(card_ref).or_insert_with(|| serde_json::json!({}));
            entry[*scope] = Value::String(value.clone());
        }
        let holders_file = dir.join("holders.json");
        std::fs::write(&holders_file, Value::Object(holders).to_string()).expect("write holders");
    CityKeys { channel_key, issuer_key, cards, holders_file }
}

/// Sends `body` to the gateway at `base`, signed by `signer` with `timestamp` and `nonce`.
#[allow(clippy::too_many_arguments)]
pub async fn send_signed(
    http: &reqwest::Client,
    base: &str,
    signer: &RequestSigner,
    app: &str,
    action: &str,
    body: &Value,
    timestamp: u64,
    nonce: &str,
) -> Answer {
    let path = format!("/v1/apps/{app}/actions/{action}");
    let bytes = serde_json::to_vec(body).expect("json");
    let sig = signer.sign_at("POST", &path, &bytes, timestamp, nonce);
    let mut request = http.post(format!("{base}{path}")).body(bytes).header("content-type", "application/json");
    for (name, value) in sig.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, headers, body }
}

/// A running test city.
#[derive(Debug)]
pub struct TestCity {
    /// The server.
    pub running: Running,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The catalog store.
    pub store: Store,
    /// The database file.
    pub database: String,
    /// Signs as [`CHANNEL`].
    pub signer: RequestSigner,
    /// Signs as [`STRANGER`] (same key, registered for both).
    pub stranger: RequestSigner,
    /// The trusted issuer.
    pub issuer: IssuerSigningKey,
    /// Card references by name.
    pub cards: HashMap<&'static str, String>,
    /// HTTP client.
    pub http: reqwest::Client,
    config: ServeConfig,
    _dir: tempfile::TempDir,
}

/// One answer of the gateway.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// JSON body.
    pub body: Value,
}

impl Answer {
    /// The error code, if refused.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        self.body["request_id"].as_str().unwrap_or("")
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Another application filed online in the test city, granted to [`CHANNEL`] for every action
/// its component describes.
#[derive(Debug, Clone)]
pub struct ExtraApp {
    /// Application id.
    pub id: String,
    /// Path of its component (an `artifacts::` constant).
    pub wasm: String,
    /// Its configuration.
    pub config: Value,
    /// Backends: name → base URL (`settlement` is the settlement port).
    pub backends: BTreeMap<String, String>,
    /// Card-status policies by action (others get the default).
    pub card_status_policy: BTreeMap<String, CardStatusPolicy>,
}

/// Settings of a test city.
#[derive(Debug, Clone)]
pub struct CityOptions {
    /// Extra catalog TOML (policies, consents …; cards are named `ssn:` + [`ssn_of`]).
    pub extra_catalog: String,
    /// Adjusts the server configuration.
    pub configure: fn(&mut ServeConfig),
    /// More applications.
    pub apps: Vec<ExtraApp>,
    /// More holder attributes: card name → (scope, value). The name may also be `ssn:` + the SSN
    /// of a card that `extra_catalog` registers (see [`TestCity::token_for`]).
    pub holders: Vec<(&'static str, &'static str, String)>,
}

impl Default for CityOptions {
    fn default() -> Self {
        CityOptions { extra_catalog: String::new(), configure: |_| {}, apps: Vec::new(), holders: Vec::new() }
    }
}

/// The SSN of test card `name` (for `ssn:` references in extra catalog TOML).
pub fn ssn_of(name: &str) -> String {
    let i = CARDS.iter().position(|(n, _, _)| *n == name).unwrap_or_else(|| panic!("no test card {name}"));
    test_ssn(i as u32 + 1)
}

/// The names of the test cards.
pub fn card_names() -> Vec<&'static str> {
    CARDS.iter().map(|(n, _, _)| *n).collect()
}

impl TestCity {
    /// Starts the city with the parks plugin at `wasm`.
    pub async fn start(wasm: &str, options: CityOptions) -> TestCity {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("city.db").display().to_string();
        let store = Store::open(&database).await.expect("open catalog");
        let CityKeys { channel_key, issuer_key, cards, holders_file } = file_test_catalog(&store, dir.path(), wasm, &options).await;
        let mut config = ServeConfig::default();
        config.holders = Some(holders_file);
        config.listen = "127.0.0.1:0".into();
        config.database = database.clone();
        config.runtime.cache_dir = Some(crate::cache_dir());
        config.sync.wait_ms = 1000;
        (options.configure)(&mut config);
        let running = onecard_gateway::server::serve(&config).await.expect("serve");
        let base = format!("http://{}", running.addr);
        let channel_bytes = channel_key.to_bytes();
        TestCity {
            running,
            base,
            store,
            database,
            signer: RequestSigner::new(CHANNEL, "gate-2026", channel_key).expect("signer"),
            stranger: RequestSigner::new(
                STRANGER,
                "app-2026",
                SigningKey::from_bytes(KeyAlgorithm::Ed25519, &channel_bytes).expect("key"),
            )
            .expect("signer"),
            issuer: IssuerSigningKey::new("test-issuer", issuer_key).expect("issuer"),
            cards,
            http: reqwest::Client::new(),
            config,
            _dir: dir,
        }
    }

    /// Shuts the server down cleanly and starts it again on the same database and
    /// configuration, as an operator's restart would.
    pub async fn restart(&mut self) {
        self.running.shutdown().await.expect("a clean shutdown");
        self.running = onecard_gateway::server::serve(&self.config).await.expect("serve again");
        self.base = format!("http://{}", self.running.addr);
    }

    /// A fresh credential for card `name`, issued now, valid 30 s.
    pub fn token(&self, name: &str) -> String {
        self.token_at(name, unix_now(), 30)
    }

    /// A fresh credential (issued now, valid 30 s) for the card `card_ref`: for cards that
    /// `extra_catalog` registers (`city.store.card_ref(ssn)` gives their reference).
    pub fn token_for(&self, card_ref: &str) -> String {
        let claims = CredentialClaims::new(card_ref.to_owned(), "330100", unix_now(), 30);
        mint(&self.issuer, &claims).expect("mint")
    }

    /// A credential for card `name` issued at `issued_at` valid `validity` seconds.
    pub fn token_at(&self, name: &str, issued_at: u64, validity: u8) -> String {
        let claims = CredentialClaims::new(self.cards[name].clone(), "330100", issued_at, validity);
        mint(&self.issuer, &claims).expect("mint")
    }

    /// Sends `body` to `app`/`action` signed by `signer` with `timestamp` and `nonce`.
    pub async fn send(&self, signer: &RequestSigner, app: &str, action: &str, body: &Value, timestamp: u64, nonce: &str) -> Answer {
        send_signed(&self.http, &self.base, signer, app, action, body, timestamp, nonce).await
    }

    /// Sends `body` signed by the city's channel now with a fresh nonce.
    pub async fn call(&self, app: &str, action: &str, body: &Value) -> Answer {
        self.send(&self.signer, app, action, body, unix_now(), &onecard_gateway::auth::random_nonce()).await
    }

    /// Enter the park with card `name`.
    pub async fn enter(&self, name: &str) -> Answer {
        let body = serde_json::json!({
            "credential": self.token(name),
            "venue": VENUE,
            "terminal": "WL-G1",
            "idempotency_key": onecard_gateway::auth::random_nonce(),
        });
        self.call("parks", "enter", &body).await
    }

    /// The audit record of `request_id` (after flushing the writer).
    pub async fn audit(&self, request_id: &str) -> RecordFields {
        self.running.gateway.audit.flush().await.expect("flush audit");
        let store = AuditStore::connect(&self.database, &self.running.gateway.config.gateway_id).await.expect("audit store");
        let records = store.records(0, 100_000).await.expect("records");
        records.into_iter().map(|r| r.fields).find(|r| r.request_id == request_id).unwrap_or_else(|| panic!("no audit record for {request_id}"))
    }

    /// The gateway's audit store (after flushing the writer).
    pub async fn audit_store(&self) -> AuditStore {
        self.running.gateway.audit.flush().await.expect("flush audit");
        AuditStore::connect(&self.database, &self.running.gateway.config.gateway_id).await.expect("audit store")
    }

    /// Every audit record of the gateway's chain, in order (after flushing the writer).
    pub async fn records(&self) -> Vec<onecard_audit::AuditRecord> {
        self.audit_store().await.records(0, 100_000).await.expect("records")
    }

    /// Every ledger entry the gateway committed for `app`, in commit order (after flushing the
    /// writer). The audit crate looks entries up by key only, so the keys are listed here.
    pub async fn ledger(&self, app: &str) -> Vec<LedgerRecord> {
        let store = self.audit_store().await;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT idempotency_key FROM ledger_entries WHERE app = $1 ORDER BY chain, audit_seq, position")
                .bind(app.to_string())
                .fetch_all(store.pool())
                .await
                .expect("ledger keys");
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            entries.push(store.ledger_entry(app, &key).await.expect("ledger entry").expect("listed entry exists"));
        }
        entries
    }

    /// Waits until the gateway enforces a catalog version ≥ the store's (or 5 s pass).
    pub async fn synced(&self) {
        let target = self.store.version().await.expect("version");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if self.running.gateway.state.load().is_some_and(|e| e.version() >= target) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the gateway did not reach catalog version {target}");
    }

    /// `now` in unix seconds.
    pub fn now() -> u64 {
        unix_now()
    }
}
