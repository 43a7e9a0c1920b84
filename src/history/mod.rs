//! The history of every drill and backup: a SQLite database (by default in the user's state
//! directory, see [`default_path`]) that `vecdrill history` reads and baselines live in.
//!
//! Each run is written in one transaction, in WAL mode with `synchronous=FULL`, so a process
//! killed at any moment leaves the database readable and holding whole runs only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::exit::{self, Classify};

pub mod page;
mod record;
mod schema;
pub mod trend;

pub use crate::drill::baseline::Baseline;
pub use record::{backup_record, drill_record, BackupRun};

/// Where history goes when neither `--history` nor `VECDRILL_HISTORY` says otherwise: the
/// user's state directory (`$XDG_STATE_HOME`, else `~/.local/state`), so a cron job and a drill
/// run from different working directories share one history.
pub fn default_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|home| home.join(".local/state"))
        })?;
    Some(state.join("vecdrill/history.sqlite"))
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create the directory for the history database {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("history database {path} is at schema version {found}, newer than this vecdrill knows ({known})")]
    Newer {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("no run {0:?} in the history")]
    NoSuchRun(String),
    #[error("{0:?} matches several runs: {1}")]
    Ambiguous(String, String),
    #[error("run {run} cannot be a baseline: {why}")]
    NotABaseline { run: String, why: String },
}

impl Classify for HistoryError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::NoSuchRun(_) | Self::Ambiguous(..) | Self::NotABaseline { .. } => exit::BAD_INPUT,
            _ => exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Sqlite { .. } | Self::Directory { .. } => {
                Some("choose a writable location with --history PATH or VECDRILL_HISTORY".into())
            }
            Self::Newer { .. } => Some("upgrade vecdrill to read this history".into()),
            Self::NoSuchRun(_) | Self::Ambiguous(..) => {
                Some("`vecdrill history` lists the runs with their ids".into())
            }
            Self::NotABaseline { .. } => Some(
                "choose a drill run that measured search latency or counted collections".into(),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Drill,
    Backup,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drill => "drill",
            Self::Backup => "backup",
        }
    }
}

/// One objective as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectiveRow {
    pub name: String,
    pub target: String,
    pub target_value: Option<f64>,
    pub measured_value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub unit: String,
    pub passed: bool,
    pub skipped: bool,
    pub detail: String,
}

/// One drill or backup as the history keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// A drill's run directory name; a backup's repository id (`backup-` plus its start time
    /// when it committed nothing).
    pub id: String,
    pub kind: RunKind,
    pub scenario: Option<String>,
    pub repo: Option<String>,
    /// What was drilled or backed up, e.g. `chroma http://127.0.0.1:8000` or a directory.
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub passed: bool,
    pub exit_code: i32,
    pub duration_ms: f64,
    pub rto_ms: Option<f64>,
    pub rpo_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub backup_id: Option<String>,
    pub logical_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
    pub vecdrill_version: String,
    pub host: String,
    pub report_dir: Option<String>,
    pub objectives: Vec<ObjectiveRow>,
    pub counts: BTreeMap<String, u64>,
    /// The whole record: `report.json` for a drill, the backup's summary for a backup.
    /// Loaded only by [`History::run`].
    pub detail: Option<serde_json::Value>,
}

/// The baseline `run` provides for `scenario`.
fn baseline_of(scenario: String, run: RunRecord, set_at: DateTime<Utc>) -> Baseline {
    Baseline {
        scenario,
        run_id: run.id,
        run_started_at: run.started_at,
        set_at,
        p50_ms: run.p50_ms,
        p90_ms: run.p90_ms,
        p99_ms: run.p99_ms,
        counts: run.counts,
    }
}

/// Which runs `history` lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub scenario: Option<String>,
    pub kind: Option<RunKind>,
    pub since: Option<DateTime<Utc>>,
}

pub struct History {
    conn: Connection,
    path: PathBuf,
}

/// Maps a SQLite error to one naming the database file.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + Copy + '_ {
    move |source| HistoryError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Timestamps are stored as fixed-width RFC 3339 text, so text order is time order.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

