//! Rate limits (step 3 of the request path): governor keyed GCRA limiters built from the
//! snapshot's hierarchical policies, checked for every request before the plugin runs.
//!
//! # Levels and which limit applies
//!
//! The catalog resolves its policies (province → city → application → channel → venue → card
//! holder) into `snapshot.policies`: one entry per application, per granted channel, per venue
//! and per holder with a policy, parents already applied. For a request the gateway uses the
//! most specific entry at each level:
//!
//! | level | when | limit |
//! |---|---|---|
//! | [`Level::Channel`] | always | entry (app, channel), else the app entry's `channel_per_minute` |
//! | [`Level::Venue`] | the request names a venue | entry (app, venue), else the app entry's `venue_per_minute` |
//! | [`Level::HolderMinute`] | the request carries a card | entry (app, holder), else the app entry's `holder_per_minute` |
//! | [`Level::HolderDay`] | the request carries a card | entry (app, holder), else the app entry's `holder_per_day` |
//!
//! A limit that is not set means no limiter at that level; an application the snapshot does
//! not know has no limits (admission refuses it before this step). Each limit is GCRA: a burst
//! of `limit` requests, then one more every `window / limit` (60 s or 86 400 s windows). So
//! "1000 per day" admits 1000 at once and then one every 86.4 s.
//!
//! # All levels are checked before any is consumed
//!
//! [`Limiters::check`] first *peeks* at every level (governor's own GCRA decision, with nothing
//! written; the private `store` module says how governor is made to peek) and refuses, consuming
//! nothing anywhere, if any level would refuse. Only then does it take one request from each
//! level in turn. If a concurrent request took the last one between the peek and the take, the
//! levels already taken are given back before the refusal, so a refused request never keeps
//! quota at any level.
//!
//! # Policy changes
//!
//! [`Limiters::update`] builds the limiters of a new snapshot. Every (application, level,
//! scope) whose limit is unchanged keeps its limiter, state included; a changed limit gets a
//! fresh limiter, and a scope that disappeared is dropped. So changing a venue's policy leaves
//! every card holder's state as it was. Changing an application's `holder_per_minute` gives
//! all holders of that application without a policy of their own a new limiter: their
//! per-minute state starts over (a full burst under the new limit) while their per-day state,
//! whose limit did not change, is kept. A holder with an entry of its own keeps its state unless
//! its effective limit changed.
//!
//! # Memory
//!
//! A key's state is a single atomic word in governor's dashmap store. [`Limiters::prune`] drops
//! every key whose state cannot be told from a fresh one (it has fully replenished) and shrinks
//! the maps; [`Limiters::spawn_pruner`] runs it every `prune_interval_ms`. Memory is therefore
//! bounded by the keys active within about one window, not by all card holders ever seen.

mod config;
mod limiter;
mod status;
mod store;
mod table;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use onecard_catalog::snapshot::Snapshot;

pub use config::LimitsConfig;
pub use status::{
    Level, LimitStatus, RATELIMIT_LIMIT, RATELIMIT_POLICY, RATELIMIT_REMAINING, RATELIMIT_RESET, RateLimited,
};

use limiter::ScopeLimiter;
use store::KeyId;
use table::{Scoped, Table};

/// What a request is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitKey<'a> {
    /// Application id.
    pub app: &'a str,
    /// Channel id (the authenticated caller).
    pub channel: &'a str,
    /// Venue id, when the request names one.
    pub venue: Option<&'a str>,
    /// Card reference, when the request carries a card.
    pub holder: Option<&'a str>,
}

/// The rate limiters of the gateway: shared by all requests (`Arc<Limiters>`), rebuilt from
/// each snapshot by [`Limiters::update`]. `C` is the clock: governor's default (quanta) in
/// production, `governor::clock::FakeRelativeClock` in tests.
pub struct Limiters<C: Clock = DefaultClock> {
    config: LimitsConfig,
    clock: C,
    table: RwLock<Arc<Table<C>>>,
    /// Serializes updates, so two snapshots applied at once cannot lose each other's reuse.
    updating: Mutex<()>,
    /// Two independent hashers make a key's 128-bit id (see `store::KeyId`).
    hashers: (RandomState, RandomState),
}

impl Limiters {
    /// Limiters with governor's default clock and no limits until the first
    /// [`Limiters::update`].
    pub fn new(config: LimitsConfig) -> Self {
        Limiters::with_clock(config, DefaultClock::default())
    }
}

