//! A governor state store that can *look* at a key's GCRA state without consuming, so the
//! gateway can check every level of a request before it consumes any.
//!
//! governor has no peek: `check_key` tests and consumes in one step. Its extension point is the
//! public [`StateStore`] trait: `check_key` hands the store a closure holding governor's GCRA
//! decision and the store decides whether to write the new state back. So the key governor
//! passes around is a [`Probe`]: a key id plus a [`Mode`]. In [`Mode::Take`] the store delegates
//! to governor's own dashmap store (the normal, consuming path); in [`Mode::Peek`] it runs the
//! same decision on the current state and throws the new state away. The GCRA arithmetic stays
//! governor's; the only hand-written arithmetic is [`Cells::refund`], which governor cannot do at
//! all (it has no way to give a cell back) and which is needed only when a concurrent request
//! wins a race between the peek and the take (see `Limiters::check`).

use std::sync::Arc;

use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};

/// Identifies one rate-limiting state inside one limiter: a 128-bit hash of the key's text
/// (or 0 in a limiter that holds a single key). 128 bits make a collision between two card
/// holders practically impossible while letting the hot path look a key up without
/// allocating a `String` (governor's `check_key` takes `&K`, not a borrowed form of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeyId(pub(super) u128);

/// What the store does with governor's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Mode {
    /// Decide on the current state; write nothing.
    Peek,
    /// Decide and, when allowed, store the new state (governor's normal path).
    Take,
}

/// The key governor's limiter is instantiated with: which state, and what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Probe {
    /// The state.
    pub(super) id: KeyId,
    /// Peek or take.
    pub(super) mode: Mode,
}

/// The keyed states of one limiter: governor's dashmap store behind an `Arc`, so the limiter
/// (which owns its store) and [`Cells::refund`] reach the same map.
#[derive(Debug, Clone)]
pub(super) struct Cells(Arc<DashMapStateStore<KeyId>>);

impl Cells {
    /// A store for many keys (dashmap's default sharding).
    pub(super) fn many() -> Self {
        Cells(Arc::new(DashMapStateStore::default()))
    }

    /// A store that will only ever hold one key: the fewest shards dashmap allows, because
    /// there is one such store per venue and per granted channel.
    pub(super) fn single() -> Self {
        Cells(Arc::new(DashMapStateStore::with_shard_amount(2)))
    }

    /// Gives back one cell of `t` (the quota's replenishment interval) taken from `id`.
    ///
    /// A take moved the theoretical arrival time from `tat` to `max(tat, now) + t`; moving it
    /// back by `t` restores `tat` when it was in the future, and `now` otherwise, which GCRA
    /// cannot tell from any earlier time. Takes that happened in between are kept.
    pub(super) fn refund(&self, id: KeyId, t: Nanos) {
        if let Some(cell) = self.0.get(&id) {
            // `Err` leaves the state untouched: nothing was recorded, nothing to give back.
            let _ = cell.measure_and_replace(&NotKeyed::NonKey, |tat| match tat {
                Some(tat) => Ok(((), tat.saturating_sub(t))),
                None => Err(()),
            });
        }
    }
}

/// The current state of `cell` (`None` when fresh). governor exposes no reader, so this asks the
/// cell to measure and answers with an `Err` that carries the state: the cell writes nothing on
/// `Err`.
fn current(cell: &InMemoryState) -> Option<Nanos> {
    cell.measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>).err().flatten()
}

impl StateStore for Cells {
    type Key = Probe;

    fn measure_and_replace<T, F, E>(&self, key: &Probe, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        match key.mode {
            Mode::Take => self.0.measure_and_replace(&key.id, f),
            Mode::Peek => {
                let tat = self.0.get(&key.id).and_then(|cell| current(&cell));
                f(tat).map(|(outcome, _new_state)| outcome)
            }
        }
    }
}

impl ShrinkableKeyedStateStore<Probe> for Cells {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::<KeyId>::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::<KeyId>::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::<KeyId>::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::<KeyId>::is_empty(&*self.0)
    }
}
