//! HTTP API tests: the router driven with `oneshot`, and a long-poll client against a real
//! loopback server. Run on SQLite and PostgreSQL.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{ApiConfig, router};
use crate::ids::ssn_with_check;
use crate::roles::Role;
use crate::store::{NewToken, Store};
use crate::testing::{who, with_example};

const HOLDER_SSN: &str = "330106195003070024";

struct Fixture {
    store: Store,
    app: Router,
    admin: String,
    staff: String,
    foreign_staff: String,
    reviewer: String,
    auditor: String,
    issuer: String,
    operator: String,
    channel: String,
    card_ref: String,
}

async fn token(store: &Store, role: Role, department: Option<&str>, city: Option<&str>, channel: Option<&str>) -> String {
    let mut w = store.begin_write("setup").await.expect("w");
    let (_, t) = w
        .create_token(&NewToken {
            name: format!("{}-{}", role.as_str(), department.unwrap_or("x")),
            role,
            department: department.map(Into::into),
            city: city.map(Into::into),
            channel: channel.map(Into::into),
        })
        .await
        .expect("token");
    w.commit().await.expect("commit");
    t
}

async fn fixture(store: Store) -> Fixture {
    with_example(&store).await;
    crate::service::update(&store, &who(Role::ProvinceAdmin), "setup", |c| {
        c.departments.push(crate::model::Department { id: "hz-transit".into(), name: "交通".into(), city: "3301".into() });
        Ok(())
    })
    .await
    .expect("second department");
    let config = ApiConfig { max_body_bytes: 64 * 1024, ..ApiConfig::default() };
    Fixture {
        app: router(store.clone(), &config),
        admin: token(&store, Role::ProvinceAdmin, None, None, None).await,
        staff: token(&store, Role::DepartmentStaff, Some("hz-parks"), None, None).await,
        foreign_staff: token(&store, Role::DepartmentStaff, Some("hz-transit"), None, None).await,
        reviewer: token(&store, Role::DepartmentReviewer, Some("hz-parks"), None, None).await,
        auditor: token(&store, Role::Auditor, None, None, None).await,
        issuer: token(&store, Role::CardIssuer, None, None, None).await,
        operator: token(&store, Role::CityOperator, None, Some("3301"), None).await,
        channel: token(&store, Role::Channel, None, None, Some("3300000001")).await,
        card_ref: store.card_ref(HOLDER_SSN).await.expect("ref"),
        store,
    }
}

async fn send(app: &Router, method: &str, uri: &str, token: Option<&str>, body: Option<Vec<u8>>, content_type: &str) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header("x-onecard-holder-ssn", HOLDER_SSN);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(b) = &body {
        // As real clients do: tower-http refuses an oversized Content-Length before reading.
        req = req.header(header::CONTENT_TYPE, content_type).header(header::CONTENT_LENGTH, b.len());
    }
    let req = req.body(body.map(Body::from).unwrap_or_else(Body::empty)).expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    send(app, method, uri, token, body.map(|b| b.to_string().into_bytes()), "application/json").await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// A body endpoint: method, path, who may call it, a valid body, and a field to give the
/// wrong type.
struct Endpoint {
    method: &'static str,
    path: String,
    token: String,
    body: Value,
    field: &'static str,
}

