//! `prove`: evidence that a backup restores. The backup is restored into a sandbox (never the
//! live directory), served by a real server of its kind on a free loopback port, checked
//! against what its manifest records and timed. It runs as a drill that this module writes,
//! so the engine, the reports and the history are the drills' own.
//!
//! A Chroma backup's drill: `begin` (the clock starts: a real restore's RTO starts before it
//! downloads anything), `restore` into the sandbox, `sample` 50 records of each collection read from it
//! offline (and the records the backup's probe queries are), `start` the server, `healthy`
//! (the clock stops), one `count` per collection, equal to the manifest's, `records`: the
//! sample fetched by id from the server, equal exactly, and `neighbours`: the probe queries
//! the backup recorded with their exact neighbours, judged by recall. A FAISS + Redis
//! backup's: see [`faiss_redis_drill`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::outcome::DrillReport;
use super::timeline::StepStatus;
use crate::duration::HumanDuration;
use crate::platform::process::ProcessSpec;
use crate::platform::ServiceSpec;
use crate::repo::format::{kinds, Manifest, Proof, FORMAT_VERSION};
use crate::scenario::{Mark, Objectives, Pos, Scenario, StepSpec};
use crate::steps::ProveSettings;
use crate::targets::chroma::client::{DEFAULT_DATABASE, DEFAULT_TENANT};
use crate::targets::chroma::layout::ExactProbe;
use crate::targets::chroma::protect::described;
use crate::targets::chroma::release::release_of_command;
use crate::targets::chroma::schema::Generation;
use crate::targets::chroma::spec::ChromaSpec;
use crate::targets::faiss_redis;
use crate::targets::format_of;
use crate::targets::spec::{TargetKind, TargetSpec};

/// The name a proof's drill runs under (its history series and report directories).
pub const SCENARIO_NAME: &str = "prove";

/// What a proof of one backup needs.
pub struct ProveRequest<'a> {
    pub repo: &'a str,
    pub manifest: &'a Manifest,
    /// A fresh directory, removed by the caller afterwards: the data goes to `DIR/data`.
    pub sandbox: &'a Path,
    /// A free loopback port for the server.
    pub port: u16,
    /// The server command, with `{dir}` and `{port}` where the data directory and the port go
    /// (none: the default of the backup's kind).
    pub server_command: Option<&'a str>,
    /// The RTO the proof must meet.
    pub rto: Option<HumanDuration>,
    /// Each collection's least mean recall of the backup's probe queries.
    pub min_recall: f64,
    /// See [`ProveSettings::at`].
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("proving a {kind} backup is not supported yet")]
    Unsupported { kind: String },
    #[error("backup {backup} records no collection: a server starting on it proves nothing")]
    NothingToCheck { backup: String },
    #[error("the server command runs Chroma {server}, older than backup {backup}'s database (written by Chroma {written}), which it cannot open")]
    ServerTooOld {
        server: String,
        backup: String,
        written: String,
    },
    #[error("the server command {command:?} has no {placeholder} placeholder")]
    Placeholder {
        command: String,
        placeholder: &'static str,
    },
}

impl crate::exit::Classify for ProveError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::NothingToCheck { .. } => crate::exit::FAILED,
            Self::Unsupported { .. } | Self::Placeholder { .. } | Self::ServerTooOld { .. } => {
                crate::exit::BAD_INPUT
            }
            Self::Io(..) => crate::exit::RUNTIME,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Unsupported { .. } => Some(
                "`vecdrill verify --repo URL ID --read-data` checks it without a server".into(),
            ),
            Self::Io(..) => None,
            Self::NothingToCheck { .. } => {
                Some("`vecdrill info --repo URL ID` shows what the backup holds".into())
            }
            Self::ServerTooOld { written, .. } => Some(format!(
                "prove it with Chroma {written}: --server-cmd 'PATH/TO/chroma run --path {{dir}} --port {{port}}'"
            )),
            Self::Placeholder { .. } => Some(
                "write the command with {dir} and {port}, e.g. --server-cmd 'chroma run --path {dir} --port {port}'"
                    .into(),
            ),
        }
    }
}

/// A sandbox's name: this prefix, the proving process's pid, a dash, random characters.
pub const SANDBOX_PREFIX: &str = "vecdrill-prove-";
/// A sandbox kept on request (`--keep`) is renamed to start with this instead, so that no
/// later proof takes it for one a killed proof left.
pub const KEPT_PREFIX: &str = "vecdrill-prove-kept-";

