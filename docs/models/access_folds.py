#!/usr/bin/env python3
"""A model of how the catalog writes holder-data access records on SQLite.

catalog/src/store/accesses.rs appends each report to pending tables, one per slice of the card
space, and, once enough accesses wait, folds the fullest table into `accesses`, indexed by card.
This script replays that with Python's sqlite3 (the same SQLite file format, WAL, 4 KiB pages)
so that layouts can be compared without a load run: how many pages SQLite writes per access,
and how much CPU a fold takes in one transaction (the burst requests wait behind).

    python3 docs/models/access_folds.py LAYOUT SLICES FOLD_ROWS [WARM_ACCESSES]

LAYOUT is `keyed` (an `id` primary key on `accesses` and the pending tables, as migration 0003
had) or `unkeyed` (none, as migration 0004 has). It first reports WARM_ACCESSES accesses
(600 000 by default) of 300 000 cards in reports of 400 (a gateway's 200 ms at 2 000 a
second), then measures 200 more reports. Figures in docs/PERFORMANCE.md, session 20.
"""
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time

layout, slices, fold_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
warm = int(sys.argv[4]) if len(sys.argv) > 4 else 600_000
assert layout in ("keyed", "unkeyed") and 256 % slices == 0
random.seed(1)
path = os.path.join(tempfile.mkdtemp(), "model.db")
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run between measured reports
db.execute("PRAGMA temp_store=MEMORY")
cols = ("id TEXT NOT NULL, at TEXT NOT NULL, card_ref TEXT NOT NULL, application TEXT NOT NULL, action TEXT NOT NULL, "
        "channel TEXT NOT NULL, consent_id TEXT, scopes TEXT NOT NULL, gateway TEXT NOT NULL")
key = ", PRIMARY KEY (id)" if layout == "keyed" else ""
db.execute(f"CREATE TABLE accesses ({cols}{key})")
db.execute("CREATE INDEX accesses_card ON accesses (card_ref, at)")
names = [f"pending_{i * 256 // slices:02x}" for i in range(slices)]
for name in names:
    db.execute(f"CREATE TABLE {name} ({cols}{key})")
COLUMNS = "id, at, card_ref, application, action, channel, consent_id, scopes, gateway"
cards = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(300_000)]
counts = [0] * slices
seq = 0


def report(n):
    """One report of n accesses; returns how many it folded."""
    global seq
    rows = {}
    for _ in range(n):
        seq += 1
        card = random.choice(cards)
        at = f"2026-12-07T{seq // 3_600_000 % 24:02d}:{seq // 60_000 % 60:02d}:{seq / 1000 % 60:09.6f}Z"
        rows.setdefault(int(card[:2], 16) * slices // 256, []).append(
            (f"{seq:028x}", at, card, "parks", "enter", "3300000001", "consent-1", '["holder.age"]', "gw-1"))
    db.execute("BEGIN")
    for i, batch in rows.items():
        db.executemany(f"INSERT INTO {names[i]} ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", batch)
        counts[i] += len(batch)
    folded = 0
    if sum(counts) >= fold_rows:
        i = max(range(slices), key=lambda i: counts[i])
        db.execute(f"INSERT INTO accesses ({COLUMNS}) SELECT {COLUMNS} FROM {names[i]} ORDER BY card_ref, at, id")
        db.execute(f"DELETE FROM {names[i]}")
        folded, counts[i] = counts[i], 0
    db.execute("COMMIT")
    return folded


def wal_pages():
    try:
        return os.path.getsize(path + "-wal") // (4096 + 24)
    except FileNotFoundError:
        return 0


while seq < warm:
    report(400)
    if seq % 40_000 == 0:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
pages = 0
cpu = 0.0
folds = []
for k in range(200):
    before, started = wal_pages(), time.process_time()
    folded = report(400)
    spent = time.process_time() - started
    written = wal_pages() - before
    pages += written
    cpu += spent
    if folded:
        folds.append((folded, written, spent))
    if k % 20 == 19:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
fold_cpu = sorted(f[2] for f in folds)
print(json.dumps({
    "layout": layout, "slices": slices, "fold_rows": fold_rows, "warm_accesses": warm,
    "pages_per_access": round(pages / (200 * 400), 3),
    "cpu_ms_per_report": round(cpu / 200 * 1000, 2),
    "folds": len(folds),
    "accesses_per_fold": sum(f[0] for f in folds) // max(1, len(folds)),
    "pages_per_fold": sum(f[1] for f in folds) // max(1, len(folds)),
    "fold_cpu_ms_median": round(fold_cpu[len(fold_cpu) // 2] * 1000, 1) if folds else None,
    "fold_cpu_ms_max": round(fold_cpu[-1] * 1000, 1) if folds else None,
}))
