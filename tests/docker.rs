//! Issue 24: Chroma in a container, driven through the Docker Engine API. A real `dockerd`
//! (`.ci/setup` starts one when none runs) and real Chroma servers in containers: the image is
//! an empty root (`vecdrill-test-base`, imported by `.ci/setup`, since no image can be pulled
//! here) into which the host's system directories and the project's `.venv` are mounted
//! read-only; the data is a named volume or a bind mount, as users run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{free_port, project_root, vecdrill, vecdrill_env};

/// How a container holds Chroma's data.
enum DataMount {
    Volume(String),
    Bind(PathBuf),
}

/// A Chroma server in a container, removed (with its volume) when dropped.
struct ChromaContainer {
    name: String,
    port: u16,
    volume: Option<String>,
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker client runs (bash .ci/setup installs Docker)")
}

/// Read-only mounts of what the project's Chroma needs from the host.
fn host_mounts() -> Vec<String> {
    let venv = project_root().join(".venv");
    let python = std::fs::canonicalize(venv.join("bin/python")).expect(".venv's python");
    // The interpreter's own prefix (its standard library), wherever the venv was made from.
    let prefix = python
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let mut dirs: Vec<PathBuf> = ["/bin", "/lib", "/lib64", "/usr", "/etc"]
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.exists())
        .collect();
    dirs.push(prefix);
    dirs.push(venv);
    dirs.iter()
        .flat_map(|d| {
            [
                "-v".to_string(),
                format!("{}:{}:ro", d.display(), d.display()),
            ]
        })
        .collect()
}

impl ChromaContainer {
    /// `docker run` a Chroma server (or `command` instead) with its data at /data.
    fn run(name: &str, data: DataMount, command: Option<&[&str]>) -> Self {
        let port = free_port();
        let _ = docker(&["rm", "-f", name]);
        let (mount, volume) = match &data {
            DataMount::Volume(volume) => (format!("{volume}:/data"), Some(volume.clone())),
            DataMount::Bind(dir) => (format!("{}:/data", dir.display()), None),
        };
        let chroma = project_root().join(".venv/bin/chroma");
        let port_text = port.to_string();
        let default = [
            chroma.to_str().unwrap(),
            "run",
            "--path",
            "/data",
            "--port",
            &port_text,
        ];
        let mut args: Vec<String> = ["run", "-d", "--name", name, "--network", "host"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["-e".into(), "ANONYMIZED_TELEMETRY=False".into()]);
        args.extend(host_mounts());
        args.extend(["-v".into(), mount, "vecdrill-test-base".into()]);
        args.extend(command.unwrap_or(&default).iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name: name.to_string(),
            port,
            volume,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while !crate::common::port_is_open(self.port) {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never listened",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// `count` records of `dim` dimensions in `collection`, through the API.
    fn seed(&self, collection: &str, count: u64) {
        self.wait_healthy();
        vecdrill([
            "seed",
            "--url",
            &self.url(),
            "--collection",
            collection,
            "--count",
            &count.to_string(),
            "--dim",
            "16",
        ])
        .expect_code(0);
    }
}

impl Drop for ChromaContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
        if let Some(volume) = &self.volume {
            let _ = docker(&["volume", "rm", "-f", volume]);
        }
    }
}

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), free_port())
}

fn drill(scenario: &str, container: &ChromaContainer, extra: &[String]) -> serde_json::Value {
    let reports = tempfile::tempdir().unwrap().keep();
    let mut vars = vec![
        format!("container={}", container.name),
        format!("url={}", container.url()),
        "expected_min=500".to_string(),
    ];
    vars.extend(extra.iter().cloned());
    let run = crate::common::run_scenario(&project_root().join(scenario), &reports, &vars, &[]);
    run.expect_code(0);
    run.json()
}

#[test]
fn issue_24_the_restart_drill_runs_through_the_docker_api() {
    let container = ChromaContainer::run(
        &unique("vecdrill-restart"),
        DataMount::Volume(unique("vecdrill-restart-data")),
        None,
    );
    container.seed("docs", 600);
    let report = drill("scenarios/docker/restart.yaml", &container, &[]);
    assert_eq!(report["passed"], true);
    let split = &report["rto_split"];
    assert!(split["platform_ms"].as_f64().unwrap() > 0.0, "{split}");
    // The container's own log, copied into the run's service.log.
    let log =
        std::fs::read_to_string(Path::new(report["run_dir"].as_str().unwrap()).join("service.log"))
            .unwrap();
    assert!(
        log.contains("8000") || log.contains(&container.port.to_string()),
        "{log}"
    );
}

