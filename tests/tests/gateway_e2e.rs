//! The request path end to end: `onecard serve` on a loopback port with a real catalog (SQLite),
//! the real parks and hostile components, signed requests over HTTP. One test per refusal code;
//! each also reads the audit record the decision left.

use std::time::Duration;

use onecard_tests::artifacts;
use onecard_tests::city::{CHANNEL, CityOptions, TestCity, VENUE};
use serde_json::{Value, json};

async fn city() -> TestCity {
    TestCity::start(artifacts::PARKS, CityOptions::default()).await
}

fn enter_body(city: &TestCity, card: &str) -> Value {
    json!({ "credential": city.token(card), "venue": VENUE, "terminal": "WL-G1", "idempotency_key": onecard_gateway::auth::random_nonce() })
}

/// Asserts a refusal with `code` and `status`, and its audit record.
async fn refused(city: &TestCity, answer: &onecard_tests::city::Answer, code: &str, status: u16) -> onecard_audit::RecordFields {
    assert_eq!((answer.status, answer.code()), (status, code), "{}", answer.body);
    assert_eq!(answer.body["decision"], "refused");
    assert_eq!(answer.headers["x-request-id"].to_str().unwrap(), answer.request_id());
    let record = city.audit(answer.request_id()).await;
    assert_eq!(record.code.as_deref(), Some(code));
    assert_eq!(record.status, i64::from(status));
    assert_ne!(record.outcome, "allowed");
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entitled_senior_enters_and_the_decision_is_audited() {
    let city = city().await;
    let answer = city.call("parks", "enter", &enter_body(&city, "senior")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["decision"], "allowed");
    assert_eq!(answer.body["result"]["entitlement"]["kind"], "senior", "{}", answer.body);
    let record = city.audit(answer.request_id()).await;
    assert_eq!(record.outcome, "allowed");
    assert_eq!(record.channel.as_deref(), Some(CHANNEL));
    assert_eq!(record.venue.as_deref(), Some(VENUE));
    assert_eq!(record.card_ref.as_deref(), Some(city.cards["senior"].as_str()));
    assert!(record.plugin_sha256.is_some());
    // The plugin saw only the consented scope: a second entry is anti-passback, not a new admission.
    let again = city.call("parks", "enter", &enter_body(&city, "senior")).await;
    refused(&city, &again, "ALREADY_INSIDE", 422).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signature() {
    let city = city().await;
    let body = enter_body(&city, "senior");
    let path = "/v1/apps/parks/actions/enter";
    let sig = city.signer.sign("POST", path, b"{\"something\":\"else\"}");
    let mut request = city.http.post(format!("{}{path}", city.base)).json(&body);
    for (name, value) in sig.pairs() {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let answer = onecard_tests::city::Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap(),
    };
    let record = refused(&city, &answer, "CHANNEL_SIGNATURE_INVALID", 401).await;
    assert_eq!(record.channel, None, "an unauthenticated caller is not named as the channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_timestamp() {
    let city = city().await;
    let answer = city.send(&city.signer, "parks", "enter", &enter_body(&city, "senior"), TestCity::now() - 301, "stale-nonce-0000001").await;
    refused(&city, &answer, "REQUEST_TIMESTAMP_SKEW", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_nonce() {
    let city = city().await;
    let now = TestCity::now();
    let first = city.send(&city.signer, "parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE}), now, "nonce-used-twice-001").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = city.send(&city.signer, "parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE}), now, "nonce-used-twice-001").await;
    refused(&city, &again, "REQUEST_REPLAYED", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel() {
    let city = city().await;
    let key = onecard_gateway::auth::SigningKey::generate(onecard_catalog::model::KeyAlgorithm::Ed25519);
    let signer = onecard_gateway::auth::RequestSigner::new("3300000099", "k1", key).unwrap();
    let answer = city.send(&signer, "parks", "enter", &enter_body(&city, "senior"), TestCity::now(), "unknown-channel-01").await;
    refused(&city, &answer, "CHANNEL_UNKNOWN", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_without_grant() {
    let city = city().await;
    let answer = city
        .send(&city.stranger, "parks", "check", &json!({"credential": city.token("senior")}), TestCity::now(), "no-grant-nonce-0001")
        .await;
    let record = refused(&city, &answer, "CHANNEL_NOT_AUTHORIZED", 403).await;
    assert_eq!(record.channel.as_deref(), Some(onecard_tests::city::STRANGER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_not_online() {
    let city = city().await;
    let answer = city.call("museum", "check", &json!({"credential": city.token("senior")})).await;
    refused(&city, &answer, "APP_NOT_ONLINE", 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_app_carries_its_notice() {
    let city = city().await;
    let admin = onecard_catalog::roles::Principal {
        name: "province".into(),
        role: onecard_catalog::roles::Role::ProvinceAdmin,
        department: None,
        city: None,
        channel: None,
    };
    onecard_catalog::service::transition(
        &city.store,
        &admin,
        "parks",
        1,
        onecard_catalog::workflow::FilingState::Suspended,
        "risk found in a security review",
        Some("安全检查期间暂停入园服务".into()),
    )
    .await
    .expect("suspend");
    city.synced().await;
    let answer = city.call("parks", "enter", &enter_body(&city, "senior")).await;
    let record = refused(&city, &answer, "APP_SUSPENDED", 503).await;
    assert_eq!(answer.body["error"]["notice"], "安全检查期间暂停入园服务");
    assert!(record.detail.contains("安全检查期间暂停入园服务"), "{}", record.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_not_registered() {
    let city = city().await;
    let mut body = enter_body(&city, "senior");
    body["venue"] = json!("nowhere-park");
    let answer = city.call("parks", "enter", &body).await;
    refused(&city, &answer, "VENUE_NOT_REGISTERED", 403).await;
    assert_eq!(answer.body["error"]["field"], "venue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_with_retry_after() {
    let options = CityOptions {
        extra_catalog: "[[policies]]\napplication = \"parks\"\nholder_per_minute = 1\n".into(),
        ..CityOptions::default()
    };
    let city = TestCity::start(artifacts::PARKS, options).await;
    let first = city.call("parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.headers.contains_key("ratelimit-limit") || first.headers.contains_key("ratelimit"), "{:?}", first.headers);
    let second = city.call("parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE})).await;
    refused(&city, &second, "RATE_LIMITED", 429).await;
    let retry: u64 = second.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Another holder is not limited by the first one's quota.
    let other = city.call("parks", "check", &json!({"credential": city.token("adult"), "venue": VENUE})).await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_name_the_field() {
    let city = city().await;
    let mut body = enter_body(&city, "senior");
    body["params"] = json!({ "slot": 5 });
    let answer = city.call("parks", "enter", &body).await;
    refused(&city, &answer, "INVALID_PARAMS", 400).await;
    assert_eq!(answer.body["error"]["field"], "slot");
    // Nothing changed: the holder can still enter.
    let ok = city.call("parks", "enter", &enter_body(&city, "senior")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token() {
    let city = city().await;
    let mut body = enter_body(&city, "senior");
    body["credential"] = json!(city.token_at("senior", TestCity::now() - 120, 30));
    let answer = city.call("parks", "enter", &body).await;
    refused(&city, &answer, "CREDENTIAL_EXPIRED", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_token() {
    let city = city().await;
    let token = city.token("senior");
    let first = city.call("parks", "check", &json!({"credential": token, "venue": VENUE})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = city.call("parks", "check", &json!({"credential": token, "venue": VENUE})).await;
    let record = refused(&city, &again, "CREDENTIAL_REPLAYED", 401).await;
    assert_eq!(record.card_ref, None, "a replayed credential does not identify the card in the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_from_an_untrusted_issuer() {
    let city = city().await;
    let rogue = onecard_gateway::credential::IssuerSigningKey::new(
        "rogue-issuer",
        onecard_gateway::auth::SigningKey::generate(onecard_catalog::model::KeyAlgorithm::Ed25519),
    )
    .unwrap();
    let claims = onecard_gateway::credential::CredentialClaims::new(city.cards["senior"].clone(), "330100", TestCity::now(), 30);
    let mut body = enter_body(&city, "senior");
    body["credential"] = json!(onecard_gateway::credential::mint(&rogue, &claims).unwrap());
    let answer = city.call("parks", "enter", &body).await;
    refused(&city, &answer, "CREDENTIAL_ISSUER_UNTRUSTED", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_statuses_per_policy() {
    let city = city().await;
    for (card, code) in [
        ("temporary", "CARD_TEMPORARILY_LOST"),
        ("lost", "CARD_LOST"),
        ("locked", "CARD_LOCKED"),
        ("cancelled", "CARD_CANCELLED"),
        ("sealed", "CARD_SEALED"),
    ] {
        let answer = city.call("parks", "enter", &enter_body(&city, card)).await;
        let record = refused(&city, &answer, code, 403).await;
        assert_eq!(record.card_ref.as_deref(), Some(city.cards[card].as_str()), "{card}");
        assert_eq!(record.blame.as_deref(), Some("holder"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_reported_lost_is_refused_within_a_second() {
    let city = city().await;
    let ok = city.call("parks", "check", &json!({"credential": city.token("adult"), "venue": VENUE})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let issuer = onecard_catalog::roles::Principal { name: "issuer".into(), role: onecard_catalog::roles::Role::CardIssuer, department: None, city: None, channel: None };
    let update = onecard_catalog::store::CardUpdate {
        status: Some(onecard_catalog::model::CardStatus::TemporaryLoss),
        social_locked: None,
        financial_locked: None,
        note: Some("holder phoned the hotline".into()),
    };
    let reported = std::time::Instant::now();
    onecard_catalog::service::update_card(&city.store, &issuer, &city.cards["adult"], update).await.expect("report lost");
    loop {
        let answer = city.call("parks", "enter", &enter_body(&city, "adult")).await;
        if answer.code() == "CARD_TEMPORARILY_LOST" {
            break;
        }
        assert!(reported.elapsed() < Duration::from_secs(1), "still {} after 1 s", answer.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("card loss enforced {} ms after the report", reported.elapsed().as_millis());
}

/// The gateway applies card and consent changes in place, without the catalog's snapshot; what
/// it then enforces must be that snapshot exactly (the same content hash), and it must say so
/// to the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_the_feed_give_the_catalogs_snapshot_and_the_gateway_reports_it() {
    use onecard_catalog::roles::{Principal, Role};
    let city = city().await;
    let issuer = Principal { name: "issuer".into(), role: Role::CardIssuer, department: None, city: None, channel: None };
    let channel = Principal { name: "channel".into(), role: Role::Channel, department: None, city: None, channel: Some(CHANNEL.into()) };
    let lost = onecard_catalog::store::CardUpdate { status: Some(onecard_catalog::model::CardStatus::TemporaryLoss), social_locked: None, financial_locked: None, note: None };
    onecard_catalog::service::update_card(&city.store, &issuer, &city.cards["adult"], lost).await.expect("report lost");
    let consent = |purpose: &str| onecard_catalog::service::NewConsent {
        application: "parks".into(),
        scopes: ["holder.age".to_string()].into(),
        purpose: purpose.into(),
        not_after: chrono::Utc::now() + chrono::Duration::days(30),
    };
    let kept = onecard_catalog::service::grant_consent(&city.store, &channel, &city.cards["young"], consent("kept")).await.expect("grant");
    let withdrawn = onecard_catalog::service::grant_consent(&city.store, &channel, &city.cards["young"], consent("withdrawn")).await.expect("grant");
    onecard_catalog::service::revoke_consent(&city.store, &channel, &city.cards["young"], &withdrawn.id).await.expect("revoke");
    city.synced().await;

    let enforced = city.running.gateway.state.load().expect("a state");
    let (catalog, version) = city.store.full_catalog().await.expect("catalog");
    assert_eq!(enforced.version(), version);
    let snapshot = onecard_catalog::snapshot::Snapshot::build(&catalog, version, chrono::Utc::now(), chrono::Duration::minutes(5));
    assert_eq!(enforced.content_hash(), snapshot.content_hash(), "the state built from changes differs from the catalog's snapshot");
    let young = enforced.consents(&city.cards["young"], "parks");
    assert!(young.iter().any(|c| c.id == kept.id && c.revoked_at.is_none()), "{young:?}");
    assert!(young.iter().any(|c| c.id == withdrawn.id && c.revoked_at.is_some()), "{young:?}");
    assert!(young.windows(2).all(|w| w[0].id < w[1].id), "a holder's consents are in id order, as in a snapshot");

    // The reporter tells the catalog this version and this hash (off the request path, soon).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let gateways = city.store.gateways().await.expect("gateways");
        if gateways.iter().any(|g| g.applied_version == version && g.snapshot_sha256 == snapshot.content_hash()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the gateway did not report version {version} with its hash: {gateways:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_missing() {
    let city = city().await;
    let answer = city.call("parks", "enter", &enter_body(&city, "young")).await;
    refused(&city, &answer, "CONSENT_REQUIRED", 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_revoked() {
    let city = city().await;
    let answer = city.call("parks", "enter", &enter_body(&city, "revoked")).await;
    refused(&city, &answer, "CONSENT_REVOKED", 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_timeout() {
    let city = city().await;
    let answer = city.call("hostile", "loop", &json!({})).await;
    let record = refused(&city, &answer, "PLUGIN_TIMEOUT", 504).await;
    assert_eq!(record.blame.as_deref(), Some("plugin"));
    assert_eq!(record.outcome, "failed");
    // The gateway still serves.
    let ok = city.call("hostile", "ok", &json!({})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_answer_that_is_not_json() {
    let city = city().await;
    let answer = city.call("hostile", "not_json", &json!({})).await;
    let record = refused(&city, &answer, "PLUGIN_FAULT", 502).await;
    assert_eq!(record.blame.as_deref(), Some("plugin"));
    assert_eq!(record.outcome, "failed");
    // A well-formed answer passes through as the plugin wrote it.
    let ok = city.call("hostile", "ok", &json!({})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["decision"], "allowed");
    assert_eq!(ok.body["result"], json!({ "ok": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_stale_fails_closed_and_health_says_why() {
    let options = CityOptions {
        configure: |c| {
            c.sync.staleness_secs = 1;
            c.sync.retry_ms = 100;
        },
        ..CityOptions::default()
    };
    let city = TestCity::start(artifacts::PARKS, options).await;
    let ok = city.call("parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The catalog goes away: its database pool is closed under the gateway.
    city.running.catalog.as_ref().expect("single-process mode").pool().close().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let answer = city.call("parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE})).await;
    refused(&city, &answer, "CATALOG_STALE", 503).await;
    let health = city.http.get(format!("{}/health", city.base)).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "stale");
    assert!(health["reason"].as_str().unwrap().contains("last catalog sync"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_openapi() {
    let city = city().await;
    let ok = city.call("parks", "check", &json!({"credential": city.token("senior"), "venue": VENUE})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let health: Value = city.http.get(format!("{}/health", city.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let metrics = city.http.get(format!("{}/metrics", city.base)).send().await.unwrap().text().await.unwrap();
    for needle in ["onecard_requests_total{", "onecard_request_duration_seconds_bucket", "onecard_plugin_duration_seconds", "onecard_catalog_sync_age_seconds"] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
    let doc: Value = city.http.get(format!("{}/openapi.json", city.base)).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/v1/apps/{app}/actions/{action}"]["post"].is_object());
    let description = doc["info"]["description"].as_str().unwrap();
    for code in onecard_gateway::error::CODES {
        assert!(description.contains(code.code), "{} missing from the OpenAPI document", code.code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sees_only_consented_scopes_masked_and_the_read_is_logged_for_the_holder() {
    let adult = onecard_tests::city::ssn_of("adult");
    let options = CityOptions {
        extra_catalog: format!(
            "[[consents]]\nid = \"consent-spy\"\ncard_ref = \"ssn:{adult}\"\napplication = \"hostile\"\nscopes = [\"holder.age\", \"holder.id_number\", \"holder.name\"]\npurpose = \"test\"\nchannel = \"{CHANNEL}\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2036-01-01T00:00:00Z\"\n"
        ),
        holders: vec![
            ("adult", "holder.id_number", "330106195003070099".into()),
            ("adult", "holder.phone", "13800138000".into()),
            ("adult", "holder.category", "student".into()),
        ],
        ..CityOptions::default()
    };
    let city = TestCity::start(artifacts::PARKS, options).await;
    let answer = city.call("hostile", "spy", &json!({ "credential": city.token("adult") })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = &answer.body["result"]["attributes"];
    assert_eq!(
        seen,
        &json!({ "holder.age": "35", "holder.name": "测****", "holder.id_number": "330106********0099" }),
        "only the declared, consented scopes, identifiers masked"
    );
    city.running.gateway.audit.flush().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let accesses = city.store.accesses_of(&city.cards["adult"]).await.unwrap();
        if let Some(a) = accesses.iter().find(|a| a.application == "hostile") {
            assert_eq!(a.action, "spy");
            assert_eq!(a.consent_id.as_deref(), Some("consent-spy"));
            assert_eq!(a.scopes.len(), 3);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the read never reached the holder's access log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without a consent for the hostile app, the same action is refused and reads nothing.
    let refused_answer = city.call("hostile", "spy", &json!({ "credential": city.token("senior") })).await;
    refused(&city, &refused_answer, "CONSENT_REQUIRED", 403).await;
}