/// A proof ready to run: its sandbox (removed when dropped, unless kept) and its drill.
pub struct Prepared {
    pub sandbox: tempfile::TempDir,
    pub scenario: Scenario,
}

/// Make the sandbox and the drill that proves `manifest`'s backup of `repo` as `settings` say
/// (the default Chroma's server command when none), on a free loopback port.
pub fn prepare(
    repo: &str,
    manifest: &Manifest,
    settings: &ProveSettings,
) -> Result<Prepared, ProveError> {
    // A proof killed outright left its sandbox (a whole restored copy): removed here.
    let parent = std::env::temp_dir();
    let prefix = format!("{SANDBOX_PREFIX}{}-", std::process::id());
    for left in crate::atomic_file::left_by_ended_processes(&parent, SANDBOX_PREFIX) {
        // Its server too, still serving the sandbox: nothing stopped it.
        let killed = crate::platform::process::kill_processes_naming(&left);
        tracing::info!(
            "removing the sandbox a killed proof left: {} (its server processes stopped: {killed:?})",
            left.display()
        );
        let _ = std::fs::remove_dir_all(&left);
    }
    let sandbox = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&parent)
        .map_err(|e| ProveError::Io("cannot create a sandbox directory", e))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| ProveError::Io("cannot find a free loopback port", e))?
        .port();
    let scenario = scenario(&ProveRequest {
        repo,
        manifest,
        sandbox: sandbox.path(),
        port,
        server_command: settings.server_command.as_deref(),
        rto: settings.rto,
        min_recall: settings.min_recall,
        at: settings.at,
    })?;
    Ok(Prepared { sandbox, scenario })
}

/// Keep the proof `report` gives beside `backup` in the repository (passed or not; an
/// interrupted proof proves nothing either way and is not kept). The proof.
pub async fn keep_verdict(
    repo: &crate::repo::Repository,
    report: &DrillReport,
    backup: &str,
) -> Result<Proof, crate::repo::RepoError> {
    let proof = proof(report, backup);
    if !report.interrupted {
        repo.put_proof(&proof).await?;
    }
    Ok(proof)
}

/// A proof run from a drill's `prove` step: a drill of its own inside the step, its run
/// directory under the outer run's, its server stopped when the outer run is interrupted.
pub(crate) struct NestedProver<'a> {
    pub run_dir: &'a Path,
    pub interrupt: super::Interrupt,
    pub passwords: &'a crate::repo::password::PasswordSources,
}

#[async_trait::async_trait]
impl crate::steps::Prover for NestedProver<'_> {
    async fn prove(
        &self,
        repo: &crate::repo::Repository,
        repo_url: &str,
        manifest: &Manifest,
        settings: &ProveSettings,
    ) -> Result<(Proof, String), crate::steps::StepError> {
        let prepared = prepare(repo_url, manifest, settings)
            .map_err(|e| crate::steps::StepError::Setup(e.to_string()))?;
        let options = super::RunOptions {
            report_dir: self.run_dir.to_path_buf(),
            baseline: None,
            passwords: self.passwords.clone(),
        };
        // A drill inside a step of a drill: boxed, as a future that contains itself must be.
        let report = Box::pin(super::run(
            &prepared.scenario,
            &options,
            &super::SilentObserver,
            self.interrupt.clone(),
        ))
        .await
        .map_err(|e| crate::steps::StepError::Setup(format!("the proof could not run: {e}")))?;
        let proof = keep_verdict(repo, &report, &manifest.id).await?;
        Ok((proof, report.run_dir.clone()))
    }
}

/// The Chroma server command when none is given: the `chroma` of `.venv` (where `.ci/setup`
/// installs it) when there is one here, else the one on PATH.
pub fn default_chroma_command() -> String {
    let program = if Path::new(".venv/bin/chroma").is_file() {
        ".venv/bin/chroma"
    } else {
        "chroma"
    };
    format!("{program} run --path {{dir}} --port {{port}}")
}

/// The Redis server command a FAISS + Redis proof loads the snapshot into when none is given:
/// `redis-server` on PATH, with no persistence of its own.
pub const DEFAULT_REDIS_COMMAND: &str =
    "redis-server --port {port} --dir {dir} --dbfilename dump.rdb --save '' --appendonly no";

