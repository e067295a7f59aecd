//! The plugin author's loop end to end, as a department and its province run it, with the real
//! binary: `onecard plugin new` → `cargo test` in the new crate (the template's Harness tests pass
//! unchanged) → `onecard plugin build` → the printed filing appended to the example city's
//! catalog and applied with `onecard catalog apply` → the component uploaded to the catalog's
//! artifact store → the new action called through the gateway by one of the city's channels with
//! one of its cards.
//!
//! Slow: it compiles a crate natively and to wasm. The nested builds share a target dir under the
//! workspace's `target/`, so only the new crate itself is rebuilt on later runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use onecard_gateway::auth::{RequestSigner, SigningKeyFile, random_nonce};
use onecard_gateway::credential::{CredentialClaims, IssuerSigningKey, mint};
use onecard_gateway::server::{Running, ServeConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The example city's park-gate channel (its test key is `examples/city/keys/park-gates.toml`).
const CHANNEL: &str = "3300000001";
/// A card of the example city (li, an adult).
const CARD: &str = "330106199006150044";

/// The nested cargo runs get the environment a department's shell would have: flags meant for
/// this test build must not leak into them, and they share one target dir.
fn clean(cmd: &mut Command) -> &mut Command {
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", Path::new(WORKSPACE).join("target/plugin-author"))
}

fn onecard(args: &[&str]) -> Output {
    clean(&mut Command::new(env!("CARGO_BIN_EXE_onecard"))).args(args).output().expect("run onecard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A test key of the example city (`examples/city/keys/NAME.toml`).
fn city_key(name: &str) -> SigningKeyFile {
    SigningKeyFile::read(&Path::new(WORKSPACE).join(format!("examples/city/keys/{name}.toml"))).expect("the example city's test key")
}

/// The example city's catalog (`examples/city/catalog.toml`, as a province keeps it) with the new
/// application appended: its department, a grant to the city's park-gate channel, the
/// application entry with its config, and the filing exactly as `onecard plugin build` printed it.
fn catalog(filing: &str) -> String {
    let city = std::fs::read_to_string(Path::new(WORKSPACE).join("examples/city/catalog.toml")).expect("the example city's catalog");
    format!(
        r#"{city}

[[departments]]
id = "hz-culture"
name = "杭州市文化广电旅游局"
city = "3301"

[[grants]]
channel = "{CHANNEL}"
application = "hello"
actions = ["greet"]
not_before = "2026-01-01T00:00:00Z"
not_after = "2028-01-01T00:00:00Z"

[[applications]]
id = "hello"
name = "问候（插件模板）"
scenario = "greeting"
department = "hz-culture"

[applications.config]
daily_limit = 1

{filing}"#
    )
}

async fn synced(running: &Running) {
    let store = running.catalog.as_ref().expect("single-process mode has the store");
    let target = store.version().await.expect("version");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if running.gateway.state.load().is_some_and(|e| e.version() >= target) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway did not reach catalog version {target}");
}

async fn greet(http: &reqwest::Client, base: &str, signer: &RequestSigner, credential: &str) -> (u16, Value) {
    let path = "/v1/apps/hello/actions/greet";
    let body = serde_json::to_vec(&json!({"credential": credential, "params": {"language": "en"}, "idempotency_key": random_nonce()})).expect("JSON");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let signature = signer.sign_at("POST", path, &body, now, &random_nonce());
    let mut request = http.post(format!("{base}{path}")).body(body).header("content-type", "application/json");
    for (name, value) in signature.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the gateway answers");
    (response.status().as_u16(), response.json().await.expect("a JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_is_tested_built_filed_and_called_through_the_gateway() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let crate_dir = tmp.path().join("hello");
    let dir = crate_dir.to_str().expect("a UTF-8 temp path");

    // 1. A new crate from the template, outside any workspace: it depends on this SDK by path.
    let created = onecard(&["plugin", "new", "hello", "--dir", dir]);
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let sdk = std::fs::canonicalize(Path::new(WORKSPACE).join("sdk")).expect("the sdk");
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo_toml.contains(&format!("path = \"{}\"", sdk.display())), "{cargo_toml}");

    // 2. Its tests pass unchanged.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = clean(&mut Command::new(cargo)).current_dir(&crate_dir).args(["test", "--quiet"]).output().expect("run cargo test");
    let tested_out = text(&tested.stdout);
    assert!(tested.status.success(), "{tested_out}\n{}", text(&tested.stderr));
    let passed: usize = tested_out
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. ")?.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 3, "the template's Harness tests ran: {tested_out}");

    // 3. The component, its hash and the filing.
    let built = onecard(&["plugin", "build", "--dir", dir, "--filing-state", "online", "--json"]);
    assert_eq!(built.status.code(), Some(0), "{}", text(&built.stderr));
    let report: Value = serde_json::from_slice(&built.stdout).expect("build --json prints JSON");
    let wasm = PathBuf::from(report["path"].as_str().expect("path"));
    let bytes = std::fs::read(&wasm).expect("the component");
    let sha256 = hex::encode(Sha256::digest(&bytes));
    assert_eq!(report["sha256"], sha256.as_str());
    assert_eq!(report["size"], bytes.len());
    assert_eq!((report["plugin"].as_str(), report["wit"].as_str()), (Some("hello"), Some("onecard:plugin@1.0.0")));
    let filing = report["filing_toml"].as_str().expect("filing_toml");
    assert!(filing.contains(&format!("sha256 = \"{sha256}\"")), "{filing}");

    // 4. The province: the example city's catalog, the component uploaded, the filing applied.
    let db = tmp.path().join("city.db").display().to_string();
    let init = onecard(&["catalog", "init", "--db", &db]);
    assert_eq!(init.status.code(), Some(0), "{}", text(&init.stderr));
    let admin_token = text(&init.stdout).lines().last().expect("the token line").trim().to_owned();

    let mut config = ServeConfig { listen: "127.0.0.1:0".into(), database: db.clone(), ..ServeConfig::default() };
    config.sync.wait_ms = 1000;
    let mut running = onecard_gateway::server::serve(&config).await.expect("onecard serve");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let uploaded = http
        .post(format!("{base}/catalog/v1/admin/artifacts"))
        .bearer_auth(&admin_token)
        .header("content-type", "application/wasm")
        .body(bytes.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status().as_u16(), 200);
    let stored: Value = uploaded.json().await.expect("JSON");
    assert_eq!(stored["sha256"], sha256.as_str(), "the store hashes the same bytes");

    let catalog_file = tmp.path().join("catalog.toml");
    let toml = catalog(filing);
    std::fs::write(&catalog_file, toml).expect("write the catalog");
    let url = format!("{base}/catalog");
    let applied = onecard(&["catalog", "apply", catalog_file.to_str().expect("UTF-8"), "--url", &url, "--token", &admin_token]);
    let applied_out = text(&applied.stdout);
    assert_eq!(applied.status.code(), Some(0), "{applied_out}\n{}", text(&applied.stderr));
    assert!(applied_out.contains("application hello") && applied_out.contains("applied"), "{applied_out}");
    synced(&running).await;

    // 5. A channel calls the new action with a holder's card: allowed once, then the plugin's
    //    own refusal, with the limit from the application's catalog config.
    let store = running.catalog.as_ref().expect("store");
    let card_ref = store.card_ref(CARD).await.expect("card ref");
    let issuer_file = city_key("card-issuer");
    let issuer = IssuerSigningKey::new(issuer_file.key_id, issuer_file.key).expect("issuer");
    let token = || {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        mint(&issuer, &CredentialClaims::new(card_ref.clone(), "330100", now, 30)).expect("mint")
    };
    let gates = city_key("park-gates");
    let signer = RequestSigner::new(CHANNEL, &gates.key_id, gates.key).expect("signer");

    let (status, answer) = greet(&http, &base, &signer, &token()).await;
    assert_eq!((status, answer["decision"].as_str()), (200, Some("allowed")), "{answer}");
    assert_eq!(answer["result"]["greeting"], "Hello");
    assert_eq!((answer["result"]["greetings_today"].as_u64(), answer["result"]["daily_limit"].as_u64()), (Some(1), Some(1)));

    let (_, again) = greet(&http, &base, &signer, &token()).await;
    assert_eq!(again["decision"], "refused", "{again}");
    assert_eq!(again["error"]["code"], "DAILY_LIMIT_REACHED", "{again}");
    running.shutdown().await.expect("a clean shutdown");
}

#[test]
fn build_outside_a_plugin_crate_is_bad_usage_and_builds_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_str().expect("UTF-8");
    let out = onecard(&["plugin", "build", "--dir", dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PLUGIN_CRATE_NOT_FOUND"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(tmp.path()).expect("read").count(), 0, "nothing written");
}

#[test]
fn new_refuses_a_bad_name_or_an_existing_folder_with_exit_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("x");
    let out = onecard(&["plugin", "new", "Not_A_Name", "--dir", target.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PLUGIN_NAME_INVALID"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(tmp.path()).expect("read").count(), 0, "nothing written");

    std::fs::create_dir(&target).expect("mkdir");
    let out = onecard(&["plugin", "new", "hello", "--dir", target.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PLUGIN_DIR_EXISTS"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(tmp.path()).expect("read").count(), 1, "no staging folder left");
    assert_eq!(std::fs::read_dir(&target).expect("read").count(), 0, "the existing folder is untouched");
}
