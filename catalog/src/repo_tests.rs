//! Repository tests, written once and run on SQLite and on PostgreSQL (see
//! `testing::both_backends`).

use crate::declarative::{apply_str, export_toml};
use crate::error::codes;
use crate::ids::ssn_with_check;
use crate::model::{CardStatus, Filing, Manifest};
use crate::roles::Role;
use crate::service::{self, NewFiling};
use crate::snapshot::SignedSnapshot;
use crate::store::{CardUpdate, Store};
use crate::testing::{EXAMPLE, who, with_example};
use crate::workflow::FilingState;

crate::both_backends!(
    apply_export_apply_changes_nothing,
    apply_refusals_name_the_place_and_change_nothing,
    filing_workflow_is_recorded_and_enforced,
    new_version_supersedes_the_live_filing,
    card_status_changes_are_journaled,
    consents_are_granted_listed_and_revoked,
    snapshot_is_signed_and_carries_the_catalog,
    tokens_are_stored_hashed_and_revocable,
    stored_filings_follow_the_state_machine_for_every_state_and_role,
    concurrent_writers_get_consecutive_versions,
    long_poll_sees_changes_written_by_another_process,
    a_batch_of_accesses_larger_than_one_statement_arrives_whole,
    accesses_are_listed_before_and_after_they_are_folded_into_the_index,
);

fn access(card: &str, action: &str, at: chrono::DateTime<chrono::Utc>) -> crate::store::AccessRecord {
    crate::store::AccessRecord {
        at,
        card_ref: card.into(),
        application: "parks".into(),
        action: action.into(),
        channel: "3300000001".into(),
        consent_id: Some("consent-1".into()),
        scopes: ["holder.age".to_string()].into(),
        gateway: String::new(),
    }
}

async fn rows_in(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(store.pool()).await.expect("count")
}

/// Rows in each pending table that holds any: (where its name ends, rows).
async fn pending_rows(store: &Store) -> Vec<(String, i64)> {
    let mut rows = Vec::new();
    for table in crate::store::pending_tables() {
        let n = rows_in(store, table).await;
        if n > 0 {
            rows.push((table.trim_start_matches("accesses_pending_").to_string(), n));
        }
    }
    rows
}

/// On SQLite reports wait in the pending table of their card's slice until enough have
/// gathered; then each report folds the fullest into the table indexed by card. A holder's list
/// shows them, newest first, wherever they are. PostgreSQL takes them straight into `accesses`.
async fn accesses_are_listed_before_and_after_they_are_folded_into_the_index(store: Store) {
    let sqlite = store.backend() == crate::store::Backend::Sqlite;
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    let mut n = 0;
    let mut report = |cards: &[&str]| -> Vec<_> {
        cards.iter().map(|c| { n += 1; access(c, &format!("a{n}"), t0 + chrono::Duration::seconds(n)) }).collect()
    };
    let actions = |v: Vec<crate::store::AccessRecord>| v.into_iter().map(|a| a.action).collect::<Vec<_>>();
    let pending = |rows: &[(&str, i64)]| if sqlite { rows.iter().map(|(t, n)| (t.to_string(), *n)).collect() } else { Vec::new() };

    // Six accesses to cards of the first and second slices: fewer than the fold's 10 wait.
    store.record_accesses_folding_at("gw-1", &report(&["0a", "1b", "0a", "1b", "0a", "1b"]), 10).await.unwrap();
    assert_eq!(pending_rows(&store).await, pending(&[("08", 3), ("18", 3)]));
    assert_eq!(actions(store.accesses_of("0a").await.unwrap()), ["a5", "a3", "a1"]);

    // Twelve pending: the first of the two fullest slices (card 0a) moves, the other waits.
    store.record_accesses_folding_at("gw-1", &report(&["0a", "1b", "0a", "1b", "0a", "1b"]), 10).await.unwrap();
    assert_eq!(pending_rows(&store).await, pending(&[("18", 6)]));
    assert_eq!(rows_in(&store, "accesses").await, if sqlite { 6 } else { 12 });

    // Seven pending: nothing moves. Eleven: the fullest (1b) moves, the other card's waits.
    store.record_accesses_folding_at("gw-1", &report(&["f0"]), 10).await.unwrap();
    assert_eq!(pending_rows(&store).await, pending(&[("18", 6), ("f0", 1)]));
    store.record_accesses_folding_at("gw-1", &report(&["1b", "1b", "1b", "1b"]), 10).await.unwrap();
    assert_eq!(pending_rows(&store).await, pending(&[("f0", 1)]));
    assert_eq!(rows_in(&store, "accesses").await, if sqlite { 16 } else { 17 });

    // One more for 1b waits, and is listed first, before its folded ones.
    store.record_accesses_folding_at("gw-2", &report(&["1b"]), 10).await.unwrap();
    assert_eq!(pending_rows(&store).await, pending(&[("18", 1), ("f0", 1)]));
    let b = store.accesses_of("1b").await.unwrap();
    assert_eq!(b[0].gateway, "gw-2");
    assert!(b[1..].iter().all(|a| a.gateway == "gw-1" && a.card_ref == "1b" && a.consent_id.as_deref() == Some("consent-1")));
    assert_eq!(actions(b), ["a18", "a17", "a16", "a15", "a14", "a12", "a10", "a8", "a6", "a4", "a2"]);
    assert_eq!(actions(store.accesses_of("0a").await.unwrap()), ["a11", "a9", "a7", "a5", "a3", "a1"]);
    assert_eq!(actions(store.accesses_of("f0").await.unwrap()), ["a13"]);
    // A reference that is not hexadecimal has a slice too.
    store.record_accesses_folding_at("gw-1", &report(&["card-c", "Z"]), 10).await.unwrap();
    assert_eq!(actions(store.accesses_of("card-c").await.unwrap()), ["a19"]);
    assert_eq!(actions(store.accesses_of("Z").await.unwrap()), ["a20"]);
    assert!(store.accesses_of("card-d").await.unwrap().is_empty());
}

