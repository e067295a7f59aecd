//! [`JournaledKv`]: plugin state of a single gateway on SQLite — served from memory, every change
//! written behind to the plugin-state file, all of it loaded back when the gateway starts.
//!
//! Why not [`super::SqlKv`] directly on SQLite: each of a request's key-value calls would be a
//! round trip to SQLite's worker thread. Measured with `onecard-load` (4 connections, release
//! build): 1 277 µs of server CPU per admission against ~384 µs with in-memory state, and under
//! an open-loop load the waits for that thread passed the plugin's 100 ms deadline
//! (`PLUGIN_TIMEOUT`). A SQLite file belongs to one gateway process, so its state can live in
//! that process's memory; several gateways share state through PostgreSQL ([`super::SqlKv`]) or
//! Redis instead.
//!
//! Expired entries leave memory a shard at a time ([`JournaledKv::prune_expired_step`]) and
//! the file through the journal, like any deletion.
//!
//! Durability: each change is journaled under the store's lock (so in the order it happened) to
//! a writer task that appends what has accumulated over [`LINGER`] to the file's change log in
//! one transaction ([`super::change_log`], rewritten as the live entries now and then). A change
//! is on disk about that long after the plugin made it; a process crash can lose those last
//! milliseconds of counters and markers, never reorder or corrupt them.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::change_log;
use super::memory::{Changed, Journal};
use super::{KvBackend, KvBackendError, MemoryKv, SqlKv};

/// Changes written in one transaction, at most.
const BATCH: usize = 4096;
/// How long the writer gathers more changes after the first of a batch (unless the batch starts
/// with a flush, which someone waits on; a flush behind changes waits at most this long).
/// Without it, a steady stream of requests commits a transaction for every one or two changes,
/// each a few round trips to SQLite's worker thread. It is also about what a process crash can
/// lose.
const LINGER: Duration = Duration::from_millis(10);
/// Rows a compaction writes per transaction (about 10 ms of SQLite's time).
const COMPACTION_STEP: usize = 4096;
/// The pause after each of a compaction's steps: it takes at most about half of one CPU, so a
/// store of hundreds of thousands of entries is rewritten over a second or two without taking
/// a core from the requests. Changes made meanwhile wait in the journal's queue that long.
const COMPACTION_PAUSE: Duration = Duration::from_millis(10);

enum Job {
    Change { namespace: String, key: String, changed: Changed },
    Flush(oneshot::Sender<()>),
}

/// A [`KvBackend`] in memory, journaled to a SQLite plugin-state file.
#[derive(Debug, Clone)]
pub struct JournaledKv {
    memory: Arc<MemoryKv>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Job {
    /// Someone waits on this job: commit now.
    fn is_flush(&self) -> bool {
        matches!(self, Job::Flush(_))
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Change { .. } => "Change",
            Job::Flush(_) => "Flush",
        })
    }
}

impl JournaledKv {
    /// Opens the plugin-state file at `url` (see [`SqlKv::connect`]), loads its live entries,
    /// rewrites its log as them and starts the writer.
    pub async fn open(url: &str) -> Result<JournaledKv, KvBackendError> {
        Self::open_compacting_after(url, change_log::COMPACT_AFTER_ROWS).await
    }

