//! One governor limiter: the quota of one scope (an application's default, or one channel,
//! venue or card holder with an entry of its own) at one level, with peek, take and refund.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};

use super::status::{Level, RateLimited, policy};
use super::store::{Cells, KeyId, Mode, Probe};

type Governor<C> = RateLimiter<Probe, Cells, C, StateInformationMiddleware>;

/// The governor limiter of a nonzero limit, with its store (for refunds) and its
/// replenishment interval (the size of one cell).
#[derive(Debug)]
struct Gate<C: Clock> {
    governor: Governor<C>,
    cells: Cells,
    t: Nanos,
}

/// A limit of `limit` requests per `level.window()` for the keys of one scope.
#[derive(Debug)]
pub(super) struct ScopeLimiter<C: Clock> {
    level: Level,
    limit: u32,
    policy: String,
    /// `None` for a limit of 0, which admits nothing (governor cannot express it; the catalog
    /// refuses such policies, so only a hand-made snapshot can carry one).
    gate: Option<Gate<C>>,
}

/// The GCRA quota for `limit` per `window`: a burst of `limit`, one request replenished
/// every `window / limit`.
fn quota(limit: NonZeroU32, window: Duration) -> Quota {
    // window / limit is at least 20 µs for any u32 limit and a window of one minute or more,
    // so `with_period` (which refuses only a zero period) always answers.
    Quota::with_period(window / limit.get()).map_or_else(|| Quota::per_second(limit), |q| q.allow_burst(limit))
}

impl<C: Clock + Clone> ScopeLimiter<C> {
    /// A limiter of `limit` per `level.window()`; `single` when it will hold one key only.
    pub(super) fn new(level: Level, limit: u32, single: bool, clock: &C) -> Self {
        let gate = NonZeroU32::new(limit).map(|n| {
            let q = quota(n, level.window());
            let cells = if single { Cells::single() } else { Cells::many() };
            Gate {
                governor: RateLimiter::new(q, cells.clone(), clock.clone()),
                cells,
                t: q.replenish_interval().into(),
            }
        });
        ScopeLimiter { level, limit, policy: policy(limit, level.window()), gate }
    }

    /// The limit per window.
    pub(super) fn limit(&self) -> u32 {
        self.limit
    }

    /// The draft's quota policy (`60;w=60`).
    pub(super) fn policy(&self) -> &str {
        &self.policy
    }

    /// Whether `id` would be admitted now; consumes nothing.
    pub(super) fn peek(&self, id: KeyId) -> Result<(), RateLimited> {
        self.decide(id, Mode::Peek).map(|_| ())
    }

    /// Admits `id` now and consumes one request, or refuses and consumes nothing.
    pub(super) fn take(&self, id: KeyId) -> Result<StateSnapshot, RateLimited> {
        self.decide(id, Mode::Take)
    }

    /// Gives back the request a successful [`ScopeLimiter::take`] of `id` consumed.
    pub(super) fn refund(&self, id: KeyId) {
        if let Some(g) = &self.gate {
            g.cells.refund(id, g.t);
        }
    }

    fn decide(&self, id: KeyId, mode: Mode) -> Result<StateSnapshot, RateLimited> {
        let Some(g) = &self.gate else {
            return Err(RateLimited { level: self.level, limit: 0, retry_after: self.level.window() });
        };
        g.governor.check_key(&Probe { id, mode }).map_err(|not_until| RateLimited {
            level: self.level,
            limit: self.limit,
            retry_after: not_until.wait_time_from(g.governor.clock().now()),
        })
    }

    /// The time until a key whose last admission left `snapshot` is back to a full burst.
    pub(super) fn reset(&self, snapshot: &StateSnapshot) -> Duration {
        let used = self.limit.saturating_sub(snapshot.remaining_burst_capacity());
        snapshot.quota().replenish_interval() * used
    }

    /// Drops the keys whose state is indistinguishable from a fresh one, and frees the room.
    pub(super) fn prune(&self) {
        if let Some(g) = &self.gate {
            g.governor.retain_recent();
            g.governor.shrink_to_fit();
        }
    }

    /// Keys holding state.
    pub(super) fn len(&self) -> usize {
        self.gate.as_ref().map_or(0, |g| g.governor.len())
    }
}