/// The access log writes 64 rows per statement: a batch of 150 spans three statements, all in
/// one transaction, and every access arrives once with its own fields.
async fn a_batch_of_accesses_larger_than_one_statement_arrives_whole(store: Store) {
    let at = chrono::Utc::now();
    let records: Vec<crate::store::AccessRecord> = (0..150)
        .map(|n| crate::store::AccessRecord {
            at,
            card_ref: format!("card-{}", n % 3),
            application: "parks".into(),
            action: format!("enter-{n}"),
            channel: "3300000001".into(),
            consent_id: Some(format!("consent-{n}")),
            scopes: ["holder.age".to_string()].into(),
            gateway: String::new(),
        })
        .collect();
    store.record_accesses("gw-1", &records).await.expect("record");
    let mut seen = Vec::new();
    for card in 0..3 {
        let of_card = store.accesses_of(&format!("card-{card}")).await.expect("list");
        assert_eq!(of_card.len(), 50, "card-{card}");
        assert!(of_card.iter().all(|a| a.gateway == "gw-1" && a.card_ref == format!("card-{card}")));
        seen.extend(of_card.into_iter().map(|a| (a.action, a.consent_id)));
    }
    seen.sort();
    let mut expected: Vec<_> = (0..150).map(|n| (format!("enter-{n}"), Some(format!("consent-{n}")))).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

async fn apply_export_apply_changes_nothing(store: Store) {
    let admin = who(Role::ProvinceAdmin);
    let first = apply_str(&store, &admin, EXAMPLE, false).await.expect("apply");
    assert!(!first.unchanged());
    assert!(first.changes.iter().any(|c| c.to_string() == "+ application parks"), "{first}");
    let again = apply_str(&store, &admin, EXAMPLE, false).await.expect("apply twice");
    assert!(again.unchanged(), "applying twice changes nothing: {again}");
    assert!(again.to_string().starts_with("no change"));

    let before = store.dump().await.expect("dump");
    let exported = export_toml(&store).await.expect("export");
    assert!(!exported.contains("330106195003070024"), "the SSN is never exported");
    let round = apply_str(&store, &admin, &exported, false).await.expect("apply export");
    assert!(round.unchanged(), "apply(export) changes nothing: {round}");
    assert_eq!(store.dump().await.expect("dump"), before);
    assert_eq!(export_toml(&store).await.expect("export"), exported, "export is stable");

    // A dry run shows the diff and writes nothing.
    let edited = EXAMPLE.replace("name = \"西湖北山门\"", "name = \"西湖北门\"");
    let dry = apply_str(&store, &admin, &edited, true).await.expect("dry run");
    assert_eq!(dry.changes.len(), 1);
    assert_eq!(dry.changes[0].to_string(), "~ venue westlake-north-gate (name)");
    assert_eq!(store.dump().await.expect("dump"), before);
}

async fn apply_refusals_name_the_place_and_change_nothing(store: Store) {
    with_example(&store).await;
    let admin = who(Role::ProvinceAdmin);
    let before = store.dump().await.expect("dump");
    let line_of = |needle: &str| EXAMPLE.lines().position(|l| l.contains(needle)).expect("needle") + 1;

    let cases: Vec<(&str, String, &str, String)> = vec![
        ("malformed TOML", EXAMPLE.replace("name = \"杭州市\"", "name = \"杭州市"), codes::INVALID_TOML, format!("line {}", line_of("杭州市\""))),
        ("unknown key", EXAMPLE.replace("kind = \"venue_operator\"", "kind = \"venue_operator\"\ncolour = \"red\""), codes::INVALID_TOML, "colour".into()),
        (
            "duplicate id",
            format!("{EXAMPLE}\n[[venues]]\nid = \"westlake-north-gate\"\napplication = \"parks\"\nname = \"dup\"\n"),
            codes::INVALID_CATALOG,
            "duplicate venue id westlake-north-gate".into(),
        ),
        (
            "grant to a missing application",
            format!("{EXAMPLE}\n[[grants]]\nchannel = \"3300000001\"\napplication = \"metro\"\nactions = [\"tap\"]\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2027-01-01T00:00:00Z\"\n"),
            codes::INVALID_CATALOG,
            // The appended grant comes after the example's own grants.
            format!("grants[{}] (3300000001/metro): application metro does not exist", example_count(|c| c.grants.len())),
        ),
        (
            "city limit looser than the province",
            EXAMPLE.replace("city = \"3301\"\nholder_per_day = 20", "city = \"3301\"\nholder_per_day = 80"),
            codes::INVALID_CATALOG,
            format!(
                "line {}: policies[1] (city 3301): holder_per_day = 80 is looser than 50 in force above it (province 33)",
                crate::declarative::section_line(EXAMPLE, "policies", 1).expect("second policy")
            ),
        ),
    ];
    for (name, src, code, needle) in cases {
        let err = apply_str(&store, &admin, &src, false).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&needle), "{name}: {msg} lacks {needle}");
        if name == "duplicate id" || name == "grant to a missing application" || name.starts_with("city") {
            assert!(msg.contains("line "), "{name}: the message names the line: {msg}");
        }
        assert_eq!(store.dump().await.expect("dump"), before, "{name} changed the database");
    }
}