    async fn open_compacting_after(url: &str, compact_after: u64) -> Result<JournaledKv, KvBackendError> {
        let store = SqlKv::connect_single_writer(url).await?;
        if !store.is_sqlite() {
            return Err(KvBackendError::Unavailable("the journaled plugin state is a SQLite file, not a server database".into()));
        }
        let unavailable = |e: sqlx::Error| KvBackendError::Unavailable(e.to_string());
        change_log::create(&store).await.map_err(unavailable)?;
        // Entries that expired while no gateway ran are left behind here.
        let entries = change_log::read(&store, super::sql::now_ms().max(0) as u64).await.map_err(unavailable)?;

        let (jobs, rx) = mpsc::unbounded_channel();
        let tx = jobs.clone();
        let journal = Journal(Arc::new(move |namespace: &str, key: &str, changed: Changed| {
            // The writer runs until every sender is gone; a send fails only after that.
            let _ = tx.send(Job::Change { namespace: namespace.to_owned(), key: key.to_owned(), changed });
        }));
        let memory = Arc::new(MemoryKv::journaled(entries, journal));
        let mut compaction = Compaction { memory: Arc::downgrade(&memory), after: compact_after, appended: 0, live: 0 };
        // The log rewritten as the entries just read, without pauses: nothing else runs yet.
        compaction.run(&store, Duration::ZERO).await.map_err(unavailable)?;
        tokio::spawn(write(store, rx, compaction));
        Ok(JournaledKv { memory, jobs })
    }

    /// Forgets the expired entries of one of the memory's shards, the next in turn
    /// ([`MemoryKv::prune_expired_step`]); the writer deletes them from the file by key, as it
    /// does any deletion, so the file is never scanned for them. Returns how many.
    pub fn prune_expired_step(&self) -> usize {
        self.memory.prune_expired_step()
    }
}

/// When the writer rewrites the log as the live entries.
struct Compaction {
    /// The store's entries; weak, so that the writer ends when the store is dropped.
    memory: Weak<MemoryKv>,
    /// [`change_log::COMPACT_AFTER_ROWS`], or less in tests.
    after: u64,
    /// Rows appended since the last compaction.
    appended: u64,
    /// Entries the last compaction wrote.
    live: u64,
}

impl Compaction {
    fn due(&self) -> bool {
        self.appended >= self.after.max(self.live)
    }