/// The drill that proves `request.manifest`'s backup.
pub fn scenario(request: &ProveRequest<'_>) -> Result<Scenario, ProveError> {
    let kind = format_of(request.manifest).source_kind();
    let (target, steps) = if kind == TargetKind::Chroma.source_kind() {
        chroma_drill(request)?
    } else if kind == TargetKind::FaissRedis.source_kind() {
        faiss_redis_drill(request)?
    } else {
        return Err(ProveError::Unsupported {
            kind: kind.to_string(),
        });
    };
    let id = &request.manifest.id;
    Ok(Scenario {
        name: SCENARIO_NAME.into(),
        description: Some(match request.at {
            Some(at) => format!(
                "{} as it was at {}: backup {id} and the log shipped after it, restored into a sandbox and served by a real server",
                request.manifest.source.path,
                crate::duration::format_utc(at)
            ),
            None => format!(
                "backup {id} of {} restored into a sandbox and served by a real server",
                request.manifest.source.path
            ),
        }),
        path: PathBuf::from(format!("prove {id}")),
        vars: Default::default(),
        target,
        repo: Some(request.repo.to_string()),
        objectives: Objectives {
            rto: request.rto,
            ..Objectives::default()
        },
        steps,
        rollback: Vec::new(),
        notify: None,
    })
}

/// A server process for a proof: `command`, killed outright when stopped (its data is thrown
/// away with the sandbox: a graceful stop would only add to every proof's time).
fn service(command: String) -> ServiceSpec {
    ServiceSpec::Process(ProcessSpec {
        command,
        cwd: None,
        env: Default::default(),
        stop_timeout: HumanDuration(std::time::Duration::ZERO),
    })
}

/// The drill's first and second steps, whatever the kind: the clock starts (a real restore's
/// RTO starts before it downloads anything), and the backup is restored into the sandbox.
fn begin_and_restore(id: &str, at: Option<chrono::DateTime<chrono::Utc>>) -> [StepSpec; 2] {
    let mut restore = vec![("backup", id.into()), ("keep_safety_copy", false.into())];
    if let Some(at) = at {
        // The restore step takes the moment whose second ends at `at`.
        let end = at + chrono::Duration::seconds(1);
        restore.push(("at", end.to_rfc3339().into()));
    }
    [
        step(
            "begin",
            "sleep",
            yaml(&[("duration", "0s".into())]),
            Some(Mark::Disaster),
        ),
        step("restore", "restore", yaml(&restore), None),
    ]
}

/// A Chroma backup's proof: see the module's documentation.
fn chroma_drill(request: &ProveRequest<'_>) -> Result<(TargetSpec, Vec<StepSpec>), ProveError> {
    let format = format_of(request.manifest);
    let data_dir = request.sandbox.join("data");
    let default = default_chroma_command();
    let template = request.server_command.unwrap_or(&default);
    refuse_older_server(template, request.manifest)?;
    let command = server_command(template, &data_dir, request.port)?;
    let target = TargetSpec::Chroma(ChromaSpec {
        kind: TargetKind::Chroma,
        url: format!("http://127.0.0.1:{}", request.port),
        data_dir: Some(data_dir),
        tenant: DEFAULT_TENANT.into(),
        database: DEFAULT_DATABASE.into(),
        service: Some(service(command)),
    });
    let id = &request.manifest.id;
    let counts = format.recorded_counts(request.manifest);
    if counts.is_empty() {
        return Err(ProveError::NothingToCheck { backup: id.clone() });
    }
    // Backups made before vecdrill recorded probes have none: their proofs say so.
    let probes: BTreeMap<String, Vec<ExactProbe>> = described(request.manifest)
        .map(|layout| layout.collections)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.probes.is_empty())
        .map(|c| (c.name, c.probes))
        .collect();
    // The probe queries' vectors are read from the restored files, not asked of the server.
    let probe_records: BTreeMap<&String, Vec<&String>> = probes
        .iter()
        .map(|(name, probes)| (name, probes.iter().map(|p| &p.record).collect()))
        .collect();
    let mut steps = begin_and_restore(id, request.at).to_vec();
    steps.extend([
        // Read before the server starts on the directory (and may compact it).
        step(
            "sample",
            "sample_records",
            yaml(&[(
                "also",
                serde_yaml::to_value(&probe_records).expect("ids encode"),
            )]),
            None,
        ),
        step("start", "start", yaml(&[]), None),
        // Polled often: the time to healthy is what the proof measures.
        step(
            "healthy",
            "wait_healthy",
            yaml(&[("interval", "50ms".into())]),
            Some(Mark::Recovered),
        ),
    ]);
    if request.at.is_some() {
        // A moment's counts are what the restored files hold once their log is replayed
        // (read before the server starts); the backup's probes are of the base, not of the
        // moment, so search is not judged.
        steps.push(step(
            "counts",
            "count",
            yaml(&[("equals_sample", "records".into())]),
            None,
        ));
        steps.push(step("records", "compare_records", yaml(&[]), None));
        return Ok((target, steps));
    }
    for (collection, count) in counts {
        steps.push(step(
            &format!("count {collection}"),
            "count",
            // Each names its collection: an empty server fails as "does not exist".
            yaml(&[
                ("collection", collection.as_str().into()),
                ("exact", count.into()),
                ("allow_empty", true.into()),
            ]),
            None,
        ));
    }
    steps.push(step("records", "compare_records", yaml(&[]), None));
    if !probes.is_empty() {
        steps.push(step(
            "neighbours",
            "compare_neighbours",
            yaml(&[
                (
                    "probes",
                    serde_yaml::to_value(&probes).expect("probes encode"),
                ),
                ("min_recall", request.min_recall.into()),
            ]),
            None,
        ));
    }
    Ok((target, steps))
}