#[test]
fn issue_24_the_snapshot_restore_drill_finds_the_data_mount_and_restores_into_it() {
    for mount in ["volume", "bind"] {
        let tmp = tempfile::tempdir().unwrap();
        let bind = tmp.path().join("chroma-data");
        std::fs::create_dir(&bind).unwrap();
        let data = match mount {
            "volume" => DataMount::Volume(unique("vecdrill-snapshot-data")),
            _ => DataMount::Bind(bind.clone()),
        };
        let container = ChromaContainer::run(&unique("vecdrill-snapshot"), data, None);
        container.seed("docs", 600);
        let repo = format!("repo=file://{}", tmp.path().join("repo").display());
        let report = drill(
            "scenarios/docker/snapshot-restore.yaml",
            &container,
            &[repo],
        );
        assert_eq!(report["passed"], true, "{mount}");
        // The backup is of the mount's host side, found from the container's inspection.
        let listed = vecdrill([
            "list",
            "--repo",
            &format!("file://{}", tmp.path().join("repo").display()),
            "--json",
        ])
        .json();
        let source = listed[0]["source"].as_str().unwrap().to_string();
        let expected = match mount {
            "volume" => "/_data".to_string(),
            _ => std::fs::canonicalize(&bind).unwrap().display().to_string(),
        };
        assert!(source.ends_with(&expected), "{mount}: backed up {source}");
        // The restore put the backup into that directory: the corrupted file is whole again.
        let host_dir = source.split_once(':').unwrap().1;
        let header = std::fs::read(Path::new(host_dir).join("chroma.sqlite3")).unwrap();
        assert!(header.starts_with(b"SQLite format 3\0"), "{mount}");
    }
}

#[test]
fn issue_24_a_container_that_crashes_on_start_fails_with_its_exit_code_and_log() {
    let name = unique("vecdrill-crash");
    let _ = docker(&["rm", "-f", &name]);
    let mut args = vec!["create".to_string(), "--name".into(), name.clone()];
    args.extend(host_mounts());
    args.extend(
        [
            "vecdrill-test-base",
            "/bin/sh",
            "-c",
            "echo cannot open the persist directory >&2; exit 3",
        ]
        .map(String::from),
    );
    let created = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(created.status.success());
    let run = vecdrill(["platform", "start", "--docker", &name, "--timeout", "30s"]);
    let _ = docker(&["rm", "-f", &name]);
    run.expect_code(3);
    let stderr = run.stderr();
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(
        stderr.contains("cannot open the persist directory"),
        "{stderr}"
    );
}

#[test]
fn issue_24_a_stopped_daemon_is_exit_3_with_a_hint() {
    let run = vecdrill_env(
        ["platform", "status", "--docker", "chroma"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock".to_string())],
    );
    run.expect_code(3);
    let stderr = run.stderr();
    assert!(
        stderr.contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: start the Docker daemon"), "{stderr}");
}

#[test]
fn issue_24_backup_docker_finds_the_volume_and_stops_and_starts_the_container_for_a_cold_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let container = ChromaContainer::run(
        &unique("vecdrill-backup"),
        DataMount::Volume(unique("vecdrill-backup-data")),
        None,
    );
    container.seed("docs", 300);
    let repo = format!("file://{}", tmp.path().join("repo").display());
    let run = vecdrill([
        "backup",
        "--repo",
        &repo,
        "--docker",
        &container.name,
        "--mode",
        "cold",
        "--json",
    ]);
    run.expect_code(0);
    let backup = run.json();
    let manifest = &backup["backup"]["manifest"];
    assert_eq!(manifest["capture"]["mode"], "cold", "{backup:#}");
    assert!(
        manifest["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/_data"),
        "{backup:#}"
    );
    assert!(
        run.stderr().contains("data directory:") && run.stderr().contains("volume"),
        "{}",
        run.stderr()
    );
    // Started again: the server answers with the same records.
    container.wait_healthy();
    let status = vecdrill(["platform", "status", "--docker", &container.name, "--json"]).json();
    assert_eq!(status["container"]["status"], "running", "{status:#}");

    // Restore into the container's volume: refused while its server runs, done once stopped.
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--repo",
            &repo,
            "latest",
            "--docker",
            &container.name,
        ];
        args.extend(extra);
        vecdrill(args)
    };
    let refused = restore(&["--yes"]);
    refused.expect_code(2);
    assert!(refused.stderr().contains("in use"), "{}", refused.stderr());
    vecdrill(["platform", "stop", "--docker", &container.name, "--yes"]).expect_code(0);
    restore(&["--yes", "--no-safety-backup"]).expect_code(0);
    vecdrill(["platform", "start", "--docker", &container.name]).expect_code(0);
    let counted = vecdrill(["check", "--url", &container.url(), "--json"]);
    counted.expect_code(0);
}