fn manifest(version: &str) -> Manifest {
    let Filing { manifest, .. } = crate::declarative::parse(EXAMPLE).expect("parse").applications[0].filings[0].clone();
    Manifest { version: version.into(), ..manifest }
}

async fn filing_workflow_is_recorded_and_enforced(store: Store) {
    with_example(&store).await;
    let staff = who(Role::DepartmentStaff);
    let f = NewFiling { sha256: "ab".repeat(32), manifest: manifest("0.2.0"), backends: Default::default(), capabilities: Default::default() };
    let (n, _) = service::create_filing(&store, &staff, "parks", f.clone()).await.expect("draft");
    assert_eq!(n, 2);

    let foreign = who(Role::DepartmentStaff).in_department("hz-transit");
    let before = store.dump().await.expect("dump");
    let err = service::transition(&store, &foreign, "parks", 2, FilingState::Submitted, "x", None).await.expect_err("foreign");
    assert_eq!(err.code(), codes::FOREIGN_DEPARTMENT);
    let err = service::transition(&store, &staff, "parks", 2, FilingState::Filed, "x", None).await.expect_err("skip");
    assert_eq!(err.code(), codes::INVALID_TRANSITION);
    let err = service::transition(&store, &who(Role::ProvinceAdmin), "parks", 2, FilingState::Submitted, "x", None).await.expect_err("role");
    assert_eq!(err.code(), codes::ROLE_FORBIDDEN);
    assert_eq!(store.dump().await.expect("dump"), before, "refused transitions change nothing");

    let steps = [
        (Role::DepartmentStaff, FilingState::Submitted, "please review"),
        (Role::DepartmentReviewer, FilingState::Reviewed, "feasible"),
        (Role::SecurityTester, FilingState::SecurityTested, "pen test passed"),
        (Role::ProvinceAdmin, FilingState::Filed, "filed as ZJ-2026-001"),
    ];
    for (role, to, note) in steps {
        service::transition(&store, &who(role), "parks", 2, to, note, None).await.unwrap_or_else(|e| panic!("{to:?}: {e}"));
    }
    let history = store.history("parks").await.expect("history");
    let mine: Vec<_> = history.iter().filter(|h| h.filing == 2).collect();
    assert_eq!(mine.len(), 5, "creation and four transitions");
    assert_eq!((mine[0].from, mine[0].to), (None, FilingState::Draft));
    assert_eq!(mine[1].from, Some(FilingState::Draft));
    assert_eq!(mine[4].to, FilingState::Filed);
    assert_eq!(mine[2].role, "department_reviewer");
    assert_eq!(mine[2].actor, "test-department_reviewer");
    assert_eq!(mine[3].note, "pen test passed");
    assert!(mine.windows(2).all(|w| w[0].version < w[1].version));

    // A filed artifact is fixed.
    let err = service::update(&store, &who(Role::ProvinceAdmin), "edit", |c| {
        c.application_mut("parks").expect("parks").filings[1].sha256 = "cd".repeat(32);
        Ok(())
    })
    .await
    .expect_err("immutable");
    assert_eq!(err.code(), codes::INVALID_TRANSITION);

    // Suspension carries a notice for callers.
    service::transition(&store, &who(Role::ProvinceAdmin), "parks", 1, FilingState::Suspended, "gate fault", Some("入园服务维护中，请走人工通道".into()))
        .await
        .expect("suspend");
    let c = store.catalog().await.expect("catalog");
    let app = c.application("parks").expect("parks");
    assert_eq!(app.state(), FilingState::Suspended);
    assert_eq!(app.notice.as_deref(), Some("入园服务维护中，请走人工通道"));
}

