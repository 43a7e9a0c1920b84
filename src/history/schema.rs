//! The history database's schema as an ordered list of migrations. `PRAGMA user_version`
//! records how many have been applied; each new release appends, never edits, so a database
//! written by any earlier vecdrill opens and upgrades in place.

/// Applied in order; migration `i` brings the database to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs (drills and backups), their objectives and collection counts, baselines.
    "CREATE TABLE runs (
        id               TEXT PRIMARY KEY,
        kind             TEXT NOT NULL CHECK (kind IN ('drill', 'backup')),
        scenario         TEXT,
        repo             TEXT,
        target           TEXT NOT NULL,
        started_at       TEXT NOT NULL,
        finished_at      TEXT NOT NULL,
        passed           INTEGER NOT NULL,
        exit_code        INTEGER NOT NULL,
        duration_ms      REAL NOT NULL,
        rto_ms           REAL,
        rpo_ms           REAL,
        p50_ms           REAL,
        p90_ms           REAL,
        p99_ms           REAL,
        backup_id        TEXT,
        logical_bytes    INTEGER,
        stored_bytes     INTEGER,
        vecdrill_version TEXT NOT NULL,
        host             TEXT NOT NULL,
        report_dir       TEXT,
        detail           TEXT NOT NULL
    );
    CREATE INDEX runs_by_scenario ON runs (scenario, started_at);
    CREATE INDEX runs_by_time ON runs (started_at);
    CREATE TABLE objectives (
        run_id         TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position       INTEGER NOT NULL,
        name           TEXT NOT NULL,
        target         TEXT NOT NULL,
        target_value   REAL,
        measured_value REAL,
        baseline_value REAL,
        unit           TEXT NOT NULL,
        passed         INTEGER NOT NULL,
        skipped        INTEGER NOT NULL,
        detail         TEXT NOT NULL,
        PRIMARY KEY (run_id, position)
    );
    CREATE TABLE counts (
        run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        collection TEXT NOT NULL,
        count      INTEGER NOT NULL,
        PRIMARY KEY (run_id, collection)
    );
    CREATE TABLE baselines (
        scenario TEXT PRIMARY KEY,
        run_id   TEXT NOT NULL REFERENCES runs (id),
        set_at   TEXT NOT NULL
    );",
];