#[test]
fn issue_24_the_compose_sidecar_restores_on_start_only_into_an_empty_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let script = project_root().join("runbooks/docker/restore-if-empty.sh");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_vecdrill")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo = format!("file://{}", tmp.path().join("repo").display());
    let data = tmp.path().join("data");
    let run = |data: &Path| {
        Command::new("sh")
            .arg(&script)
            .env("PATH", &path)
            .env("VECDRILL_REPO", &repo)
            .env("DATA_DIR", data)
            .env("VECDRILL_HISTORY", tmp.path().join("history.sqlite"))
            .output()
            .unwrap()
    };
    // No backup yet: a first deployment starts empty.
    let first = run(&data);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("starting empty"));
    assert!(!data.join("chroma.sqlite3").exists());

    // A backup of the volume exists and the volume is empty: restored.
    let source = crate::common::seeded_data_dir(&tmp.path().join("seed"), &[("docs", 50, 8)]);
    crate::common::copy_tree(&source, &data);
    crate::common::backup_json(&repo, &data, &[]);
    let before = crate::common::tree_hashes(&data);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    let restored = run(&data);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(crate::common::tree_hashes(&data), before);

    // A volume that holds a database is left alone.
    std::fs::write(data.join("marker"), b"mine").unwrap();
    let after = crate::common::tree_hashes(&data);
    let left = run(&data);
    assert!(left.status.success());
    assert!(String::from_utf8_lossy(&left.stdout).contains("nothing restored"));
    assert_eq!(crate::common::tree_hashes(&data), after);
}

#[test]
fn issue_24_a_compose_service_is_found_by_its_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let project = unique("shop");
    let start = |name: &str| {
        let mut args: Vec<String> = ["run", "-d", "--name", name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for label in [
            format!("com.docker.compose.project={project}"),
            "com.docker.compose.service=chroma".to_string(),
        ] {
            args.extend(["--label".to_string(), label]);
        }
        args.extend(host_mounts());
        args.extend(["vecdrill-test-base", "/bin/sh", "-c", "sleep 600"].map(String::from));
        let out = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let scenario = tmp.path().join("compose.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: compose\ntarget:\n  kind: chroma\n  url: http://127.0.0.1:1\n  service:\n    kind: docker\n    compose_project: {project}\n    compose_service: chroma\nsteps:\n  - {{ do: start }}\n"
        ),
    )
    .unwrap();
    let status = || {
        vecdrill([
            "platform",
            "status",
            "--scenario",
            scenario.to_str().unwrap(),
            "--json",
        ])
    };
    // None yet: said so, naming how Compose would create it.
    let none = status();
    none.expect_code(3);
    assert!(
        none.stderr().contains("Compose runs no container"),
        "{}",
        none.stderr()
    );
    let first = unique("shop-chroma-1");
    start(&first);
    let found = status();
    let _ = docker(&["rm", "-f", &first]).status;
    found.expect_code(0);
    assert_eq!(found.json()["container"]["container"], first);
    // Two: ambiguous, refused.
    let (a, b) = (unique("shop-chroma-a"), unique("shop-chroma-b"));
    start(&a);
    start(&b);
    let two = status();
    let _ = docker(&["rm", "-f", &a, &b]).status;
    two.expect_code(3);
    assert!(
        two.stderr().contains("runs 2 containers"),
        "{}",
        two.stderr()
    );
}