impl<C> Limiters<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    /// Limiters reading time from `clock`.
    pub fn with_clock(config: LimitsConfig, clock: C) -> Self {
        Limiters {
            config,
            clock,
            table: RwLock::new(Arc::new(Table::default())),
            updating: Mutex::new(()),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// (Re)builds the limiters from `snapshot.policies`. Limiters whose limit did not change
    /// keep their state; changed limits start fresh; removed ones are dropped (see the module
    /// documentation). Requests being checked meanwhile finish on the previous limiters.
    pub fn update(&self, snapshot: &Snapshot) {
        let _serial = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = self.table();
        let next = Arc::new(Table::build(snapshot, &previous, &self.clock));
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Checks every level that applies to `key` and, only if all admit the request, consumes
    /// one request at each. `Ok(None)`: no limit applies (no `RateLimit-*` headers);
    /// `Ok(Some(status))`: admitted, with the tightest level's status; `Err`: refused, nothing
    /// consumed at any level.
    pub fn check(&self, key: &LimitKey<'_>) -> Result<Option<LimitStatus>, RateLimited> {
        self.check_with(key, || ())
    }

    /// [`Limiters::check`], running `between_phases` after the peek and before the take: tests
    /// use it to make a concurrent request win the race deterministically.
    fn check_with(
        &self,
        key: &LimitKey<'_>,
        between_phases: impl FnOnce(),
    ) -> Result<Option<LimitStatus>, RateLimited> {
        let table = self.table();
        let Some(app) = table.apps.get(key.app) else { return Ok(None) };
        let [channel, venue, holder_minute, holder_day] = &app.levels;
        let plan: [Option<(&ScopeLimiter<C>, KeyId)>; 4] = [
            self.resolve(channel, key.channel),
            key.venue.and_then(|v| self.resolve(venue, v)),
            key.holder.and_then(|h| self.resolve(holder_minute, h)),
            key.holder.and_then(|h| self.resolve(holder_day, h)),
        ];

        // Phase 1: would every level admit it? Nothing is written.
        let mut refused: Option<RateLimited> = None;
        for (limiter, id) in plan.iter().flatten() {
            if let Err(r) = limiter.peek(*id)
                && refused.as_ref().is_none_or(|worst| r.retry_after > worst.retry_after)
            {
                refused = Some(r);
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        between_phases();

        // Phase 2: take one request at each level. A take refused here lost a race with a
        // concurrent request since phase 1; give back what this request took so far.
        let mut tightest: Option<(&ScopeLimiter<C>, u32, Duration)> = None;
        for (i, (limiter, id)) in plan.iter().flatten().enumerate() {
            match limiter.take(*id) {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let reset = limiter.reset(&snapshot);
                    let tighter = tightest.is_none_or(|(_, r, t)| remaining < r || (remaining == r && reset > t));
                    if tighter {
                        tightest = Some((limiter, remaining, reset));
                    }
                }
                Err(r) => {
                    for (taken, id) in plan.iter().flatten().take(i) {
                        taken.refund(*id);
                    }
                    return Err(r);
                }
            }
        }
        Ok(tightest.map(|(limiter, remaining, reset)| LimitStatus {
            limit: limiter.limit(),
            remaining,
            reset,
            policy: limiter.policy().to_owned(),
        }))
    }

    /// Drops the state of every key that has fully replenished (governor's `retain_recent`)
    /// and shrinks the maps.
    pub fn prune(&self) {
        for limiter in self.table().limiters() {
            limiter.prune();
        }
    }

    /// Runs [`Limiters::prune`] every `prune_interval_ms` on the blocking pool until the
    /// limiters are dropped.
    pub fn spawn_pruner(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let limiters = Arc::downgrade(self);
        let period = self.config.prune_interval();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(limiters) = limiters.upgrade() else { break };
                if tokio::task::spawn_blocking(move || limiters.prune()).await.is_err() {
                    tracing::error!("rate-limit pruning panicked");
                }
            }
        })
    }

    /// Keys holding state over all limiters (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.table().tracked_keys()
    }

    fn table(&self) -> Arc<Table<C>> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The limiter of `key` at one level and the key's id in it.
    fn resolve<'t>(&self, scoped: &'t Scoped<C>, key: &str) -> Option<(&'t ScopeLimiter<C>, KeyId)> {
        match scoped.specific.get(key) {
            Some(own) => own.as_deref().map(|l| (l, KeyId(0))),
            None => scoped.default.as_deref().map(|l| (l, self.key_id(key))),
        }
    }

    fn key_id(&self, key: &str) -> KeyId {
        let (a, b) = &self.hashers;
        KeyId((u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key)))
    }
}

impl<C: Clock + Clone> fmt::Debug for Limiters<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner));
        f.debug_struct("Limiters")
            .field("config", &self.config)
            .field("applications", &table.apps.len())
            .field("tracked_keys", &table.tracked_keys())
            .finish_non_exhaustive()
    }
}
