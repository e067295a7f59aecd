//! The limiters of one snapshot, per application and level, and how a new snapshot's table
//! reuses the limiters (and so the state) of the previous one.

use std::collections::HashMap;
use std::sync::Arc;

use governor::clock::Clock;
use onecard_catalog::model::Limits;
use onecard_catalog::snapshot::Snapshot;

use super::limiter::ScopeLimiter;
use super::status::Level;

/// The limiters of one level of one application.
#[derive(Debug)]
pub(super) struct Scoped<C: Clock> {
    /// The application's own limit, keyed by the channel, venue or holder (hashed): used for
    /// every key without an entry of its own. `None`: no limit at this level.
    pub(super) default: Option<Arc<ScopeLimiter<C>>>,
    /// Keys with an entry of their own (a granted channel, a venue, a holder with a policy),
    /// each with a limiter holding that key only. `None`: the entry sets no limit here.
    pub(super) specific: HashMap<Box<str>, Option<Arc<ScopeLimiter<C>>>>,
}

impl<C: Clock> Default for Scoped<C> {
    fn default() -> Self {
        Scoped { default: None, specific: HashMap::new() }
    }
}

/// The four levels of one application, indexed by [`Level::index`].
#[derive(Debug)]
pub(super) struct AppLimiters<C: Clock> {
    pub(super) levels: [Scoped<C>; 4],
}

impl<C: Clock> Default for AppLimiters<C> {
    fn default() -> Self {
        AppLimiters { levels: Default::default() }
    }
}

/// All limiters, by application id.
#[derive(Debug)]
pub(super) struct Table<C: Clock> {
    pub(super) apps: HashMap<Box<str>, AppLimiters<C>>,
}

impl<C: Clock> Default for Table<C> {
    fn default() -> Self {
        Table { apps: HashMap::new() }
    }
}

/// The limit `limits` sets at `level`.
fn limit_at(limits: &Limits, level: Level) -> Option<u32> {
    match level {
        Level::Channel => limits.channel_per_minute,
        Level::Venue => limits.venue_per_minute,
        Level::HolderMinute => limits.holder_per_minute,
        Level::HolderDay => limits.holder_per_day,
    }
}

impl<C: Clock + Clone> Table<C> {
    /// Builds the table of `snapshot`. A limiter of `previous` is reused, state and all, when
    /// the same application, level and scope has the same limit; every other limiter is new.
    pub(super) fn build(snapshot: &Snapshot, previous: &Table<C>, clock: &C) -> Table<C> {
        let mut apps: HashMap<Box<str>, AppLimiters<C>> = HashMap::new();
        for p in &snapshot.policies {
            let app = apps.entry(p.application.as_str().into()).or_default();
            let old = previous.apps.get(p.application.as_str());
            // The levels this entry speaks for, and under which key.
            let scopes: &[(Level, Option<&String>)] = match (&p.channel, &p.venue, &p.holder) {
                (None, None, None) => &[
                    (Level::Channel, None),
                    (Level::Venue, None),
                    (Level::HolderMinute, None),
                    (Level::HolderDay, None),
                ],
                _ => &[
                    (Level::Channel, p.channel.as_ref()),
                    (Level::Venue, p.venue.as_ref()),
                    (Level::HolderMinute, p.holder.as_ref()),
                    (Level::HolderDay, p.holder.as_ref()),
                ],
            };
            let specific_entry = p.channel.is_some() || p.venue.is_some() || p.holder.is_some();
            for &(level, key) in scopes {
                let limit = limit_at(&p.limits, level);
                let old_level = old.map(|a| &a.levels[level.index()]);
                match (specific_entry, key) {
                    (false, _) => {
                        let kept = old_level.and_then(|s| s.default.as_ref());
                        app.levels[level.index()].default = reuse(kept, level, limit, false, clock);
                    }
                    (true, Some(key)) => {
                        let kept = old_level.and_then(|s| s.specific.get(key.as_str())).and_then(Option::as_ref);
                        let lim = reuse(kept, level, limit, true, clock);
                        app.levels[level.index()].specific.insert(key.as_str().into(), lim);
                    }
                    (true, None) => {}
                }
            }
        }
        Table { apps }
    }

    /// Keys holding state, over all limiters.
    pub(super) fn tracked_keys(&self) -> usize {
        self.limiters().map(|l| l.len()).sum()
    }

    /// Every limiter of the table.
    pub(super) fn limiters(&self) -> impl Iterator<Item = &ScopeLimiter<C>> {
        self.apps.values().flat_map(|a| {
            a.levels.iter().flat_map(|s| s.default.iter().chain(s.specific.values().flatten()).map(|l| &**l))
        })
    }
}

/// `kept` when it enforces `limit` already, else a new limiter for `limit` (`None`: no limit).
fn reuse<C: Clock + Clone>(
    kept: Option<&Arc<ScopeLimiter<C>>>,
    level: Level,
    limit: Option<u32>,
    single: bool,
    clock: &C,
) -> Option<Arc<ScopeLimiter<C>>> {
    let limit = limit?;
    match kept {
        Some(k) if k.limit() == limit => Some(Arc::clone(k)),
        _ => Some(Arc::new(ScopeLimiter::new(level, limit, single, clock))),
    }
}
