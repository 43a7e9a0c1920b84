//! Redis as the metadata store beside FAISS indexes: a point-in-time RDB snapshot (`BGSAVE`,
//! waited for and checked), where the server keeps it, and key counts per prefix.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::exit::{self, Classify};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Redis at {url} could not save its snapshot: {reason}")]
    SaveFailed { url: String, reason: String },
    #[error("Redis at {url} answered {command} with an error: {reason}")]
    Command {
        url: String,
        command: String,
        reason: String,
    },
}

impl Classify for RedisError {
    fn exit_code(&self) -> i32 {
        exit::RUNTIME
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Unreachable { .. } => {
                "check that redis-server runs and that --redis names it (redis://HOST:PORT)".into()
            }
            Self::SaveFailed { .. } => {
                "see the Redis log: the disk may be full or the directory (CONFIG GET dir) not writable".into()
            }
            Self::Command { .. } => {
                "CONFIG may be renamed or disabled on this server: pass the RDB file with --redis-rdb".into()
            }
        })
    }
}

/// What a finished `BGSAVE` reports.
#[derive(Debug, Clone)]
pub struct Saved {
    /// `rdb_last_save_time`: seconds since the epoch.
    pub saved_at: i64,
    pub duration: Duration,
}

pub struct RedisTarget {
    client: redis::Client,
    /// The URL without its password, for messages.
    url: String,
}

impl RedisTarget {
    pub fn new(url: &str) -> Result<Self, RedisError> {
        let shown = crate::redaction::redact_url(url);
        let client = redis::Client::open(url).map_err(|e| RedisError::Unreachable {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { client, url: shown })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, RedisError> {
        let connect = self.client.get_multiplexed_async_connection();
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(RedisError::Unreachable {
                url: self.url.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(RedisError::Unreachable {
                url: self.url.clone(),
                reason: "no answer within 5s".into(),
            }),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        let mut connection = self.connection().await?;
        cmd.query_async(&mut connection)
            .await
            .map_err(|e| RedisError::Command {
                url: self.url.clone(),
                command: String::from_utf8_lossy(&cmd.get_packed_command())
                    .split("\r\n")
                    .nth(2)
                    .unwrap_or("?")
                    .to_string(),
                reason: e.to_string(),
            })
    }

    /// One `INFO` section as key/value pairs.
    pub async fn info(&self, section: &str) -> Result<BTreeMap<String, String>, RedisError> {
        let text: String = self.query(redis::cmd("INFO").arg(section)).await?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect())
    }

    pub async fn version(&self) -> Result<String, RedisError> {
        Ok(self
            .info("server")
            .await?
            .remove("redis_version")
            .unwrap_or_default())
    }

    /// Start a `BGSAVE` and wait until it has finished; fail unless it succeeded.
    pub async fn bgsave(&self, timeout: Duration) -> Result<Saved, RedisError> {
        let began = Instant::now();
        let failed = |reason: String| RedisError::SaveFailed {
            url: self.url.clone(),
            reason,
        };
        // A save already running (Redis's own schedule) must finish before ours can start.
        loop {
            match self.query::<String>(&redis::cmd("BGSAVE")).await {
                Ok(_) => break,
                Err(RedisError::Command { reason, .. })
                    if reason.contains("in progress") && began.elapsed() < timeout =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(RedisError::Command { reason, .. }) => return Err(failed(reason)),
                Err(other) => return Err(other),
            }
        }
        // BGSAVE forks before it answers, so from here `rdb_bgsave_in_progress` covers ours.
        loop {
            let persistence = self.info("persistence").await?;
            let field = |k: &str| persistence.get(k).map(String::as_str).unwrap_or("");
            if field("rdb_bgsave_in_progress") == "0" {
                if field("rdb_last_bgsave_status") != "ok" {
                    return Err(failed(format!(
                        "rdb_last_bgsave_status is {:?}",
                        field("rdb_last_bgsave_status")
                    )));
                }
                return Ok(Saved {
                    saved_at: field("rdb_last_save_time").parse().unwrap_or(0),
                    duration: began.elapsed(),
                });
            }
            if began.elapsed() > timeout {
                return Err(failed(format!(
                    "still saving after {}",
                    crate::duration::format_duration(timeout)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the server writes its snapshot: `CONFIG GET dir` + `dbfilename`.
    pub async fn rdb_path(&self) -> Result<PathBuf, RedisError> {
        let dir: Vec<String> = self
            .query(redis::cmd("CONFIG").arg("GET").arg("dir"))
            .await?;
        let name: Vec<String> = self
            .query(redis::cmd("CONFIG").arg("GET").arg("dbfilename"))
            .await?;
        match (dir.get(1), name.get(1)) {
            (Some(dir), Some(name)) => Ok(PathBuf::from(dir).join(name)),
            _ => Err(RedisError::Command {
                url: self.url.clone(),
                command: "CONFIG GET".into(),
                reason: "no dir or dbfilename in the answer".into(),
            }),
        }
    }

    /// Delete every key (the `flush_redis` fault).
    pub async fn flushall(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("FLUSHALL"))
            .await
            .map(drop)
    }

    pub async fn dbsize(&self) -> Result<u64, RedisError> {
        self.query(&redis::cmd("DBSIZE")).await
    }

    /// Keys under each prefix, counted with `SCAN` (never `KEYS`, which blocks the server).
    pub async fn count_prefixes(
        &self,
        prefixes: &[String],
    ) -> Result<BTreeMap<String, u64>, RedisError> {
        let mut counts = BTreeMap::new();
        for prefix in prefixes {
            let pattern = format!("{}*", escape_glob(prefix));
            let mut cursor: u64 = 0;
            let mut count = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .query(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(1000),
                    )
                    .await?;
                count += keys.len() as u64;
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            counts.insert(prefix.clone(), count);
        }
        Ok(counts)
    }

    /// Wait until the server answers and has finished loading its dataset.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RedisError> {
        let began = Instant::now();
        loop {
            match self.info("persistence").await {
                Ok(info) if info.get("loading").map(String::as_str) == Some("0") => return Ok(()),
                Ok(_) => {}
                Err(err) if began.elapsed() > timeout => return Err(err),
                Err(_) => {}
            }
            if began.elapsed() > timeout {
                return Err(RedisError::Unreachable {
                    url: self.url.clone(),
                    reason: "still loading its dataset".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A prefix matched literally by SCAN's glob.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An RDB file starts with `REDIS` and a four-digit format version.
pub fn rdb_version(header: &[u8]) -> Option<u32> {
    let digits = header.strip_prefix(b"REDIS")?.get(..4)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
