//! The scaled form: a catalog server on PostgreSQL and two gateways (`onecard gateway`) following
//! it over HTTP, each with its own audit chain in the same database. A card reported lost through
//! the issuer API must be refused at both within one second.

use std::time::{Duration, Instant};

use base64::Engine as _;
use onecard_catalog::Store;
use onecard_catalog::roles::Role;
use onecard_catalog::store::NewToken;
use onecard_gateway::auth::{RequestSigner, random_nonce};
use onecard_gateway::server::{Running, ServeConfig};
use onecard_tests::artifacts;
use onecard_tests::city::{CHANNEL, CityKeys, CityOptions, TestCity, VENUE, file_test_catalog, send_signed};
use serde_json::json;

/// The URL of a fresh, empty PostgreSQL schema in `ONECARD_TEST_POSTGRES_URL`.
async fn postgres_schema() -> String {
    let base = std::env::var("ONECARD_TEST_POSTGRES_URL").expect("ONECARD_TEST_POSTGRES_URL is set");
    let schema = format!("scaled_{}_{}", std::process::id(), rand_suffix());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}")
}

async fn token(store: &Store, name: &str, role: Role) -> String {
    let mut w = store.begin_write("test").await.expect("write");
    let new = NewToken { name: name.into(), role, department: None, city: Some("3301".into()), channel: None };
    let (_, secret) = w.create_token(&new).await.expect("token");
    w.commit().await.expect("commit");
    secret
}

async fn gateway(id: &str, database: &str, catalog: &str, token: &str, public_key: &str, keys: &CityKeys) -> Running {
    let mut config = ServeConfig::default();
    config.listen = "127.0.0.1:0".into();
    config.database = database.into();
    config.holders = Some(keys.holders_file.clone());
    config.gateway.gateway_id = id.into();
    config.catalog.url = Some(catalog.into());
    config.catalog.token = Some(token.into());
    config.catalog.public_key = Some(public_key.into());
    config.runtime.cache_dir = Some(onecard_tests::cache_dir());
    config.sync.wait_ms = 2_000;
    onecard_gateway::server::gateway(&config).await.expect("start the gateway")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(onecard_pg), ignore = "needs PostgreSQL: set ONECARD_TEST_POSTGRES_URL")]
async fn two_gateways_on_one_postgresql_catalog_refuse_a_lost_card_within_a_second() {
    let database = postgres_schema().await;
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&database).await.expect("catalog on PostgreSQL");
    let keys = file_test_catalog(&store, dir.path(), artifacts::PARKS, &CityOptions::default()).await;
    let operator = token(&store, "city-ops", Role::CityOperator).await;
    let issuer = token(&store, "card-centre", Role::CardIssuer).await;
    let public_key = base64::engine::general_purpose::STANDARD.encode(store.signing_key().await.expect("key").verifying_key().as_bytes());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let catalog = format!("http://{}", listener.local_addr().expect("addr"));
    let api = onecard_catalog::api::ApiConfig::default();
    let catalog_store = store.clone();
    let server = tokio::spawn(async move { onecard_catalog::api::serve(listener, catalog_store, &api).await });

    let a = gateway("gateway-a", &database, &catalog, &operator, &public_key, &keys).await;
    let b = gateway("gateway-b", &database, &catalog, &operator, &public_key, &keys).await;
    let signer = RequestSigner::new(CHANNEL, "gate-2026", onecard_gateway::auth::SigningKey::from_bytes(
        onecard_catalog::model::KeyAlgorithm::Ed25519,
        &keys.channel_key.to_bytes(),
    ).expect("key")).expect("signer");
    let issuer_key = onecard_gateway::credential::IssuerSigningKey::new(
        "test-issuer",
        onecard_gateway::auth::SigningKey::from_bytes(onecard_catalog::model::KeyAlgorithm::Ed25519, &keys.issuer_key.to_bytes()).expect("key"),
    )
    .expect("issuer");
    let card = keys.cards["adult"].clone();
    let http = reqwest::Client::new();
    let check = |base: String| {
        let claims = onecard_gateway::credential::CredentialClaims::new(card.clone(), "330100", TestCity::now(), 30);
        let body = json!({ "credential": onecard_gateway::credential::mint(&issuer_key, &claims).expect("mint"), "venue": VENUE });
        let (http, signer) = (http.clone(), &signer);
        async move { send_signed(&http, &base, signer, "parks", "check", &body, TestCity::now(), &random_nonce()).await }
    };
    let bases = [format!("http://{}", a.addr), format!("http://{}", b.addr)];
    for base in &bases {
        let answer = check(base.clone()).await;
        assert_eq!(answer.status, 200, "{}: {}", base, answer.body);
    }

    let reported = Instant::now();
    let response = http
        .post(format!("{catalog}/v1/issuer/cards/{card}/status"))
        .bearer_auth(&issuer)
        .json(&json!({ "status": "temporary_loss", "note": "holder phoned the hotline" }))
        .send()
        .await
        .expect("issuer API");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());

    let mut enforced = [None, None];
    while enforced.iter().any(Option::is_none) {
        for (i, base) in bases.iter().enumerate() {
            if enforced[i].is_none() {
                let answer = check(base.clone()).await;
                // `check` allows a temporarily lost card only with the holder's authorization.
                if answer.code() == "HOLDER_AUTHORIZATION_REQUIRED" {
                    enforced[i] = Some(reported.elapsed());
                } else {
                    assert_eq!(answer.status, 200, "{}", answer.body);
                }
            }
        }
        assert!(reported.elapsed() < Duration::from_secs(1), "not refused at every gateway within 1 s: {enforced:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "card loss enforced at gateway-a after {} ms, at gateway-b after {} ms",
        enforced[0].unwrap_or_default().as_millis(),
        enforced[1].unwrap_or_default().as_millis()
    );
    // Both gateways report the version they enforce to the catalog.
    let status: serde_json::Value =
        http.get(format!("{catalog}/v1/admin/gateways")).bearer_auth(&operator).send().await.expect("gateways").json().await.expect("json");
    let listed = status.to_string();
    assert!(listed.contains("gateway-a") && listed.contains("gateway-b"), "{listed}");
    server.abort();
}