async fn new_version_supersedes_the_live_filing(store: Store) {
    with_example(&store).await;
    let f = NewFiling { sha256: "ef".repeat(32), manifest: manifest("0.3.0"), backends: Default::default(), capabilities: Default::default() };
    let (n, _) = service::create_filing(&store, &who(Role::DepartmentStaff), "parks", f).await.expect("draft");
    for (role, to) in [
        (Role::DepartmentStaff, FilingState::Submitted),
        (Role::DepartmentReviewer, FilingState::Reviewed),
        (Role::SecurityTester, FilingState::SecurityTested),
        (Role::ProvinceAdmin, FilingState::Filed),
        (Role::ProvinceAdmin, FilingState::Online),
    ] {
        service::transition(&store, &who(role), "parks", n, to, "v0.3.0", None).await.expect("step");
    }
    let c = store.catalog().await.expect("catalog");
    let app = c.application("parks").expect("parks");
    assert_eq!(app.live_filing().map(|f| f.number), Some(n));
    assert_eq!(app.filings[0].state, FilingState::Terminated);
    let old: Vec<_> = store.history("parks").await.expect("history").into_iter().filter(|h| h.filing == 1).map(|h| h.to).collect();
    assert_eq!(old, vec![FilingState::Online, FilingState::Suspended, FilingState::Terminated]);
}