fn endpoints(f: &Fixture) -> Vec<Endpoint> {
    let e = |method, path: &str, token: &String, body: Value, field| Endpoint { method, path: path.into(), token: token.clone(), body, field };
    let manifest = json!({"plugin": "parks", "version": "0.2.0", "actions": [{"name": "enter"}, {"name": "exit"}, {"name": "check"}]});
    vec![
        e("PUT", "/v1/admin/provinces/33", &f.admin, json!({"code": "33", "name": "浙江"}), "name"),
        e("PUT", "/v1/admin/cities/3301", &f.admin, json!({"code": "3301", "name": "杭州"}), "name"),
        e("PUT", "/v1/admin/departments/hz-parks", &f.admin, json!({"id": "hz-parks", "name": "园文局", "city": "3301"}), "city"),
        e("PUT", "/v1/admin/applications/parks", &f.staff, json!({"name": "公园", "scenario": "park_entry", "department": "hz-parks"}), "scenario"),
        e("POST", "/v1/admin/applications/parks/filings", &f.staff, json!({"sha256": "ab".repeat(32), "manifest": manifest}), "sha256"),
        e("PUT", "/v1/admin/channels/3300000001", &f.admin, json!({"id": "3300000001", "name": "闸机", "kind": "venue_operator", "keys": [{"key_id": "gate-2026", "algorithm": "ed25519", "public_key": "9dPyTEhcW0g0bgmUvdi14OKc7ENYZXSx7fdIbKUWuyU=", "not_before": "2026-01-01T00:00:00Z", "not_after": "2028-01-01T00:00:00Z"}]}), "name"),
        e("PUT", "/v1/admin/grants/3300000001/parks", &f.admin, json!({"actions": ["enter"], "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}), "actions"),
        e("POST", "/v1/admin/grants/3300000001/parks/revoke", &f.admin, json!({"note": "contract ended"}), "note"),
        e("PUT", "/v1/admin/venues/westlake-north-gate", &f.admin, json!({"id": "westlake-north-gate", "application": "parks", "name": "北门", "terminals": ["gate-01"]}), "name"),
        e("PUT", "/v1/admin/policies", &f.admin, json!({"city": "3301", "holder_per_day": 10}), "holder_per_day"),
        e("PUT", "/v1/admin/issuer-keys/hz-2026", &f.admin, json!({"key_id": "hz-2026", "issuer": "平台", "algorithm": "ed25519", "public_key": "zTmanyy9PsX1PGg0IJHK1am+eBaaAgOfQo36mxdOePA=", "not_before": "2026-01-01T00:00:00Z", "not_after": "2028-01-01T00:00:00Z"}), "public_key"),
        e("POST", "/v1/admin/tokens", &f.admin, json!({"name": "new auditor", "role": "auditor"}), "name"),
        e("POST", "/v1/issuer/cards", &f.issuer, json!({"ssn": ssn_with_check("33010620000101002"), "card_number": "A00000002", "card_id_code": "330100D15600000500000000000000A2", "issuing_region": "330100", "status": "sealed", "valid_until": "2036-01-01T00:00:00Z"}), "card_number"),
        e("POST", &format!("/v1/issuer/cards/{}/status", f.card_ref), &f.issuer, json!({"status": "temporary_loss", "note": "reported by phone"}), "status"),
        e("POST", "/v1/sync/report", &f.operator, json!({"gateway_id": "gw-1", "applied_version": 1, "snapshot_sha256": "cd".repeat(32)}), "applied_version"),
        e("POST", "/v1/sync/accesses", &f.operator, json!({"gateway_id": "gw-1", "records": []}), "records"),
        e("POST", "/v1/admin/applications/parks/filings/1/transitions", &f.admin, json!({"to": "suspended", "note": "inspection"}), "note"),
    ]
}

/// Fails naming the tables that differ (the full dumps are too long to print).
fn assert_unchanged(before: &Value, after: &Value) {
    let tables: Vec<&String> = before
        .as_object()
        .expect("dump")
        .iter()
        .filter(|(t, rows)| after.get(t.as_str()) != Some(rows))
        .map(|(t, _)| t)
        .collect();
    assert!(tables.is_empty(), "refused requests changed tables {tables:?}: {}", after);
}

fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(12345),
        _ => json!("not the right type"),
    }
}

crate::both_backends!(bad_input_on_every_endpoint_is_refused_and_changes_nothing, long_poll_sees_a_card_status_change_within_100ms);

async fn bad_input_on_every_endpoint_is_refused_and_changes_nothing(store: Store) {
    let f = fixture(store).await;
    let before = f.store.dump().await.expect("dump");
    for ep in endpoints(&f) {
        let place = format!("{} {}", ep.method, ep.path);
        let body = ep.body.to_string().into_bytes();
        type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, &'a str, StatusCode, &'a str);
        let cases: Vec<Case<'_>> = vec![
            ("no token", None, body.clone(), "application/json", StatusCode::UNAUTHORIZED, "TOKEN_MISSING"),
            ("wrong token", Some("oc_not-a-token"), body.clone(), "application/json", StatusCode::UNAUTHORIZED, "TOKEN_INVALID"),
            ("wrong role", Some(&f.auditor), body.clone(), "application/json", StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
            ("malformed JSON", Some(&ep.token), b"{,\"broken".to_vec(), "application/json", StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
            ("not JSON", Some(&ep.token), body.clone(), "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            ("oversized", Some(&ep.token), vec![b' '; 65 * 1024], "application/json", StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        ];
        for (what, token, body, ct, status, c) in cases {
            let (got, v) = send(&f.app, ep.method, &ep.path, token, Some(body), ct).await;
            assert_eq!((got, code(&v)), (status, c), "{place}: {what}: {v}");
            assert_eq!(v["error"]["blame"], "caller", "{place}: {what}");
        }
        let mut unknown = ep.body.clone();
        unknown["bogus"] = json!(1);
        let (got, v) = call(&f.app, ep.method, &ep.path, Some(&ep.token), Some(unknown)).await;
        assert_eq!((got, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_FIELD"), "{place}: unknown field: {v}");
        let mut wrong = ep.body.clone();
        wrong[ep.field] = wrong_type(&ep.body[ep.field]);
        let (got, v) = call(&f.app, ep.method, &ep.path, Some(&ep.token), Some(wrong)).await;
        assert_eq!((got, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "WRONG_TYPE"), "{place}: wrong type of {}: {v}", ep.field);
        // Optional fields (policy limits, card update fields) may be left out.
        if let Value::Object(o) = &ep.body
            && !["status", "holder_per_day"].contains(&ep.field)
        {
            let mut missing = o.clone();
            missing.remove(ep.field);
            let (got, v) = call(&f.app, ep.method, &ep.path, Some(&ep.token), Some(Value::Object(missing))).await;
            assert_eq!((got, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "MISSING_FIELD"), "{place}: missing {}: {v}", ep.field);
        }
    }

    // Another department's application.
    let foreign = [
        ("PUT", "/v1/admin/applications/parks", json!({"name": "x", "scenario": "park_entry", "department": "hz-parks"})),
        ("POST", "/v1/admin/applications/parks/filings", json!({"sha256": "ab".repeat(32), "manifest": {"plugin": "parks", "version": "9", "actions": [{"name": "enter"}]}})),
        ("PUT", "/v1/admin/venues/westlake-north-gate", json!({"id": "westlake-north-gate", "application": "parks", "name": "x"})),
    ];
    for (m, p, b) in foreign {
        let (got, v) = call(&f.app, m, p, Some(&f.foreign_staff), Some(b)).await;
        assert_eq!((got, code(&v)), (StatusCode::FORBIDDEN, "FOREIGN_DEPARTMENT"), "{m} {p}: {v}");
    }

    // Rule violations in well-formed bodies, workflow and holder refusals.
    let refusals = [
        ("PUT", "/v1/admin/policies", &f.admin, json!({"city": "3301", "holder_per_day": 999}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("PUT", "/v1/admin/policies", &f.operator, json!({"province": "33", "holder_per_day": 5}), StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
        ("PUT", "/v1/admin/grants/3300000001/metro", &f.admin, json!({"actions": ["tap"], "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("PUT", "/v1/admin/channels/3300000002", &f.admin, json!({"id": "3300000009", "name": "x", "kind": "bank_app"}), StatusCode::BAD_REQUEST, "INVALID_PATH"),
        ("PUT", "/v1/admin/channels/4400000001", &f.admin, json!({"id": "4400000001", "name": "x", "kind": "bank_app"}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("POST", "/v1/admin/applications/parks/filings/1/transitions", &f.reviewer, json!({"to": "reviewed", "note": "x"}), StatusCode::CONFLICT, "INVALID_TRANSITION"),
        ("POST", "/v1/admin/applications/parks/filings/1/transitions", &f.staff, json!({"to": "suspended", "note": "x"}), StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
        ("POST", "/v1/admin/applications/parks/filings/9/transitions", &f.admin, json!({"to": "suspended", "note": "x"}), StatusCode::NOT_FOUND, "FILING_NOT_FOUND"),
        ("POST", "/v1/admin/applications/nope/filings/1/transitions", &f.admin, json!({"to": "suspended", "note": "x"}), StatusCode::NOT_FOUND, "APP_NOT_FOUND"),
        ("POST", "/v1/issuer/cards", &f.issuer, json!({"ssn": "110105194912310021", "card_number": "A1", "card_id_code": "330100D15600000500000000000000A2", "issuing_region": "330100", "status": "normal", "valid_until": "2036-01-01T00:00:00Z"}), StatusCode::BAD_REQUEST, "INVALID_SSN"),
        ("POST", "/v1/issuer/cards", &f.issuer, json!({"ssn": HOLDER_SSN, "card_number": "A1", "card_id_code": "330100D15600000500000000000000A2", "issuing_region": "330100", "status": "normal", "valid_until": "2036-01-01T00:00:00Z"}), StatusCode::CONFLICT, "ALREADY_EXISTS"),
        ("POST", &format!("/v1/issuer/cards/{}/status", f.card_ref), &f.issuer, json!({"status": "sealed"}), StatusCode::CONFLICT, "INVALID_CARD_TRANSITION"),
        ("POST", &format!("/v1/issuer/cards/{}/status", "0".repeat(64)), &f.issuer, json!({"status": "normal"}), StatusCode::NOT_FOUND, "CARD_NOT_FOUND"),
        ("POST", "/v1/holder/consents", &f.channel, json!({"application": "parks", "scopes": ["x"], "purpose": "p", "not_after": "2030-01-01T00:00:00Z"}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("POST", "/v1/holder/consents/c-nope/revoke", &f.channel, json!({}), StatusCode::NOT_FOUND, "CONSENT_NOT_FOUND"),
        ("POST", "/v1/admin/tokens", &f.admin, json!({"name": "x", "role": "department_staff"}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("POST", "/v1/admin/tokens/nope/revoke", &f.admin, json!({}), StatusCode::NOT_FOUND, "TOKEN_NOT_FOUND"),
        ("POST", "/v1/sync/report", &f.operator, json!({"gateway_id": "gw-1", "applied_version": 99999, "snapshot_sha256": "cd".repeat(32)}), StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("POST", "/v1/admin/apply", &f.admin, json!("not toml"), StatusCode::BAD_REQUEST, "INVALID_TOML"),
    ];
    for (m, p, t, b, status, c) in refusals {
        let (got, v) = call(&f.app, m, p, Some(t), Some(b)).await;
        assert_eq!((got, code(&v)), (status, c), "{m} {p}: {v}");
    }
    let (got, v) = send(&f.app, "POST", "/v1/admin/apply", Some(&f.admin), Some(b"[[provinces]]\ncode = \"33\"\nnope = 1\n".to_vec()), "application/toml").await;
    assert_eq!((got, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_TOML"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("line 3"), "{v}");

    // Query strings, holder header, unknown routes and methods.
    let gets = [
        ("/v1/sync/changes?after=abc", &f.operator, StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        ("/v1/sync/changes", &f.operator, StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        ("/v1/sync/changes?after=0&colour=red", &f.operator, StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        ("/v1/sync/snapshot", &f.channel, StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
        ("/v1/admin/export", &f.staff, StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
        ("/v1/admin/applications/nope", &f.admin, StatusCode::NOT_FOUND, "APP_NOT_FOUND"),
        ("/v1/nothing-here", &f.admin, StatusCode::NOT_FOUND, "NOT_FOUND"),
    ];
    for (p, t, status, c) in gets {
        let (got, v) = call(&f.app, "GET", p, Some(t), None).await;
        assert_eq!((got, code(&v)), (status, c), "GET {p}: {v}");
    }
    let (got, v) = call(&f.app, "DELETE", "/v1/admin/tokens", Some(&f.admin), None).await;
    assert_eq!((got, code(&v)), (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"), "{v}");
    let req = Request::builder()
        .uri("/v1/holder/consents")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.channel))
        .body(Body::empty())
        .expect("req");
    let resp = f.app.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "holder header missing");
    let req = Request::builder()
        .uri("/v1/holder/consents")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.channel))
        .header("x-onecard-holder-ssn", "110105194912310021")
        .body(Body::empty())
        .expect("req");
    let resp = f.app.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "bad SSN");

    // Every route of the OpenAPI document refuses a missing or unknown token.
    let (_, doc) = call(&f.app, "GET", "/openapi.json", None, None).await;
    let public = ["/v1/sync/public-key"];
    let mut swept = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if public.contains(&path.as_str()) {
            continue;
        }
        let uri = path
            .replace("{card_ref}", &"0".repeat(64))
            .replace("{number}", "1")
            .replace("{channel}", "3300000001")
            .replace("{application}", "parks")
            .replace("{id}", "parks");
        for method in item.as_object().expect("item").keys() {
            let m = method.to_uppercase();
            let body = (m == "POST" || m == "PUT").then(|| json!({}));
            let (got, v) = call(&f.app, &m, &uri, None, body.clone()).await;
            assert_eq!((got, code(&v)), (StatusCode::UNAUTHORIZED, "TOKEN_MISSING"), "{m} {uri}: {v}");
            let (got, v) = call(&f.app, &m, &uri, Some("oc_forged"), body).await;
            assert_eq!((got, code(&v)), (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"), "{m} {uri}: {v}");
            swept += 1;
        }
    }
    assert!(swept >= 40, "only {swept} operations in the OpenAPI document");

    // Deletions that would break the catalog, or erase a filed application, are refused.
    let deletions = [
        ("/v1/admin/channels/3300000001", StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("/v1/admin/departments/hz-parks", StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("/v1/admin/applications/parks", StatusCode::BAD_REQUEST, "INVALID_CATALOG"),
        ("/v1/admin/provinces/44", StatusCode::NOT_FOUND, "ENTITY_NOT_FOUND"),
        ("/v1/admin/policies/city:9999", StatusCode::NOT_FOUND, "ENTITY_NOT_FOUND"),
        ("/v1/admin/grants/3300000001/metro", StatusCode::NOT_FOUND, "ENTITY_NOT_FOUND"),
    ];
    for (p, status, c) in deletions {
        let (got, v) = call(&f.app, "DELETE", p, Some(&f.admin), None).await;
        assert_eq!((got, code(&v)), (status, c), "DELETE {p}: {v}");
        let (got, v) = call(&f.app, "DELETE", p, Some(&f.staff), None).await;
        assert_eq!((got, code(&v)), (StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"), "DELETE {p} by staff: {v}");
    }

    assert_unchanged(&before, &f.store.dump().await.expect("dump"));

    // The same endpoints accept their valid bodies: the refusals above were about the input.
    for ep in endpoints(&f) {
        let (got, v) = call(&f.app, ep.method, &ep.path, Some(&ep.token), Some(ep.body.clone())).await;
        assert!(got.is_success(), "{} {}: {got} {v}", ep.method, ep.path);
    }
    assert_ne!(f.store.dump().await.expect("dump"), before);

    // A deletion that leaves the catalog whole goes through.
    let (got, v) = call(&f.app, "DELETE", "/v1/admin/policies/city:3301", Some(&f.admin), None).await;
    assert_eq!(got, StatusCode::OK, "{v}");
    assert_eq!(v["changes"][0]["op"], "removed");
}

async fn long_poll_sees_a_card_status_change_within_100ms(store: Store) {
    let f = fixture(store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = f.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let v0 = f.store.version().await.expect("version");
    let poll = {
        let client = client.clone();
        let url = format!("{base}/v1/sync/changes?after={v0}&wait_ms=20000");
        let token = f.operator.clone();
        tokio::spawn(async move {
            let resp = client.get(url).bearer_auth(token).send().await.expect("poll");
            let page: crate::feed::ChangePage = resp.json().await.expect("page");
            (page, std::time::Instant::now())
        })
    };
    // Let the poll reach the server and start waiting (it must not return early).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the long poll waits while nothing changes");

    let resp = client
        .post(format!("{base}/v1/issuer/cards/{}/status", f.card_ref))
        .bearer_auth(&f.issuer)
        .json(&json!({"status": "temporary_loss", "note": "holder called"}))
        .send()
        .await
        .expect("status change");
    // The change is made once the call answers; from then the feed must show it within 100 ms.
    let answered = std::time::Instant::now();
    assert_eq!(resp.status(), 200);
    let (page, seen) = poll.await.expect("poll task");
    let latency = seen.saturating_duration_since(answered);
    assert!(latency < std::time::Duration::from_millis(100), "seen {latency:?} after the call answered");
    assert_eq!(page.changes.len(), 1);
    match &page.changes[0].event {
        crate::feed::ChangeEvent::CardStatus { card_ref, state, .. } => {
            assert_eq!(card_ref, &f.card_ref);
            assert_eq!(state.status, crate::model::CardStatus::TemporaryLoss);
        }
        other => panic!("unexpected {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    let app = router(store, &ApiConfig::default());
    let (status, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    for p in ["/v1/sync/snapshot", "/v1/sync/changes", "/v1/admin/apply", "/v1/holder/consents", "/v1/issuer/cards/{card_ref}/status", "/v1/admin/applications/{id}/filings/{number}/transitions"] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn snapshot_endpoint_serves_a_verifiable_snapshot_and_reports_roll_out() {
    let (store, _dir) = crate::testing::sqlite_store().await;
    let f = fixture(store).await;
    let (status, v) = call(&f.app, "GET", "/v1/sync/snapshot", Some(&f.operator), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let signed: crate::SignedSnapshot = serde_json::from_value(v).expect("signed snapshot");
    let (_, pk) = call(&f.app, "GET", "/v1/sync/public-key", None, None).await;
    let key = crate::snapshot::parse_public_key(pk["public_key"].as_str().expect("pk")).expect("key");
    let snap = signed.verify_at(&key, crate::model::now()).expect("verifies");
    assert!(snap.applications.iter().any(|a| a.id == "parks"));

    let report = |gw: &str, version: i64, hash: String| json!({"gateway_id": gw, "applied_version": version, "snapshot_sha256": hash});
    let (s1, _) = call(&f.app, "POST", "/v1/sync/report", Some(&f.operator), Some(report("gw-a", snap.version, snap.content_hash()))).await;
    assert_eq!(s1, StatusCode::OK);
    let (s2, g) = call(&f.app, "POST", "/v1/sync/report", Some(&f.operator), Some(report("gw-b", snap.version, "ee".repeat(32)))).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(g["hash_ok"], json!(false));
    let (_, rollout) = call(&f.app, "GET", "/v1/admin/rollout", Some(&f.admin), None).await;
    let parks = rollout.as_array().expect("list").iter().find(|r| r["application"] == "parks").expect("parks").clone();
    assert_eq!(parks["summary"], "effective at 1 of 2 gateways");

    // Gateways report data accesses; the holder sees them through their channel.
    let record = json!({"gateway_id": "gw-a", "records": [{"at": "2026-05-01T08:00:00Z", "card_ref": f.card_ref, "application": "parks", "action": "check", "channel": "3300000001", "scopes": []}]});
    let (s, v) = call(&f.app, "POST", "/v1/sync/accesses", Some(&f.operator), Some(record)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = call(&f.app, "GET", "/v1/holder/accesses", Some(&f.channel), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["gateway"], "gw-a");
    assert_eq!(v[0]["action"], "check");

    // A suspension moves the application's version past both gateways.
    let (s, v) = call(&f.app, "POST", "/v1/admin/applications/parks/filings/1/transitions", Some(&f.admin), Some(json!({"to": "suspended", "note": "inspection", "notice": "暂停服务"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, rollout) = call(&f.app, "GET", "/v1/admin/rollout", Some(&f.admin), None).await;
    let parks = rollout.as_array().expect("list").iter().find(|r| r["application"] == "parks").expect("parks").clone();
    assert_eq!(parks["summary"], "effective at 0 of 2 gateways");
    let (_, app) = call(&f.app, "GET", "/v1/admin/applications/parks", Some(&f.auditor), None).await;
    assert_eq!(app["state"], "suspended");
    assert_eq!(app["application"]["notice"], "暂停服务");
    assert_eq!(app["history"].as_array().expect("history").last().expect("entry")["actor"], "province_admin-x");
}
