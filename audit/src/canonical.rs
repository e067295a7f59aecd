//! The canonical, versioned byte encoding that record hashes and ledger digests are computed
//! over. It is written out by hand (not serde) so that it is fixed by this file alone and cannot
//! shift with a library's map ordering or float formatting.
//!
//! # Format 1
//!
//! `hash = lowercase_hex(SHA-256(b"onecard-audit\x00v1\x00" || fields))`, where `fields` are, in
//! this order: `chain`, `seq`, `prev_hash`, `request_id`, `at`, `channel`, `venue`, `terminal`,
//! `card_ref`, `app`, `action`, `plugin_sha256`, `snapshot_version`, `outcome`, `code`, `blame`,
//! `status`, `latency_us`, `detail`, `ledger_sha256`, each encoded as
//!
//! - text: the byte `0x01`, its UTF-8 length as a 4-byte big-endian integer, the UTF-8 bytes;
//! - absent text (SQL `NULL`): the byte `0x00`;
//! - integer: the byte `0x02`, then the value as an 8-byte big-endian two's-complement integer.
//!
//! Text is hashed exactly as stored: `at` is RFC 3339 UTC with microseconds, `detail` is the
//! JSON text of the column (never re-serialized), `outcome` is `allowed|refused|failed`. The
//! first record of a chain has `prev_hash` = 64 zeros. Because `chain`, `seq` and `prev_hash`
//! are inside the hash, an edited field, an edited hash, a deleted, inserted, reordered or moved
//! record all break the chain at the first record concerned. Two things a chain alone cannot
//! show: records cut off its *tail* leave a shorter valid chain, and the hash has no secret, so
//! someone with write access who recomputes every hash after an edit leaves a valid chain with a
//! different head. Both show only when the reported head is compared with one kept elsewhere
//! (the writer's status, logs, a checkpoint held outside the database).
//!
//! The ledger digest of a record with ledger entries is
//! `lowercase_hex(SHA-256(b"onecard-ledger\x00v1\x00" || count || entries))`, `count` an 8-byte
//! big-endian integer and each entry, in `position` order, the fields `app`, `kind`, `account`,
//! `amount_fen`, `reference`, `idempotency_key`, `receipt_id`, `settled_at_ms` encoded as above.
//! It is stored in the record's `ledger_sha256` and so covered by the record's hash.

use sha2::{Digest, Sha256};

use crate::entry::{LedgerEntry, RecordFields};

/// The encoding version written by this crate.
pub const FORMAT: i64 = 1;

/// `prev_hash` of the first record of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const RECORD_TAG: &[u8] = b"onecard-audit\x00v1\x00";
const LEDGER_TAG: &[u8] = b"onecard-ledger\x00v1\x00";

/// Writes the field encoding of format 1 into a hasher.
struct Encoder(Sha256);

impl Encoder {
    fn new(tag: &[u8]) -> Encoder {
        let mut h = Sha256::new();
        h.update(tag);
        Encoder(h)
    }

    fn text(&mut self, value: &str) -> &mut Self {
        // Fields longer than 4 GiB cannot be stored in a row anyway; saturating keeps it total.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.update([0x01]);
        self.0.update(len.to_be_bytes());
        self.0.update(value.as_bytes());
        self
    }

    fn opt(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => {
                self.0.update([0x00]);
                self
            }
        }
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.0.update([0x02]);
        self.0.update(value.to_be_bytes());
        self
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The format-1 hash of a record.
pub fn record_hash(chain: &str, seq: i64, prev_hash: &str, f: &RecordFields) -> String {
    let mut e = Encoder::new(RECORD_TAG);
    e.text(chain)
        .int(seq)
        .text(prev_hash)
        .text(&f.request_id)
        .text(&f.at)
        .opt(f.channel.as_deref())
        .opt(f.venue.as_deref())
        .opt(f.terminal.as_deref())
        .opt(f.card_ref.as_deref())
        .text(&f.app)
        .text(&f.action)
        .opt(f.plugin_sha256.as_deref())
        .int(f.snapshot_version)
        .text(&f.outcome)
        .opt(f.code.as_deref())
        .opt(f.blame.as_deref())
        .int(f.status)
        .int(f.latency_us)
        .text(&f.detail)
        .opt(f.ledger_sha256.as_deref());
    e.finish()
}

/// A ledger entry as stored (amount as the stored integer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLedger {
    /// See [`LedgerEntry`].
    pub app: String,
    /// See [`LedgerEntry`].
    pub kind: String,
    /// See [`LedgerEntry`].
    pub account: String,
    /// See [`LedgerEntry`].
    pub amount_fen: i64,
    /// See [`LedgerEntry`].
    pub reference: String,
    /// See [`LedgerEntry`].
    pub idempotency_key: String,
    /// See [`LedgerEntry`].
    pub receipt_id: String,
    /// See [`LedgerEntry`].
    pub settled_at_ms: i64,
}

impl StoredLedger {
    /// The stored form of a validated entry (amounts above `i64::MAX` are refused by validation).
    pub fn from_entry(l: &LedgerEntry) -> StoredLedger {
        StoredLedger {
            app: l.app.clone(),
            kind: l.kind.clone(),
            account: l.account.clone(),
            amount_fen: i64::try_from(l.amount_fen).unwrap_or(i64::MAX),
            reference: l.reference.clone(),
            idempotency_key: l.idempotency_key.clone(),
            receipt_id: l.receipt_id.clone(),
            settled_at_ms: l.settled_at_ms,
        }
    }
}

