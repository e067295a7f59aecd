//! The full gateway under test: the end-to-end test city (`onecard serve` over a SQLite
//! catalog, the real parks component, the default configuration) with as many card holders as
//! the run needs, each with a live consent for the parks application.
//!
//! Why many holders: the parks plugin keeps anti-passback state (a holder who entered cannot
//! enter again before leaving), so every measured request is a genuine first entry of a fresh
//! holder — an admission, never a refusal. The venue's daily capacity is raised so that it
//! never refuses either.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use onecard_catalog::model::{Card, CardStatus, Consent};
use onecard_catalog::roles::{Principal, Role};
use onecard_gateway::server::ServeConfig;
use onecard_tests::city::{CHANNEL, CityOptions, TestCity};
use sha2::{Digest, Sha256};

use crate::requests::Signers;

/// Entries the venue admits per day during a run.
const CAPACITY_PER_DAY: i64 = 1_000_000_000;
/// Cards registered per catalog change.
const CARDS_PER_CHANGE: usize = 20_000;

/// The running full gateway and its card holders.
#[derive(Debug)]
pub struct FullTarget {
    /// The test city.
    pub city: TestCity,
    /// Registered card references, in registration order.
    cards: Vec<String>,
    /// Cards handed out to requests so far.
    used: usize,
}

/// The card reference of load-test holder `n` (a 64-hex keyed hash, like the catalog's).
pub fn card_ref(n: usize) -> String {
    hex::encode(Sha256::digest(format!("onecard-load holder {n}").as_bytes()))
}

fn admin() -> Principal {
    Principal { name: "onecard-load".into(), role: Role::ProvinceAdmin, department: None, city: None, channel: None }
}

impl FullTarget {
    /// Starts the city with the default configuration and raises the venue's daily capacity.
    pub async fn start() -> anyhow::Result<FullTarget> {
        FullTarget::start_with(|_| {}).await
    }

    /// [`FullTarget::start`] with the server configuration adjusted by `configure` (the
    /// instruction-count driver shrinks the instance pool to what valgrind can reserve).
    pub async fn start_with(configure: fn(&mut ServeConfig)) -> anyhow::Result<FullTarget> {
        let city = TestCity::start(onecard_tests::artifacts::PARKS, CityOptions { configure, ..CityOptions::default() }).await;
        let mut catalog = city.store.catalog().await?;
        let parks = catalog.application_mut("parks").context("the test city has no parks application")?;
        let venue = parks.config["venues"][crate::requests::VENUE]
            .as_object_mut()
            .context("the parks configuration has no west-lake venue")?;
        venue.insert("capacity_per_day".into(), CAPACITY_PER_DAY.into());
        onecard_catalog::service::apply(&city.store, &admin(), catalog, false, &|_| None).await?;
        let target = FullTarget { city, cards: Vec::new(), used: 0 };
        target.synced().await?;
        Ok(target)
    }

    /// The request signers: the city's channel key and trusted issuer.
    pub fn signers(&self) -> Signers {
        Signers { channel: self.city.signer.clone(), issuer: self.city.issuer.clone() }
    }

    /// The catalog's channels and issuer keys (what the native baseline checks against).
    pub async fn keys(&self) -> anyhow::Result<(Vec<onecard_catalog::model::Channel>, Vec<onecard_catalog::model::IssuerKey>)> {
        let catalog = self.city.store.catalog().await?;
        Ok((catalog.channels, catalog.issuer_keys))
    }

    /// `count` holders who have not entered yet, registering more when needed.
    pub async fn fresh_cards(&mut self, count: usize) -> anyhow::Result<&[String]> {
        let wanted = self.used + count;
        while self.cards.len() < wanted {
            let from = self.cards.len();
            let to = wanted.min(from + CARDS_PER_CHANGE);
            self.register(from, to).await?;
        }
        Ok(&self.cards[self.used..wanted])
    }

    /// Marks the first `count` cards of the last [`FullTarget::fresh_cards`] as entered.
    pub fn entered(&mut self, count: usize) {
        self.used = (self.used + count).min(self.cards.len());
    }

    /// Holders registered so far.
    pub fn registered(&self) -> usize {
        self.cards.len()
    }

    async fn register(&mut self, from: usize, to: usize) -> anyhow::Result<()> {
        let mut catalog = self.city.store.catalog().await?;
        let not_before = "2026-01-01T00:00:00Z".parse()?;
        let not_after = "2036-01-01T00:00:00Z".parse()?;
        for n in from..to {
            let card_ref = card_ref(n);
            catalog.cards.push(Card {
                card_ref: card_ref.clone(),
                card_number: format!("L{n:08}"),
                card_id_code: format!("330100D156000005{:016X}", 0x4C4F_4144_0000_0000u64 + n as u64),
                issuing_region: "330100".into(),
                status: CardStatus::Normal,
                social_locked: false,
                financial_locked: false,
                real_name: true,
                real_card: true,
                bank_activated: true,
                real_person: false,
                valid_until: "2035-12-31T00:00:00Z".parse()?,
            });
            catalog.consents.push(Consent {
                id: format!("load-consent-{n}"),
                card_ref: card_ref.clone(),
                application: "parks".into(),
                scopes: BTreeSet::from(["holder.age".to_string()]),
                purpose: "park entry".into(),
                channel: CHANNEL.into(),
                not_before,
                not_after,
                revoked_at: None,
            });
            self.cards.push(card_ref);
        }
        onecard_catalog::service::apply(&self.city.store, &admin(), catalog, false, &|_| None).await?;
        self.synced().await
    }

    /// Waits until the gateway enforces the store's catalog version (large changes take a while
    /// to reach it).
    async fn synced(&self) -> anyhow::Result<()> {
        let target = self.city.store.version().await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.city.running.gateway.state.load().is_some_and(|e| e.version() >= target) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the gateway did not reach catalog version {target} in 120 s")
    }

    /// Lets the gateway's background work of a phase finish (the audit writer's queue), so the
    /// next phase does not pay for it.
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.city.running.gateway.audit.flush().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }
}