const RUN_COLUMNS: &str = "id, kind, scenario, repo, target, started_at, finished_at, passed, \
     exit_code, duration_ms, rto_ms, rpo_ms, p50_ms, p90_ms, p99_ms, backup_id, logical_bytes, \
     stored_bytes, vecdrill_version, host, report_dir";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let kind: String = row.get(1)?;
    Ok(RunRecord {
        id: row.get(0)?,
        kind: if kind == "backup" {
            RunKind::Backup
        } else {
            RunKind::Drill
        },
        scenario: row.get(2)?,
        repo: row.get(3)?,
        target: row.get(4)?,
        started_at: parse_timestamp(&row.get::<_, String>(5)?),
        finished_at: parse_timestamp(&row.get::<_, String>(6)?),
        passed: row.get(7)?,
        exit_code: row.get(8)?,
        duration_ms: row.get(9)?,
        rto_ms: row.get(10)?,
        rpo_ms: row.get(11)?,
        p50_ms: row.get(12)?,
        p90_ms: row.get(13)?,
        p99_ms: row.get(14)?,
        backup_id: row.get(15)?,
        logical_bytes: row.get(16)?,
        stored_bytes: row.get(17)?,
        vecdrill_version: row.get(18)?,
        host: row.get(19)?,
        report_dir: row.get(20)?,
        objectives: Vec::new(),
        counts: BTreeMap::new(),
        detail: None,
    })
}

