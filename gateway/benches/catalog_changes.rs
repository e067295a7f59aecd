//! What one change from the catalog's feed costs a gateway that enforces a city's card holders.
//!
//! - `apply_one_card_status`: a card reported lost, applied to the enforced state (the follower
//!   does this for every change, while requests run);
//! - `apply_one_consent`: a consent granted, applied the same way;
//! - `content_hash`: the enforced state's content hash, reported to the catalog after a change.
//!
//! Each at 10 000 and 160 000 holders (one card and one consent each; the load test's city has
//! 160 000). Run: `cargo bench -p onecard-gateway --bench catalog_changes`; figures go in
//! docs/PERFORMANCE.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use onecard_catalog::feed::{Change, ChangeEvent};
use onecard_catalog::model::{CardStatus, Consent};
use onecard_catalog::snapshot::{CardState, Snapshot};
use onecard_gateway::enforced::{Applied, Enforced};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn card_ref(n: usize) -> String {
    format!("{n:064x}")
}

fn card(status: CardStatus) -> CardState {
    CardState {
        status,
        social_locked: false,
        financial_locked: false,
        real_name: true,
        real_card: true,
        bank_activated: true,
        real_person: false,
        valid_until: at("2035-12-31T00:00:00Z"),
    }
}

fn consent(n: usize) -> Consent {
    Consent {
        id: format!("consent-{n:08}"),
        card_ref: card_ref(n),
        application: "parks".into(),
        scopes: BTreeSet::from(["holder.age".to_string()]),
        purpose: "park entry".into(),
        channel: "3300000001".into(),
        not_before: at("2026-01-01T00:00:00Z"),
        not_after: at("2036-01-01T00:00:00Z"),
        revoked_at: None,
    }
}

/// The enforced state of a catalog with `holders` card holders and no applications.
fn enforced(holders: usize) -> Enforced {
    let snapshot = Snapshot {
        version: 1,
        generated_at: at("2026-12-06T00:00:00Z"),
        expires_at: at("2026-12-07T00:00:00Z"),
        applications: Vec::new(),
        channels: Vec::new(),
        grants: Vec::new(),
        venues: Vec::new(),
        policies: Vec::new(),
        cards: (0..holders).map(|n| (card_ref(n), card(CardStatus::Normal))).collect::<BTreeMap<_, _>>(),
        consents: (0..holders).map(consent).collect(),
        issuer_keys: Vec::new(),
    };
    Enforced::new(snapshot, HashMap::new())
}

fn change(event: ChangeEvent) -> Vec<Change> {
    vec![Change { version: 2, at: at("2026-12-06T10:00:00Z"), actor: "bench".into(), event }]
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("catalog_changes");
    group.sample_size(10);
    for holders in [10_000, 160_000] {
        let state = enforced(holders);
        let lost = change(ChangeEvent::CardStatus { card_ref: card_ref(holders / 2), previous: Some(CardStatus::Normal), state: card(CardStatus::TemporaryLoss) });
        group.bench_with_input(BenchmarkId::new("apply_one_card_status", holders), &lost, |b, lost| {
            b.iter(|| match state.apply(black_box(lost)) {
                Applied::State(next) => *next,
                Applied::NeedsSnapshot => unreachable!("a card status applies in place"),
            });
        });
        let granted = change(ChangeEvent::ConsentGranted { consent: consent(holders + 1) });
        group.bench_with_input(BenchmarkId::new("apply_one_consent", holders), &granted, |b, granted| {
            b.iter(|| match state.apply(black_box(granted)) {
                Applied::State(next) => *next,
                Applied::NeedsSnapshot => unreachable!("a consent applies in place"),
            });
        });
        group.bench_with_input(BenchmarkId::new("content_hash", holders), &state, |b, state| {
            b.iter(|| black_box(state).content_hash());
        });
    }
    group.finish();
}

criterion_group!(catalog_changes, benches);
criterion_main!(catalog_changes);