/// A Chroma older than the backup's database cannot open it (it refuses a schema it does not
/// know): refused before anything is restored, naming both. Checked when the command's Chroma
/// says its release (see [`release_of_command`]); otherwise the server's start decides.
fn refuse_older_server(template: &str, manifest: &Manifest) -> Result<(), ProveError> {
    let Some(release) = release_of_command(template) else {
        return Ok(());
    };
    let Some(written) = described(manifest).and_then(|l| Generation::of(&l.schema).ok()) else {
        return Ok(());
    };
    match Generation::of_release(&release) {
        Some(server) if server >= written => Ok(()),
        _ => Err(ProveError::ServerTooOld {
            server: release,
            backup: manifest.id.clone(),
            written: written.versions().to_string(),
        }),
    }
}

/// A FAISS + Redis backup's proof: a throwaway Redis (the server command, `redis-server` by
/// default) started empty on the sandbox's `redis/` before the clock starts; the backup
/// restored into `data/`; its snapshot loaded into that Redis, whose key count and per-prefix
/// counts must be the backup's (`redis`, the clock stops); every index file parsed, with the
/// recorded type, dimension and `ntotal` (`indexes`).
fn faiss_redis_drill(
    request: &ProveRequest<'_>,
) -> Result<(TargetSpec, Vec<StepSpec>), ProveError> {
    let id = &request.manifest.id;
    let described = faiss_redis::described(request.manifest)
        .filter(|d| !d.faiss.is_empty() || d.redis.is_some())
        .ok_or_else(|| ProveError::NothingToCheck { backup: id.clone() })?;
    let (data_dir, redis_dir) = (request.sandbox.join("data"), request.sandbox.join("redis"));
    std::fs::create_dir_all(&redis_dir)
        .map_err(|e| ProveError::Io("cannot create the sandbox's Redis directory", e))?;
    let template = request.server_command.unwrap_or(DEFAULT_REDIS_COMMAND);
    let command = server_command(template, &redis_dir, request.port)?;
    let prefixes = described
        .redis
        .as_ref()
        .map(|r| r.prefixes.keys().cloned().collect())
        .unwrap_or_default();
    let target = TargetSpec::FaissRedis(faiss_redis::FaissRedisSpec {
        kind: TargetKind::FaissRedis,
        url: format!("redis://127.0.0.1:{}", request.port),
        faiss: described
            .faiss
            .iter()
            .map(|i| data_dir.join(faiss_redis::index_file(&i.name)))
            .collect(),
        data_dir: Some(data_dir),
        service: Some(service(command)),
        redis_prefixes: prefixes,
        redis_rdb: Some(redis_dir.join("dump.rdb")),
    });
    let mut steps = Vec::new();
    let redis = described.redis.is_some();
    if redis {
        // restore_redis stops the Redis it replaces the snapshot of: one must run first.
        steps.push(step("redis_empty", "start", yaml(&[]), None));
        steps.push(step("redis_up", "wait_healthy", yaml(&[]), None));
    }
    steps.extend(begin_and_restore(id, None));
    let indexes_mark = (!redis).then_some(Mark::Recovered);
    if redis {
        steps.push(step(
            "redis",
            "restore_redis",
            yaml(&[]),
            Some(Mark::Recovered),
        ));
    }
    if !described.faiss.is_empty() {
        steps.push(step("indexes", "check_faiss", yaml(&[]), indexes_mark));
    }
    Ok((target, steps))
}