async fn card_status_changes_are_journaled(store: Store) {
    with_example(&store).await;
    let issuer = who(Role::CardIssuer);
    let card_ref = store.card_ref("330106195003070024").await.expect("ref");
    let v0 = store.version().await.expect("version");
    let u = |s| CardUpdate { status: Some(s), social_locked: None, financial_locked: None, note: None };
    service::update_card(&store, &issuer, &card_ref, u(CardStatus::TemporaryLoss)).await.expect("report loss");
    let page = store.changes_after(v0, 100).await.expect("feed");
    assert_eq!(page.changes.len(), 1);
    match &page.changes[0].event {
        crate::feed::ChangeEvent::CardStatus { card_ref: r, previous, state } => {
            assert_eq!(r, &card_ref);
            assert_eq!(*previous, Some(CardStatus::Normal));
            assert_eq!(state.status, CardStatus::TemporaryLoss);
        }
        other => panic!("unexpected {other:?}"),
    }
    let before = store.dump().await.expect("dump");
    let err = service::update_card(&store, &issuer, &card_ref, u(CardStatus::Sealed)).await.expect_err("back to sealed");
    assert_eq!(err.code(), codes::INVALID_CARD_TRANSITION);
    let err = service::update_card(&store, &who(Role::ProvinceAdmin), &card_ref, u(CardStatus::Normal)).await.expect_err("role");
    assert_eq!(err.code(), codes::ROLE_FORBIDDEN);
    assert_eq!(store.dump().await.expect("dump"), before);
    service::update_card(&store, &issuer, &card_ref, u(CardStatus::FormalLoss)).await.expect("formal loss");
    let err = service::update_card(&store, &issuer, &card_ref, u(CardStatus::Normal)).await.expect_err("irreversible");
    assert_eq!(err.code(), codes::INVALID_CARD_TRANSITION);

    // Registering hashes the SSN; the number itself is nowhere in the database.
    let ssn = ssn_with_check("33010620010101003");
    let mut card = store.card(&card_ref).await.expect("card").expect("exists");
    card.status = CardStatus::Sealed;
    let reg = service::register_card(&store, &issuer, &ssn, card).await.expect("register");
    assert_ne!(reg.card_ref, card_ref);
    assert!(!store.dump().await.expect("dump").to_string().contains(&ssn));
}

/// The example with one more data scope on the parks manifest, which no consent covers yet.
fn example_with_scope() -> String {
    let from = "plugin = \"parks\"\nversion = \"0.1.0\"\ndata_scopes = [\"holder.age\"]";
    assert!(EXAMPLE.contains(from), "the example's parks manifest changed; update this test");
    EXAMPLE.replace(from, "plugin = \"parks\"\nversion = \"0.1.0\"\ndata_scopes = [\"holder.age\", \"senior_status\"]")
}

/// A count taken from the example file, which grows with the example city.
fn example_count(count: impl Fn(&crate::Catalog) -> usize) -> usize {
    count(&crate::declarative::parse(EXAMPLE).expect("the example parses"))
}

async fn consents_are_granted_listed_and_revoked(store: Store) {
    let admin = who(Role::ProvinceAdmin);
    apply_str(&store, &admin, &example_with_scope(), false).await.expect("apply");

    // The API path never creates a filing past draft.
    let before = store.dump().await.expect("dump");
    let err = service::update(&store, &admin, "test", |c| {
        let app = c.application_mut("parks").expect("parks");
        app.filings.push(Filing { number: 2, state: FilingState::Filed, ..app.filings[0].clone() });
        Ok(())
    })
    .await
    .expect_err("a filing starts as draft");
    assert_eq!(err.code(), codes::INVALID_TRANSITION);
    assert_eq!(store.dump().await.expect("dump"), before);

    let token = {
        let mut w = store.begin_write("t").await.expect("w");
        let t = w
            .create_token(&crate::store::NewToken { name: "zlb".into(), role: Role::Channel, department: None, city: None, channel: Some("3300000001".into()) })
            .await
            .expect("token");
        w.commit().await.expect("commit");
        t.1
    };
    let channel = store.authenticate(&token).await.expect("auth");
    let card_ref = store.card_ref("330106195003070024").await.expect("ref");
    let new = |scopes: &[&str]| service::NewConsent {
        application: "parks".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        purpose: "senior free entry".into(),
        not_after: "2030-01-01T00:00:00Z".parse().expect("ts"),
    };
    let before = store.dump().await.expect("dump");
    let err = service::grant_consent(&store, &channel, &card_ref, new(&["medical_records"])).await.expect_err("unknown scope");
    assert_eq!(err.code(), codes::INVALID_CATALOG);
    let stranger = store.card_ref(&ssn_with_check("11010519800101001")).await.expect("ref");
    let err = service::grant_consent(&store, &channel, &stranger, new(&["senior_status"])).await.expect_err("no card");
    assert_eq!(err.code(), codes::CARD_NOT_FOUND);
    let err = service::grant_consent(&store, &admin, &card_ref, new(&["senior_status"])).await.expect_err("not a channel");
    assert_eq!(err.code(), codes::ROLE_FORBIDDEN);
    assert_eq!(store.dump().await.expect("dump"), before);

    let v0 = store.version().await.expect("v");
    let c = service::grant_consent(&store, &channel, &card_ref, new(&["senior_status"])).await.expect("grant");
    assert_eq!(c.channel, "3300000001");
    assert_eq!(store.consents_of(&card_ref).await.expect("list"), vec![c.clone()]);
    let revoked = service::revoke_consent(&store, &channel, &card_ref, &c.id).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    let err = service::revoke_consent(&store, &channel, &card_ref, &c.id).await.expect_err("twice");
    assert_eq!(err.code(), codes::CONSENT_REVOKED);
    let err = service::revoke_consent(&store, &channel, &stranger, &c.id).await.expect_err("not theirs");
    assert_eq!(err.code(), codes::CONSENT_NOT_FOUND);
    let kinds: Vec<_> = store.changes_after(v0, 10).await.expect("feed").changes.iter().map(|c| c.event.kind()).collect();
    assert_eq!(kinds, vec!["consent_granted", "consent_revoked"]);

    // The consent round-trips through export and apply.
    let exported = export_toml(&store).await.expect("export");
    assert!(apply_str(&store, &admin, &exported, false).await.expect("apply").unchanged());
}