/// The format-1 digest of the ledger entries of one record, in position order.
pub fn ledger_digest(entries: &[StoredLedger]) -> String {
    let mut e = Encoder::new(LEDGER_TAG);
    e.int(i64::try_from(entries.len()).unwrap_or(i64::MAX));
    for l in entries {
        e.text(&l.app)
            .text(&l.kind)
            .text(&l.account)
            .int(l.amount_fen)
            .text(&l.reference)
            .text(&l.idempotency_key)
            .text(&l.receipt_id)
            .int(l.settled_at_ms);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> RecordFields {
        RecordFields {
            request_id: "r1".into(),
            at: "2026-11-23T10:00:00.000000Z".into(),
            channel: Some("3300000001".into()),
            venue: None,
            terminal: None,
            card_ref: Some("c".into()),
            app: "parks".into(),
            action: "enter".into(),
            plugin_sha256: None,
            snapshot_version: 7,
            outcome: "allowed".into(),
            code: None,
            blame: None,
            status: 200,
            latency_us: 1500,
            detail: "{}".into(),
            ledger_sha256: None,
        }
    }

    #[test]
    fn the_hash_follows_the_documented_encoding() {
        // Recomputes the hash by hand from the module documentation: a change to the encoding
        // must be a new format, never a silent change of format 1.
        let h = record_hash("gw-1", 1, GENESIS, &fields());
        assert_eq!(h.len(), 64);
        assert_eq!(h, record_hash("gw-1", 1, GENESIS, &fields()));
        let mut manual = Sha256::new();
        manual.update(b"onecard-audit\x00v1\x00");
        let text = |m: &mut Sha256, s: &str| {
            m.update([1u8]);
            m.update((s.len() as u32).to_be_bytes());
            m.update(s.as_bytes());
        };
        let int = |m: &mut Sha256, v: i64| {
            m.update([2u8]);
            m.update(v.to_be_bytes());
        };
        text(&mut manual, "gw-1");
        int(&mut manual, 1);
        text(&mut manual, GENESIS);
        text(&mut manual, "r1");
        text(&mut manual, "2026-11-23T10:00:00.000000Z");
        text(&mut manual, "3300000001");
        manual.update([0u8]);
        manual.update([0u8]);
        text(&mut manual, "c");
        text(&mut manual, "parks");
        text(&mut manual, "enter");
        manual.update([0u8]);
        int(&mut manual, 7);
        text(&mut manual, "allowed");
        manual.update([0u8]);
        manual.update([0u8]);
        int(&mut manual, 200);
        int(&mut manual, 1500);
        text(&mut manual, "{}");
        manual.update([0u8]);
        assert_eq!(h, hex::encode(manual.finalize()));
    }

    #[test]
    fn absent_and_empty_text_differ_and_fields_do_not_run_together() {
        let mut a = fields();
        a.venue = Some(String::new());
        assert_ne!(record_hash("gw", 1, GENESIS, &a), record_hash("gw", 1, GENESIS, &fields()));
        let (mut b, mut c) = (fields(), fields());
        b.app = "ab".into();
        b.action = "c".into();
        c.app = "a".into();
        c.action = "bc".into();
        assert_ne!(record_hash("gw", 1, GENESIS, &b), record_hash("gw", 1, GENESIS, &c));
    }

    #[test]
    fn every_field_is_covered() {
        let base = record_hash("gw", 3, GENESIS, &fields());
        type Edit = Box<dyn Fn(&mut RecordFields)>;
        let edits: Vec<Edit> = vec![
            Box::new(|f| f.request_id.push('x')),
            Box::new(|f| f.at = "2026-11-23T10:00:00.000001Z".into()),
            Box::new(|f| f.channel = None),
            Box::new(|f| f.venue = Some("v".into())),
            Box::new(|f| f.terminal = Some("t".into())),
            Box::new(|f| f.card_ref = Some("d".into())),
            Box::new(|f| f.app.push('x')),
            Box::new(|f| f.action.push('x')),
            Box::new(|f| f.plugin_sha256 = Some("00".into())),
            Box::new(|f| f.snapshot_version += 1),
            Box::new(|f| f.outcome = "refused".into()),
            Box::new(|f| f.code = Some("X".into())),
            Box::new(|f| f.blame = Some("caller".into())),
            Box::new(|f| f.status = 403),
            Box::new(|f| f.latency_us += 1),
            Box::new(|f| f.detail = "{ }".into()),
            Box::new(|f| f.ledger_sha256 = Some("00".into())),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut f = fields();
            edit(&mut f);
            assert_ne!(record_hash("gw", 3, GENESIS, &f), base, "edit {i} is not covered");
        }
        assert_ne!(record_hash("gx", 3, GENESIS, &fields()), base, "chain is covered");
        assert_ne!(record_hash("gw", 4, GENESIS, &fields()), base, "seq is covered");
        assert_ne!(record_hash("gw", 3, &"1".repeat(64), &fields()), base, "prev_hash is covered");
    }

    #[test]
    fn ledger_digest_depends_on_order_and_every_field() {
        let l = StoredLedger {
            app: "ecny".into(),
            kind: "debit".into(),
            account: "a".into(),
            amount_fen: 100,
            reference: "ref".into(),
            idempotency_key: "k".into(),
            receipt_id: "r".into(),
            settled_at_ms: 1,
        };
        let mut m = l.clone();
        m.idempotency_key = "k2".into();
        assert_ne!(ledger_digest(&[l.clone(), m.clone()]), ledger_digest(&[m.clone(), l.clone()]));
        let mut n = l.clone();
        n.amount_fen = 101;
        assert_ne!(ledger_digest(std::slice::from_ref(&l)), ledger_digest(&[n]));
        assert_ne!(ledger_digest(&[]), ledger_digest(&[l]));
    }
}