/// The evidence a proof's run gives of backup `backup`, to keep beside it in the repository.
pub fn proof(report: &DrillReport, backup: &str) -> Proof {
    let took = |id: &str| {
        report
            .steps
            .iter()
            .find(|s| s.id == id && s.status == StepStatus::Passed)
            .map(|s| s.duration_ms)
    };
    // Chroma: the server started and answering; Redis: the snapshot loaded and answering.
    let start_to_healthy = took("start")
        .zip(took("healthy"))
        .map(|(a, b)| a + b)
        .or_else(|| took("redis"));
    Proof {
        kind: kinds::PROOF.into(),
        version: FORMAT_VERSION,
        checksum: String::new(),
        backup: backup.to_string(),
        proven_at: report.finished_at,
        passed: report.passed,
        restore_ms: took("restore"),
        start_to_healthy_ms: start_to_healthy,
        rto_ms: report.rto_ms,
        counts: report.counts.clone(),
        recall: report
            .steps
            .iter()
            .find(|s| s.id == "neighbours")
            .and_then(|s| s.outputs.get("mean_recall"))
            .and_then(serde_json::Value::as_f64),
        failure: report
            .failure
            .as_ref()
            .map(|f| format!("step {}: {}", f.step, f.reason))
            .or_else(|| {
                let missed: Vec<&str> = report
                    .objectives
                    .iter()
                    .filter(|o| !o.passed && !o.skipped)
                    .map(|o| o.name.as_str())
                    .collect();
                (!missed.is_empty()).then(|| format!("objectives missed: {}", missed.join(", ")))
            })
            .or_else(|| report.interrupted.then(|| "interrupted".to_string())),
        hostname: report.host.clone(),
        tool_version: report.vecdrill_version.clone(),
        run_id: report.run_id.clone(),
    }
}

/// `template` with the data directory and port put in (quoted as the command's words are
/// split).
fn server_command(template: &str, dir: &Path, port: u16) -> Result<String, ProveError> {
    for placeholder in ["{dir}", "{port}"] {
        if !template.contains(placeholder) {
            return Err(ProveError::Placeholder {
                command: template.to_string(),
                placeholder,
            });
        }
    }
    let dir = dir.display().to_string();
    let quoted = shlex::try_quote(&dir).map_or(dir.clone(), |q| q.into_owned());
    Ok(template
        .replace("{dir}", &quoted)
        .replace("{port}", &port.to_string()))
}

fn yaml(fields: &[(&str, serde_yaml::Value)]) -> serde_yaml::Value {
    serde_yaml::Value::Mapping(
        fields
            .iter()
            .map(|(k, v)| (serde_yaml::Value::from(*k), v.clone()))
            .collect(),
    )
}

fn step(id: &str, kind: &str, with: serde_yaml::Value, mark: Option<Mark>) -> StepSpec {
    StepSpec {
        id: id.to_string(),
        kind: crate::steps::lookup(kind).expect("a registered step kind"),
        with,
        timeout: None,
        retries: 0,
        continue_on_error: false,
        mark,
        pos: Pos::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_command_gets_the_directory_quoted_and_the_port() {
        let command = server_command(
            "chroma run --path {dir} --port {port}",
            Path::new("/tmp/a b"),
            8123,
        )
        .unwrap();
        assert_eq!(command, "chroma run --path '/tmp/a b' --port 8123");
        assert!(matches!(
            server_command("chroma run --port {port}", Path::new("/x"), 1),
            Err(ProveError::Placeholder {
                placeholder: "{dir}",
                ..
            })
        ));
    }
}
