//! `vecdrill platform status|restart|redeploy|stop|start`: the same Railway operations a drill
//! runs, for incident response, configured by flags or by a scenario's `target.service`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use vecdrill::duration::HumanDuration;
use vecdrill::exit;
use vecdrill::platform::docker::{DockerService, DockerSpec};
use vecdrill::platform::railway::client::Deployment;
use vecdrill::platform::railway::{RailwayService, RailwaySpec};
use vecdrill::platform::ServiceSpec;
use vecdrill::scenario::{self, LoadOptions};

use super::{parse_key_value, print_json, Failure};

#[derive(Args)]
pub struct PlatformArgs {
    #[command(subcommand)]
    pub action: PlatformAction,
    #[command(flatten)]
    pub target: PlatformTarget,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
pub enum PlatformAction {
    /// The latest deployment: id, status, instances.
    Status,
    /// Restart the latest deployment and wait until it is back (and shows it restarted).
    Restart,
    /// Deploy the latest deployment again and wait for SUCCESS.
    Redeploy,
    /// Stop the latest deployment and wait until it has stopped.
    Stop,
    /// Bring a stopped service back (a redeploy) and wait for SUCCESS.
    Start,
    /// Volume backups of the service: create, list, restore, delete.
    #[command(subcommand)]
    Backup(BackupAction),
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
pub enum BackupAction {
    /// Create a backup of the service's volume and wait until it is listed.
    Create {
        /// Backup name (default vecdrill-<UTC time>).
        #[arg(long)]
        name: Option<String>,
    },
    /// The volume's backups, newest first.
    List,
    /// Restore a backup (id, name or `latest`): copy, commit the staged swap, wait for the redeploy.
    Restore {
        /// The backup: id, name or `latest`.
        backup: String,
        /// Commit even when the environment already has other staged changes (they deploy too).
        #[arg(long)]
        allow_staged: bool,
    },
    /// Delete a backup (id, name or `latest`) and wait.
    Delete {
        /// The backup: id, name or `latest`.
        backup: String,
    },
}

#[derive(Args)]
pub struct PlatformTarget {
    /// Take the service from this scenario's `target.service` (kind: railway).
    #[arg(long, global = true)]
    pub scenario: Option<PathBuf>,
    /// Scenario variables, as for `run`.
    #[arg(long = "var", value_parser = parse_key_value, global = true)]
    pub vars: Vec<(String, String)>,
    /// Project id (not needed with a project token in RAILWAY_TOKEN).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// Environment id or name (default production).
    #[arg(long, global = true)]
    pub environment: Option<String>,
    /// Service id or name.
    #[arg(long, global = true)]
    pub service: Option<String>,
    /// A container's name or id instead: the Docker Engine API (DOCKER_HOST, default the
    /// local socket) starts, stops, restarts and inspects it.
    #[arg(
        long,
        global = true,
        value_name = "CONTAINER",
        conflicts_with = "service"
    )]
    pub docker: Option<String>,
    /// GraphQL endpoint (default RAILWAY_API_URL, else Railway's).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// Overall limit of the wait.
    #[arg(long, default_value = "10m", global = true)]
    pub timeout: HumanDuration,
    /// Do it without asking (restart, redeploy and stop ask on a terminal).
    #[arg(long, global = true)]
    pub yes: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The container, when `--docker` names one or the scenario's service is `kind: docker`.
fn docker_spec(target: &PlatformTarget) -> Result<Option<DockerSpec>, Failure> {
    if let Some(container) = &target.docker {
        return Ok(Some(DockerSpec {
            container: Some(container.clone()),
            compose_project: None,
            compose_service: None,
            timeout: target.timeout,
        }));
    }
    let Some(path) = &target.scenario else {
        return Ok(None);
    };
    let options = LoadOptions {
        overrides: &target.vars,
        ..LoadOptions::default()
    };
    Ok(
        match scenario::load_file(path, &options)?.target.service() {
            Some(ServiceSpec::Docker(spec)) => Some(spec.clone()),
            _ => None,
        },
    )
}

/// `platform status|restart|stop|start` of a container, each waited for as a drill waits.
async fn docker(
    action: PlatformAction,
    spec: DockerSpec,
    target: &PlatformTarget,
) -> Result<i32, Failure> {
    use vecdrill::platform::Service;
    let unsupported = |what: &str| {
        Failure {
        message: format!("`platform {what}` is Railway's; a container has no deployments or volume backups"),
        hint: Some("use `platform status|restart|stop|start`; `vecdrill backup` backs up the container's data".into()),
        code: exit::BAD_INPUT,
    }
    };
    match &action {
        PlatformAction::Redeploy => return Err(unsupported("redeploy")),
        PlatformAction::Backup(_) => return Err(unsupported("backup")),
        _ => {}
    }
    let named = spec.named();
    if matches!(action, PlatformAction::Restart | PlatformAction::Stop) && !target.yes {
        confirm(&format!("{} {named}?", verb(&action)))?;
    }
    let log = std::env::temp_dir().join(format!("vecdrill-platform-{}.log", std::process::id()));
    let mut service = DockerService::new(
        spec,
        vecdrill::platform::ServiceEnv {
            log_path: log.clone(),
            listen_addr: None,
        },
    );
    let began = Instant::now();
    let done = match action {
        PlatformAction::Restart => service.restart().await,
        PlatformAction::Stop => service.stop().await,
        PlatformAction::Start => service.start().await,
        _ => Ok(()),
    };
    let _ = std::fs::remove_file(&log);
    done?;
    let status = service.status().await?;
    let seconds = began.elapsed().as_secs_f64();
    if target.json {
        print_json(&serde_json::json!({
            "action": verb(&action).to_lowercase(),
            "container": status,
            "seconds": seconds,
        }));
    } else {
        say_shown!(
            "container {} ({}): {}{}{}, {} restart(s)",
            status.container,
            status.id.get(..12).unwrap_or(&status.id),
            status.status,
            status
                .health
                .as_ref()
                .map(|h| format!(", {h}"))
                .unwrap_or_default(),
            status
                .exit_code
                .filter(|c| *c != 0)
                .map(|c| format!(", exit code {c}"))
                .unwrap_or_default(),
            status.restarts
        );
        say!("{} in {seconds:.1}s", verb(&action));
    }
    Ok(exit::SUCCESS)
}

/// The Railway service from a scenario or from flags (flags override the scenario).
fn spec(target: &PlatformTarget) -> Result<RailwaySpec, Failure> {
    let usage = |message: String| Failure {
        message,
        hint: Some(
            "pass --scenario FILE, or --service NAME (with --project ID for an account token)"
                .into(),
        ),
        code: exit::BAD_INPUT,
    };
    let mut spec = match &target.scenario {
        Some(path) => {
            let options = LoadOptions {
                overrides: &target.vars,
                ..LoadOptions::default()
            };
            let loaded = scenario::load_file(path, &options)?;
            match loaded.target.service().cloned() {
                Some(ServiceSpec::Railway(spec)) => spec,
                _ => {
                    return Err(usage(format!(
                        "{}: target.service is not `kind: railway`",
                        path.display()
                    )))
                }
            }
        }
        None => RailwaySpec {
            project: None,
            environment: None,
            service: target
                .service
                .clone()
                .ok_or_else(|| usage("no service named".into()))?,
            endpoint: None,
            poll_interval: HumanDuration(std::time::Duration::from_secs(5)),
            timeout: target.timeout,
        },
    };
    if let Some(v) = &target.project {
        spec.project = Some(v.clone());
    }
    if let Some(v) = &target.environment {
        spec.environment = Some(v.clone());
    }
    if let Some(v) = &target.service {
        spec.service = v.clone();
    }
    if let Some(v) = &target.endpoint {
        spec.endpoint = Some(v.clone());
    }
    Ok(spec)
}

pub async fn platform(args: PlatformArgs) -> Result<i32, Failure> {
    let target = args.target;
    if let Some(spec) = docker_spec(&target)? {
        return docker(args.action, spec, &target).await;
    }
    let spec = spec(&target)?;
    let action = args.action;
    if let PlatformAction::Backup(backup) = &action {
        return volume_backup(backup, spec, &target).await;
    }
    if !matches!(action, PlatformAction::Status | PlatformAction::Start) && !target.yes {
        confirm(&format!(
            "{} Railway service {:?}?",
            verb(&action),
            spec.service
        ))?;
    }
    let mut service = RailwayService::new(spec);
    let line = live_line(&mut service, target.json);
    let began = Instant::now();
    let deployment = match action {
        PlatformAction::Status => service.latest().await,
        PlatformAction::Restart => service.restart_and_wait().await,
        PlatformAction::Redeploy => service.redeploy_and_wait().await,
        PlatformAction::Stop => service.stop_and_wait().await,
        PlatformAction::Start => service.start_and_wait().await,
        PlatformAction::Backup(_) => unreachable!("handled above"),
    };
    if let Some(line) = line {
        line.finish_and_clear();
    }
    let deployment = deployment?;
    let seconds = began.elapsed().as_secs_f64();
    let requests = service.client().requests();
    if target.json {
        print_json(&serde_json::json!({
            "action": verb(&action).to_lowercase(),
            "deployment": deployment,
            "seconds": seconds,
            "api_requests": requests,
        }));
    } else {
        print_deployment(&deployment);
        say!(
            "{} in {seconds:.1}s ({requests} API requests)",
            verb(&action)
        );
    }
    Ok(exit::SUCCESS)
}

async fn volume_backup(
    action: &BackupAction,
    spec: RailwaySpec,
    target: &PlatformTarget,
) -> Result<i32, Failure> {
    let destructive = matches!(
        action,
        BackupAction::Restore { .. } | BackupAction::Delete { .. }
    );
    if destructive && !target.yes {
        let what = match action {
            BackupAction::Restore { backup, .. } => format!(
                "Restore volume backup {backup:?} onto Railway service {:?} (its current volume is unmounted and the service redeployed)?",
                spec.service
            ),
            BackupAction::Delete { backup } => format!("Delete volume backup {backup:?}?"),
            _ => unreachable!("only destructive actions ask"),
        };
        confirm(&what)?;
    }
    let mut service = RailwayService::new(spec);
    let line = live_line(&mut service, target.json);
    let began = Instant::now();
    fn json<T: serde::Serialize>(value: T) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or_default()
    }
    let result = match action {
        BackupAction::Create { name } => {
            let name = name.clone().unwrap_or_else(|| {
                format!("vecdrill-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
            });
            service.create_backup(&name).await.map(json)
        }
        BackupAction::List => service.backups().await.map(json),
        BackupAction::Restore {
            backup,
            allow_staged,
        } => service
            .restore_backup(backup, *allow_staged)
            .await
            .map(json),
        BackupAction::Delete { backup } => service.delete_backup(backup).await.map(json),
    };
    if let Some(line) = line {
        line.finish_and_clear();
    }
    let result = result?;
    let requests = service.client().requests();
    let seconds = began.elapsed().as_secs_f64();
    if target.json {
        print_json(
            &serde_json::json!({ "result": result, "seconds": seconds, "api_requests": requests }),
        );
    } else {
        say!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
        say!("done in {seconds:.1}s ({requests} API requests)");
    }
    Ok(exit::SUCCESS)
}

/// A spinner showing the state and elapsed time while Railway is polled (terminal only).
fn live_line(service: &mut RailwayService, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let line = indicatif::ProgressBar::new_spinner();
    line.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = line.clone();
    service.on_poll(move |state| shown.set_message(state.to_string()));
    Some(line)
}

fn verb(action: &PlatformAction) -> &'static str {
    match action {
        PlatformAction::Status => "Status",
        PlatformAction::Restart => "Restart",
        PlatformAction::Redeploy => "Redeploy",
        PlatformAction::Stop => "Stop",
        PlatformAction::Start => "Start",
        PlatformAction::Backup(_) => "Backup",
    }
}

fn print_deployment(d: &Deployment) {
    say!(
        "deployment {}  {}{}  updated {}",
        d.id,
        d.status,
        if d.deployment_stopped {
            " (stopped)"
        } else {
            ""
        },
        d.status_updated_at.as_deref().unwrap_or("-")
    );
    for instance in &d.instances {
        say!("  instance {}  {}", instance.id, instance.status);
    }
}

/// Ask on a terminal; refuse without one (scripts pass --yes).
pub fn confirm(question: &str) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            message: format!("{question} needs confirmation"),
            hint: Some("pass --yes to confirm without a terminal".into()),
            code: exit::BAD_INPUT,
        });
    }
    if super::ask_yes(question) {
        Ok(())
    } else {
        Err(Failure {
            message: "not confirmed; nothing was done".into(),
            hint: None,
            code: exit::BAD_INPUT,
        })
    }
}