async fn snapshot_is_signed_and_carries_the_catalog(store: Store) {
    with_example(&store).await;
    let (catalog, version) = store.full_catalog().await.expect("catalog");
    let snap = crate::Snapshot::build(&catalog, version, crate::model::now(), chrono::Duration::minutes(10));
    let signed = SignedSnapshot::sign(&snap, &store.signing_key().await.expect("key"));
    let key = store.signing_key().await.expect("key").verifying_key();
    let got = signed.verify(&key).expect("verifies");
    assert_eq!(got.version, version);
    let parks = got.applications.iter().find(|a| a.id == "parks").expect("parks");
    assert_eq!(parks.state, FilingState::Online);
    assert_eq!(parks.plugin_sha256, "0".repeat(64));
    assert_eq!(parks.actions["check"].card_status_policy.allow.len(), 2);
    assert!(parks.actions["enter"].card_status_policy.allow.contains(&CardStatus::Normal));
    let app_limits = got.policies.iter().find(|p| p.application == "parks" && p.channel.is_none() && p.venue.is_none()).expect("app policy");
    assert_eq!(app_limits.limits.holder_per_day, Some(20), "city tightened the province");
    assert_eq!(app_limits.limits.holder_per_minute, Some(4), "application tightened further");
    let venue = got.policies.iter().find(|p| p.venue.as_deref() == Some("westlake-north-gate")).expect("venue policy");
    assert_eq!(venue.limits.venue_per_minute, Some(600));
    assert_eq!(got.cards.len(), example_count(|c| c.cards.len()));
    assert_eq!(got.issuer_keys.len(), 1);
}

async fn tokens_are_stored_hashed_and_revocable(store: Store) {
    with_example(&store).await;
    let mut w = store.begin_write("root").await.expect("w");
    let (info, token) = w
        .create_token(&crate::store::NewToken { name: "reviewer".into(), role: Role::DepartmentReviewer, department: Some("hz-parks".into()), city: None, channel: None })
        .await
        .expect("token");
    let err = w
        .create_token(&crate::store::NewToken { name: "x".into(), role: Role::DepartmentStaff, department: Some("nowhere".into()), city: None, channel: None })
        .await
        .expect_err("unknown department");
    assert_eq!(err.code(), codes::INVALID_CATALOG);
    w.commit().await.expect("commit");
    assert!(!store.dump().await.expect("dump").to_string().contains(&token), "only the hash is stored");
    let p = store.authenticate(&token).await.expect("auth");
    assert_eq!(p.role, Role::DepartmentReviewer);
    assert_eq!(p.department.as_deref(), Some("hz-parks"));
    let mut w = store.begin_write("root").await.expect("w");
    w.revoke_token(&info.id).await.expect("revoke");
    w.commit().await.expect("commit");
    assert_eq!(store.authenticate(&token).await.expect_err("revoked").code(), codes::TOKEN_INVALID);
    assert_eq!(store.authenticate("oc_nope").await.expect_err("unknown").code(), codes::TOKEN_INVALID);
}

