//! `restore_redis`: put a restored RDB snapshot in place of Redis's own and prove the keys
//! came back: stop Redis, swap the file in (the old one kept aside), start it, wait until it
//! has loaded, and compare the key counts with the restored backup's.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::HumanDuration;
use crate::outputs;
use crate::targets::faiss_redis::{self, RDB_FILE};
use crate::targets::redis::RedisTarget;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRedis {
    /// The snapshot to load; default `<target.data_dir>/redis/dump.rdb`, where `restore`
    /// writes it.
    #[serde(default)]
    from: Option<PathBuf>,
    /// Where Redis loads its snapshot from; default `target.redis_rdb`, else asked from the
    /// running Redis (`CONFIG GET dir` + `dbfilename`) before it is stopped.
    #[serde(default)]
    rdb: Option<PathBuf>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

pub const KIND: StepKind = StepKind {
    name: "restore_redis",
    summary:
        "stop Redis, load the restored RDB (`from`), start it, compare key counts with the backup",
    outputs: &[
        "keys",
        "expected_keys",
        "prefixes",
        "backup",
        "previous_rdb",
    ],
    needs_service: true,
    targets: &[TargetKind::FaissRedis],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: true,
    measures: &[],
    build: super::build::<RestoreRedis>,
};

#[async_trait]
impl Step for RestoreRedis {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let redis = RedisTarget::new(ctx.target.url())?;
        let from = match &self.from {
            Some(path) => path.clone(),
            None => ctx.data_dir(None)?.join(RDB_FILE),
        };
        let target_rdb = ctx
            .target
            .as_kind::<faiss_redis::FaissRedisSpec>()
            .and_then(|s| s.redis_rdb.as_ref());
        let rdb = match self.rdb.as_ref().or(target_rdb) {
            Some(path) => path.clone(),
            None => redis.rdb_path().await.map_err(|e| {
                StepError::Setup(format!(
                    "cannot ask Redis where its snapshot lives ({e}); give `rdb:` or `target.redis_rdb`"
                ))
            })?,
        };
        faiss_redis::check_rdb(&from).map_err(StepError::Check)?;
        let expected = self.expected(ctx).await?;
        ctx.service()?.stop().await?;
        let previous = put_in_place(&from, &rdb)?;
        ctx.service()?.start().await?;
        redis.wait_ready(self.timeout.as_duration()).await?;
        let keys = redis.dbsize().await?;
        let (backup, expected_keys, expected_prefixes) = expected;
        let prefixes = redis
            .count_prefixes(&expected_prefixes.keys().cloned().collect::<Vec<_>>())
            .await?;
        let outputs = outputs! {
            "keys" => keys,
            "expected_keys" => expected_keys,
            "prefixes" => &prefixes,
            "backup" => &backup,
            "previous_rdb" => previous.map(|p| p.display().to_string()),
        };
        if keys != expected_keys || prefixes != expected_prefixes {
            return Err(StepError::Mismatch {
                message: format!(
                    "Redis holds {keys} keys {prefixes:?} after loading backup {backup}; it recorded {expected_keys} {expected_prefixes:?}"
                ),
                outputs,
            });
        }
        Ok(outputs)
    }
}

type Expected = (String, u64, std::collections::BTreeMap<String, u64>);

impl RestoreRedis {
    /// The key counts the restored backup recorded.
    async fn expected(&self, ctx: &StepContext<'_>) -> Result<Expected, StepError> {
        let Some((backup, _)) = ctx.memory.restored.clone() else {
            return Err(StepError::Setup(
                "no backup was restored before this step: add a `restore` step first".into(),
            ));
        };
        let repo = ctx.open_repo(self.repo.as_deref()).await?;
        let manifest = repo.manifest(&backup).await?;
        let redis = faiss_redis::described(&manifest)
            .and_then(|d| d.redis)
            .ok_or_else(|| StepError::Check(format!("backup {backup} holds no Redis snapshot")))?;
        Ok((backup, redis.keys, redis.prefixes))
    }
}

/// Copy `from` over `rdb` atomically (temporary file, then rename); the file it replaces is
/// kept as `<rdb>.before-restore-<time>`.
fn put_in_place(
    from: &std::path::Path,
    rdb: &std::path::Path,
) -> Result<Option<PathBuf>, StepError> {
    let io = |what: String| move |e| StepError::io(what, e);
    // Written beside the RDB under an unpredictable name, created exclusively.
    let temporary = crate::atomic_file::create(rdb)
        .map_err(io(format!("cannot create a file beside {}", rdb.display())))?;
    let (mut file, temporary) = temporary.into_parts();
    let mut snapshot =
        std::fs::File::open(from).map_err(io(format!("cannot read {}", from.display())))?;
    std::io::copy(&mut snapshot, &mut file).map_err(io(format!(
        "cannot copy {} beside {}",
        from.display(),
        rdb.display()
    )))?;
    // The previous snapshot keeps a second name, and the new one replaces it in one rename:
    // the RDB path is never absent.
    let previous = if rdb.exists() {
        let aside = crate::repo::restore::safety_copy_path(rdb, chrono::Utc::now());
        std::fs::hard_link(rdb, &aside).map_err(io(format!(
            "cannot keep {} as {}",
            rdb.display(),
            aside.display()
        )))?;
        Some(aside)
    } else {
        None
    };
    crate::atomic_file::persist(&file, temporary, rdb)
        .map_err(io(format!("cannot put the snapshot at {}", rdb.display())))?;
    Ok(previous)
}