    /// Appends the live entries, the memory's shards in turn, in steps of about
    /// [`COMPACTION_STEP`] rows with `pause` after each, then deletes the rows that were there
    /// before. The writer takes no other change meanwhile, so each entry's row is followed by
    /// every change made to it after it was read; a crash half-way leaves the rows of both, and
    /// reading takes each key's last.
    async fn run(&mut self, store: &SqlKv, pause: Duration) -> Result<(), sqlx::Error> {
        let Some(memory) = self.memory.upgrade() else { return Ok(()) };
        let started = std::time::Instant::now();
        let through = change_log::last_seq(store).await?;
        let mut live = 0;
        // A step gathers the entries of as many shards as fill it: a shard holds a
        // thousandth of the store, so one step per shard would be many tiny transactions and
        // as many pauses.
        let mut step = Vec::with_capacity(COMPACTION_STEP);
        for shard in 0..crate::sharded::SHARDS {
            let entries = memory.shard_entries(shard);
            live += entries.len() as u64;
            step.extend(entries);
            if step.len() >= COMPACTION_STEP {
                change_log::append_entries(store, &step).await?;
                step.clear();
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        if !step.is_empty() {
            change_log::append_entries(store, &step).await?;
        }
        change_log::forget_through(store, through).await?;
        tracing::info!(entries = live, replaced_through_seq = through, took_ms = started.elapsed().as_millis() as u64, "plugin-state log compacted");
        (self.appended, self.live) = (0, live);
        Ok(())
    }
}

/// Appends journaled changes to the change log in batches until the store is dropped, and
/// compacts the log when it is due; a failed append is retried (with the same changes and any
/// that arrived since), never dropped.
async fn write(store: SqlKv, mut rx: mpsc::UnboundedReceiver<Job>, mut compaction: Compaction) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut pending: HashMap<(String, String), Changed> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    while rx.recv_many(&mut jobs, BATCH).await > 0 {
        // Sleep rather than wait on the queue, so that the changes arriving meanwhile do not
        // wake this task one by one; then take what came.
        if !jobs.iter().any(Job::is_flush) {
            tokio::time::sleep(LINGER).await;
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let mut flushes = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Change { namespace, key, changed } => {
                    let id = (namespace, key);
                    if pending.insert(id.clone(), changed).is_none() {
                        order.push(id);
                    }
                }
                Job::Flush(done) => flushes.push(done),
            }
        }
        let changes: Vec<_> = order.iter().map(|id| (id.0.as_str(), id.1.as_str(), &pending[id])).collect();
        let mut backoff = Duration::from_millis(5);
        loop {
            match change_log::append(&store, &changes).await {
                Ok(rows) => {
                    compaction.appended += rows;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, changes = order.len(), "cannot write plugin state; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        drop(changes);
        pending.clear();
        order.clear();
        for done in flushes {
            let _ = done.send(());
        }
        if compaction.due()
            && let Err(e) = compaction.run(&store, COMPACTION_PAUSE).await
        {
            // Changes keep being appended; the next batch tries again.
            tracing::warn!(error = %e, "cannot compact the plugin-state log");
        }
    }
}

#[async_trait]
impl KvBackend for JournaledKv {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        self.memory.get(ns, key).await
    }

    async fn set(&self, ns: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvBackendError> {
        self.memory.set(ns, key, value, ttl).await
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool, KvBackendError> {
        self.memory.delete(ns, key).await
    }

    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, KvBackendError> {
        self.memory.compare_and_swap(ns, key, expected, new, ttl).await
    }

    async fn increment(&self, ns: &str, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvBackendError> {
        self.memory.increment(ns, key, delta, ttl).await
    }

    /// Resolves once every change made before the call is committed.
    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A count read from the plugin-state file.
    async fn count(file: &SqlKv, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(file.pool()).await.unwrap()
    }

    #[tokio::test]
    async fn journaled_kv_keeps_the_backend_contract() {
        let dir = tempfile::tempdir().unwrap();
        let kv = JournaledKv::open(&dir.path().join("s-kv.db").display().to_string()).await.unwrap();
        crate::capabilities::kv::contract::holds(&kv).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_change_is_loaded_back_in_its_last_state() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let kv = JournaledKv::open(&url).await.unwrap();
        for _ in 0..500 {
            kv.increment("ecny", "daily:w1", 7, None).await.unwrap();
        }
        assert!(kv.compare_and_swap("parks", "inside:h", None, b"k1".to_vec(), Some(Duration::from_secs(600))).await.unwrap());
        kv.set("hospital", "gone", b"x".to_vec(), None).await.unwrap();
        assert!(kv.delete("hospital", "gone").await.unwrap());
        kv.set("parks", "short", b"x".to_vec(), Some(Duration::from_millis(1))).await.unwrap();
        kv.flush().await;
        drop(kv);

        tokio::time::sleep(Duration::from_millis(5)).await;
        let reopened = JournaledKv::open(&url).await.unwrap();
        assert_eq!(reopened.get("ecny", "daily:w1").await.unwrap(), Some(b"3500".to_vec()));
        assert_eq!(reopened.get("parks", "inside:h").await.unwrap(), Some(b"k1".to_vec()));
        assert_eq!(reopened.get("hospital", "gone").await.unwrap(), None, "a deletion is journaled too");
        assert_eq!(reopened.get("parks", "short").await.unwrap(), None, "an expired entry is not loaded");
        assert!(!reopened.compare_and_swap("parks", "inside:h", None, b"k2".to_vec(), None).await.unwrap(), "the marker holds after a restart");
    }

    /// Expired entries leave memory one shard per step and the file through the journal: after
    /// one step per shard and a flush, the file's log holds a deletion for each, and the entries
    /// read back are only the live one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_steps_delete_expired_entries_from_memory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let kv = JournaledKv::open(&url).await.unwrap();
        let file = SqlKv::connect(&url).await.unwrap();
        for n in 0..100 {
            kv.set("parks", &format!("short{n}"), b"x".to_vec(), Some(Duration::from_millis(1))).await.unwrap();
        }
        kv.set("parks", "kept", b"y".to_vec(), None).await.unwrap();
        kv.flush().await;
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log WHERE value IS NOT NULL").await, 101);
        tokio::time::sleep(Duration::from_millis(5)).await;

        let first = kv.prune_expired_step();
        assert!(first < 100, "one step prunes one shard, not the store ({first})");
        let rest: usize = (1..crate::sharded::SHARDS).map(|_| kv.prune_expired_step()).sum();
        assert_eq!(first + rest, 100);
        assert_eq!(kv.memory.len(), 1);
        kv.flush().await;
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log WHERE value IS NULL").await, 100, "each expired entry's deletion was journaled");
        assert_eq!(kv.get("parks", "kept").await.unwrap(), Some(b"y".to_vec()));
        drop(kv);
        let reopened = JournaledKv::open(&url).await.unwrap();
        assert_eq!(reopened.memory.len(), 1);
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log").await, 1, "the start rewrote the log as the one live entry");
    }

    /// The log is rewritten as the live entries once it has grown enough, and at every start:
    /// 150 values with a compaction after 100 rows leave 150 rows, all written after the first
    /// 150; then a value replaced by one that expires, a deletion and an empty value are logged,
    /// and read back at the next start as they were left (the older value does not come back),
    /// the log then holding exactly the live entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_compacted_to_the_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let kv = JournaledKv::open_compacting_after(&url, 100).await.unwrap();
        let file = SqlKv::connect(&url).await.unwrap();
        for n in 0..150 {
            kv.set("parks", &format!("k{n}"), n.to_string().into_bytes(), None).await.unwrap();
        }
        kv.flush().await;
        // The compaction follows the batch; the writer takes the next flush after it.
        kv.flush().await;
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log").await, 150);
        assert_eq!(count(&file, "SELECT MIN(seq) FROM plugin_kv_log").await, 151, "the first 150 rows were rewritten");

        kv.set("parks", "k0", b"soon gone".to_vec(), Some(Duration::from_millis(1))).await.unwrap();
        assert!(kv.delete("parks", "k1").await.unwrap());
        kv.set("parks", "empty", Vec::new(), None).await.unwrap();
        kv.flush().await;
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log").await, 153, "below the threshold the log only grows");
        drop(kv);
        tokio::time::sleep(Duration::from_millis(5)).await;

        let reopened = JournaledKv::open(&url).await.unwrap();
        assert_eq!(reopened.get("parks", "k0").await.unwrap(), None, "the expired value replaced the older one");
        assert_eq!(reopened.get("parks", "k1").await.unwrap(), None, "the deletion holds");
        assert_eq!(reopened.get("parks", "k2").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(reopened.get("parks", "k149").await.unwrap(), Some(b"149".to_vec()));
        assert_eq!(reopened.get("parks", "empty").await.unwrap(), Some(Vec::new()), "an empty value is a value, not a deletion");
        assert_eq!(reopened.memory.len(), 149);
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log").await, 149, "a start rewrites the log as the live entries");
    }

    /// A compaction of more entries than a step (steps gathered from many shards, the last one
    /// partly full) writes every live entry exactly once: a start rewrites 2 × 4 096 + 10
    /// entries as as many rows, each read back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_compaction_of_several_steps_writes_every_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let entries = 2 * COMPACTION_STEP + 10;
        let kv = JournaledKv::open(&url).await.unwrap();
        for n in 0..entries {
            kv.set("parks", &format!("k{n}"), n.to_string().into_bytes(), None).await.unwrap();
        }
        kv.flush().await;
        drop(kv);
        tokio::time::sleep(Duration::from_millis(5)).await;

        let reopened = JournaledKv::open(&url).await.unwrap();
        let file = SqlKv::connect(&url).await.unwrap();
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log").await, entries as i64, "one row per live entry");
        assert_eq!(count(&file, "SELECT COUNT(DISTINCT key) FROM plugin_kv_log").await, entries as i64);
        assert_eq!(reopened.memory.len(), entries);
        for n in [0, COMPACTION_STEP - 1, COMPACTION_STEP, entries - 1] {
            assert_eq!(reopened.get("parks", &format!("k{n}")).await.unwrap(), Some(n.to_string().into_bytes()));
        }
    }

    /// A file from before the log (entries in `plugin_kv`, written here by [`SqlKv`]) opens with
    /// its entries, which move into the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_from_before_the_log_keeps_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let old = SqlKv::connect(&url).await.unwrap();
        old.set("parks", "inside:h", b"k1".to_vec(), Some(Duration::from_secs(600))).await.unwrap();
        old.increment("ecny", "daily:w1", 700, None).await.unwrap();

        let kv = JournaledKv::open(&url).await.unwrap();
        assert_eq!(kv.get("parks", "inside:h").await.unwrap(), Some(b"k1".to_vec()));
        assert_eq!(kv.get("ecny", "daily:w1").await.unwrap(), Some(b"700".to_vec()));
        assert_eq!(count(&old, "SELECT COUNT(*) FROM plugin_kv").await, 0);
        assert_eq!(count(&old, "SELECT COUNT(*) FROM plugin_kv_log").await, 2);
    }

    /// Batches larger than one statement (64 rows): 150 keys written, then 70 of them deleted and
    /// one rewritten, all journaled; the reopened store holds exactly the last states.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_larger_than_one_statement_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s-kv.db").display().to_string();
        let kv = JournaledKv::open(&url).await.unwrap();
        for n in 0..150 {
            kv.set("parks", &format!("k{n}"), n.to_string().into_bytes(), None).await.unwrap();
        }
        kv.flush().await;
        for n in 0..70 {
            assert!(kv.delete("parks", &format!("k{n}")).await.unwrap());
        }
        kv.set("parks", "k149", b"last".to_vec(), Some(Duration::from_secs(600))).await.unwrap();
        kv.flush().await;
        drop(kv);

        let reopened = JournaledKv::open(&url).await.unwrap();
        for n in 0..70 {
            assert_eq!(reopened.get("parks", &format!("k{n}")).await.unwrap(), None, "k{n} was deleted");
        }
        for n in 70..149 {
            assert_eq!(reopened.get("parks", &format!("k{n}")).await.unwrap(), Some(n.to_string().into_bytes()), "k{n}");
        }
        assert_eq!(reopened.get("parks", "k149").await.unwrap(), Some(b"last".to_vec()));
    }

    /// Under sustained writes the log does not grow without bound: 40 commits of 500 scattered
    /// keys each (20 000 rows), then the log file's size. Without checkpoints by the writer's own
    /// commits the log held every page of every commit and kept growing (measured: 16.8 MB);
    /// with them it is started again after each. Every row is still there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_small_under_sustained_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s-kv.db");
        let kv = JournaledKv::open(&path.display().to_string()).await.unwrap();
        let key = |round: u64, n: u64| format!("h{:016x}", (round * 1000 + n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for round in 0..40 {
            for n in 0..500 {
                kv.set("parks", &key(round, n), b"inside".to_vec(), None).await.unwrap();
            }
            kv.flush().await;
        }
        let log = std::fs::metadata(dir.path().join("s-kv.db-wal")).unwrap().len();
        assert!(log < 8 * 1024 * 1024, "the log grew to {log} bytes");
        drop(kv);

        let reopened = JournaledKv::open(&path.display().to_string()).await.unwrap();
        for (round, n) in [(0, 0), (17, 333), (39, 499)] {
            assert_eq!(reopened.get("parks", &key(round, n)).await.unwrap(), Some(b"inside".to_vec()));
        }
        let file = SqlKv::connect(&path.display().to_string()).await.unwrap();
        assert_eq!(count(&file, "SELECT COUNT(*) FROM plugin_kv_log WHERE namespace = 'parks'").await, 20_000);
    }
}