/// The workflow table again, through the store: a filing in every state, every target state,
/// every role. Refusals change nothing; each allowed transition succeeds for its role only.
async fn stored_filings_follow_the_state_machine_for_every_state_and_role(store: Store) {
    let admin = who(Role::ProvinceAdmin);
    let base = crate::declarative::parse(EXAMPLE).expect("parse");
    let template = base.applications[0].clone();
    let mut desired = base.clone();
    let slug = |s: FilingState| s.as_str().replace('_', "-");
    for from in FilingState::ALL {
        let mut app = template.clone();
        app.id = format!("t-{}", slug(from));
        app.filings[0].state = from;
        app.card_status_policy.clear();
        desired.applications.push(app);
        for (f, to, _) in crate::workflow::TRANSITIONS.iter().filter(|(f, _, _)| *f == from) {
            let mut app = template.clone();
            app.id = format!("e-{}-{}", slug(*f), slug(*to));
            app.filings[0].state = from;
            app.card_status_policy.clear();
            desired.applications.push(app);
        }
    }
    crate::service::apply(&store, &admin, desired, false, &|_| None).await.expect("import one filing per state");

    for from in FilingState::ALL {
        let app = format!("t-{}", slug(from));
        let before = store.dump().await.expect("dump");
        for to in FilingState::ALL {
            for role in Role::ALL {
                let allowed = crate::workflow::role_for(from, to) == Some(role);
                if allowed {
                    continue;
                }
                let err = service::transition(&store, &who(role), &app, 1, to, "probe", None)
                    .await
                    .expect_err("refused");
                let expected = if crate::workflow::role_for(from, to).is_none() { codes::INVALID_TRANSITION } else { codes::ROLE_FORBIDDEN };
                assert_eq!(err.code(), expected, "{from:?} -> {to:?} by {role:?}");
            }
        }
        assert_eq!(store.dump().await.expect("dump"), before, "refusals from {from:?} changed the database");
    }
    for (from, to, role) in crate::workflow::TRANSITIONS {
        let app = format!("e-{}-{}", slug(from), slug(to));
        service::transition(&store, &who(role), &app, 1, to, "allowed", None)
            .await
            .unwrap_or_else(|e| panic!("{from:?} -> {to:?} by {role:?}: {e}"));
        let h = store.history(&app).await.expect("history");
        let last = h.last().expect("entry");
        assert_eq!((last.from, last.to, last.role.as_str()), (Some(from), to, role.as_str()));
    }
}

async fn concurrent_writers_get_consecutive_versions(store: Store) {
    with_example(&store).await;
    let v0 = store.version().await.expect("version");
    let mut tasks = Vec::new();
    for n in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            service::update(&store, &who(Role::ProvinceAdmin), "concurrent", |c| {
                c.provinces.push(crate::model::Province { code: format!("{}", 41 + n), name: format!("p{n}") });
                Ok(())
            })
            .await
            .expect("update")
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let page = store.changes_after(v0, 100).await.expect("feed");
    let versions: Vec<i64> = page.changes.iter().map(|c| c.version).collect();
    assert_eq!(versions, (v0 + 1..=v0 + 8).collect::<Vec<_>>());
    assert_eq!(store.catalog().await.expect("catalog").provinces.len(), 9);
}

/// A catalog process sharing the database with another writer (e.g. `apply --db` while
/// `serve` runs) still wakes its long-polls, through the poll fallback.
async fn long_poll_sees_changes_written_by_another_process(store: Store) {
    with_example(&store).await;
    let other = store.reopen().await.expect("second store");
    let v0 = store.version().await.expect("version");
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .wait_changes(v0, 100, std::time::Duration::from_secs(20), std::time::Duration::from_millis(50))
                .await
                .expect("wait")
        })
    };
    let card_ref = other.card_ref("330106195003070024").await.expect("ref");
    let u = CardUpdate { status: Some(CardStatus::TemporaryLoss), social_locked: None, financial_locked: None, note: None };
    service::update_card(&other, &who(Role::CardIssuer), &card_ref, u).await.expect("update elsewhere");
    let page = waiter.await.expect("waiter");
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].event.kind(), "card_status");
}