impl History {
    /// Open (creating it and its directory if needed) and bring the schema up to date.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        if !path.exists() {
            // Said once, so nobody has to guess where their history went.
            eprintln!("history: creating {}", path.display());
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| HistoryError::Directory {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let sqlite = sqlite_error(path);
        let conn = Connection::open(path).map_err(sqlite)?;
        // Concurrent writers (a cron backup during a drill) wait for each other.
        conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(sqlite)?;
        let mut history = Self {
            conn,
            path: path.to_path_buf(),
        };
        history.migrate()?;
        Ok(history)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), HistoryError> {
        let known = schema::MIGRATIONS.len() as u32;
        let sqlite = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite)?;
        if found > known {
            return Err(HistoryError::Newer {
                path: self.path.display().to_string(),
                found,
                known,
            });
        }
        for migration in &schema::MIGRATIONS[found as usize..] {
            tx.execute_batch(migration).map_err(sqlite)?;
        }
        tx.pragma_update(None, "user_version", known)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// Record one run, all of it or nothing.
    pub fn record(&mut self, run: &RunRecord) -> Result<(), HistoryError> {
        let sqlite = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(sqlite)?;
        let detail = run
            .detail
            .as_ref()
            .map(serde_json::Value::to_string)
            .unwrap_or_else(|| "{}".into());
        tx.execute(
            &format!("INSERT OR REPLACE INTO runs ({RUN_COLUMNS}, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"),
            params![
                run.id,
                run.kind.as_str(),
                run.scenario,
                run.repo,
                run.target,
                timestamp(run.started_at),
                timestamp(run.finished_at),
                run.passed,
                run.exit_code,
                run.duration_ms,
                run.rto_ms,
                run.rpo_ms,
                run.p50_ms,
                run.p90_ms,
                run.p99_ms,
                run.backup_id,
                run.logical_bytes,
                run.stored_bytes,
                run.vecdrill_version,
                run.host,
                run.report_dir,
                detail,
            ],
        )
        .map_err(sqlite)?;
        for (position, o) in run.objectives.iter().enumerate() {
            tx.execute(
                "INSERT INTO objectives (run_id, position, name, target, target_value, measured_value, baseline_value, unit, passed, skipped, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![run.id, position, o.name, o.target, o.target_value, o.measured_value, o.baseline_value, o.unit, o.passed, o.skipped, o.detail],
            )
            .map_err(sqlite)?;
        }
        for (collection, count) in &run.counts {
            tx.execute(
                "INSERT INTO counts (run_id, collection, count) VALUES (?1, ?2, ?3)",
                params![run.id, collection, count],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }

    /// Runs matching `filter`, oldest first, with their objectives and counts.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, HistoryError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR scenario = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR started_at >= ?3)
                 ORDER BY started_at, id"
            ))
            .map_err(sqlite_error(&self.path))?;
        let runs = statement
            .query_map(
                params![
                    filter.scenario,
                    filter.kind.map(RunKind::as_str),
                    filter.since.map(timestamp)
                ],
                run_from_row,
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sqlite_error(&self.path))?;
        runs.into_iter()
            .map(|mut run| {
                self.load_parts(&mut run)?;
                Ok(run)
            })
            .collect()
    }

    fn load_parts(&self, run: &mut RunRecord) -> Result<(), HistoryError> {
        let mut objectives = self
            .conn
            .prepare_cached(
                "SELECT name, target, target_value, measured_value, baseline_value, unit, passed, skipped, detail
                 FROM objectives WHERE run_id = ?1 ORDER BY position",
            )
            .map_err(sqlite_error(&self.path))?;
        run.objectives = objectives
            .query_map([&run.id], |r| {
                Ok(ObjectiveRow {
                    name: r.get(0)?,
                    target: r.get(1)?,
                    target_value: r.get(2)?,
                    measured_value: r.get(3)?,
                    baseline_value: r.get(4)?,
                    unit: r.get(5)?,
                    passed: r.get(6)?,
                    skipped: r.get(7)?,
                    detail: r.get(8)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sqlite_error(&self.path))?;
        let mut counts = self
            .conn
            .prepare_cached("SELECT collection, count FROM counts WHERE run_id = ?1")
            .map_err(sqlite_error(&self.path))?;
        run.counts = counts
            .query_map([&run.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(sqlite_error(&self.path))?;
        Ok(())
    }

    /// One run, whole: by id, by a prefix of exactly one id, or `latest`.
    pub fn run(&self, wanted: &str) -> Result<RunRecord, HistoryError> {
        let ids: Vec<String> = if wanted == "latest" {
            self.conn
                .prepare("SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        } else {
            self.conn
                .prepare("SELECT id FROM runs WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 ORDER BY id")
                .and_then(|mut s| s.query_map([wanted], |r| r.get(0))?.collect())
        }
        .map_err(sqlite_error(&self.path))?;
        let id = match ids.as_slice() {
            [] => return Err(HistoryError::NoSuchRun(wanted.to_string())),
            [one] => one.clone(),
            many if many.iter().any(|id| id == wanted) => wanted.to_string(),
            many => return Err(HistoryError::Ambiguous(wanted.to_string(), many.join(", "))),
        };
        let (mut run, detail) = self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS}, detail FROM runs WHERE id = ?1"),
                [&id],
                |row| Ok((run_from_row(row)?, row.get::<_, String>(21)?)),
            )
            .map_err(sqlite_error(&self.path))?;
        run.detail = serde_json::from_str(&detail).ok();
        self.load_parts(&mut run)?;
        Ok(run)
    }

    /// When the newest passed run of the same scenario (drills) or repository (backups) as
    /// `run` finished.
    pub fn last_success(&self, run: &RunRecord) -> Result<Option<DateTime<Utc>>, HistoryError> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT max(finished_at) FROM runs WHERE passed AND kind = ?1
                   AND scenario IS ?2 AND repo IS ?3",
                params![run.kind.as_str(), run.scenario, run.repo],
                |r| r.get(0),
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(found.map(|t| parse_timestamp(&t)))
    }

    /// Make drill run `wanted` its scenario's baseline.
    pub fn set_baseline(&mut self, wanted: &str) -> Result<Baseline, HistoryError> {
        let run = self.run(wanted)?;
        let not = |why: &str| HistoryError::NotABaseline {
            run: run.id.clone(),
            why: why.to_string(),
        };
        let scenario = match (&run.kind, &run.scenario) {
            (RunKind::Drill, Some(scenario)) => scenario.clone(),
            _ => return Err(not("it is a backup, not a drill")),
        };
        if run.p90_ms.is_none() && run.counts.is_empty() {
            return Err(not(
                "it measured no search latency and counted no collections",
            ));
        }
        let set_at = Utc::now();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO baselines (scenario, run_id, set_at) VALUES (?1, ?2, ?3)",
                params![scenario, run.id, timestamp(set_at)],
            )
            .map_err(sqlite_error(&self.path))?;
        Ok(baseline_of(scenario, run, Utc::now()))
    }

    /// The scenario's baseline, if one was set.
    pub fn baseline(&self, scenario: &str) -> Result<Option<Baseline>, HistoryError> {
        let found: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT run_id, set_at FROM baselines WHERE scenario = ?1",
                [scenario],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sqlite_error(&self.path))?;
        let Some((run_id, set_at)) = found else {
            return Ok(None);
        };
        let run = self.run(&run_id)?;
        Ok(Some(baseline_of(
            scenario.to_string(),
            run,
            parse_timestamp(&set_at),
        )))
    }
}
