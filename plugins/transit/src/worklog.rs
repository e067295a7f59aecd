//! An append-only work log in the application's key-value namespace, drained in order by a
//! cursor: how a tap leaves work (a trip to settle and upload, an entry to watch) for a later
//! `upload_pending` call, since the key-value store has no listing.
//!
//! `append` takes the next slot number with an atomic increment and writes the slot. A reader
//! walks from the cursor to the head and moves the cursor over the prefix of slots that are done.
//! A slot whose number was taken but is still empty is being written by a concurrent tap; if it
//! stays empty for longer than any request can live ([`ABANDONED_AFTER_MS`]) its writer died and
//! the reader passes over it. Two readers draining at once do the same work twice, so everything
//! a reader does must be idempotent (it is: payments and uploads carry the trip id as key).

use onecard_sdk::{HandleError, kv, log};

/// An empty slot older than this was abandoned by a request that died mid-write.
pub const ABANDONED_AFTER_MS: i64 = 60_000;

/// What the reader did with one slot.
pub enum Step {
    /// The slot needs nothing more; the cursor may pass it.
    Done,
    /// The slot is not ready yet (and neither are the later ones): stop, without error.
    Wait,
    /// A backend failed: stop here and report it.
    Stop(HandleError),
}

/// The outcome of one drain.
#[derive(Debug)]
pub struct Drained {
    /// Slots between the cursor and the head after this drain.
    pub remaining: u64,
    pub stopped: Option<HandleError>,
}

#[derive(Debug, Clone, Copy)]
pub struct WorkLog {
    name: &'static str,
}

impl WorkLog {
    pub const fn new(name: &'static str) -> Self {
        WorkLog { name }
    }

    fn head_key(&self) -> String {
        format!("{}:head", self.name)
    }

    fn cursor_key(&self) -> String {
        format!("{}:cursor", self.name)
    }

    fn slot_key(&self, n: u64) -> String {
        format!("{}:{n}", self.name)
    }

    fn gap_key(&self, n: u64) -> String {
        format!("{}:gap:{n}", self.name)
    }

    /// Append `value`; the slot expires after `ttl_ms` (longer than any drain can lag).
    pub fn append(&self, value: &[u8], ttl_ms: u64) -> Result<u64, HandleError> {
        let n = kv::increment(&self.head_key(), 1, None)?;
        let n = u64::try_from(n).map_err(|_| HandleError::Internal(format!("{}: negative head", self.name)))?;
        kv::set(&self.slot_key(n), value, Some(ttl_ms))?;
        Ok(n)
    }

    fn number(&self, key: &str) -> Result<u64, HandleError> {
        Ok(kv::get(key)?.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(0))
    }

    /// Walk the slots after the cursor, at most `max` of them, calling `f` on each written one.
    pub fn drain(&self, now_ms: i64, max: u64, mut f: impl FnMut(&[u8]) -> Result<Step, HandleError>) -> Result<Drained, HandleError> {
        let cursor = self.number(&self.cursor_key())?;
        let head = self.number(&self.head_key())?;
        let (mut done_to, mut handled, mut stopped) = (cursor, 0, None);
        let mut n = cursor;
        while n < head && handled < max {
            n += 1;
            let step = match kv::get(&self.slot_key(n))? {
                Some(value) => {
                    handled += 1;
                    f(&value)?
                }
                None if self.abandoned(n, now_ms)? => {
                    log::warn(&format!("{}: slot {n} was never written; passing over it", self.name));
                    Step::Done
                }
                None => Step::Wait,
            };
            match step {
                Step::Done => done_to = n,
                Step::Wait => break,
                Step::Stop(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        self.advance(cursor, done_to)?;
        Ok(Drained { remaining: head - done_to, stopped })
    }

    /// True when slot `n` has been seen empty for longer than a request can live.
    fn abandoned(&self, n: u64, now_ms: i64) -> Result<bool, HandleError> {
        let key = self.gap_key(n);
        if kv::compare_and_swap(&key, None, now_ms.to_string().as_bytes(), Some(86_400_000))? {
            return Ok(false);
        }
        let first_seen: i64 = kv::get(&key)?.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(now_ms);
        Ok(now_ms - first_seen > ABANDONED_AFTER_MS)
    }

    /// Move the cursor from `from` to `to`, never backwards (a concurrent drain may be ahead).
    fn advance(&self, from: u64, to: u64) -> Result<(), HandleError> {
        if to == from {
            return Ok(());
        }
        let key = self.cursor_key();
        let mut current = kv::get(&key)?;
        for _ in 0..8 {
            let at: u64 = current.as_deref().and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
            if at >= to || kv::compare_and_swap(&key, current.as_deref(), to.to_string().as_bytes(), None)? {
                return Ok(());
            }
            current = kv::get(&key)?;
        }
        // Losing eight races means other drains are moving the cursor: they will pass these slots.
        Ok(())
    }
}
