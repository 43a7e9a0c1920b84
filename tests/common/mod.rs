//! Test support: real Chroma servers on OS-assigned ports, the `vecdrill` binary, and
//! assertions that show the command, stdout and stderr when they fail.

#![allow(dead_code)]

pub mod s3_faults;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Chroma server command: `VECDRILL_TEST_CHROMA`, else the project's `.venv`.
pub fn chroma_bin() -> PathBuf {
    if let Ok(path) = std::env::var("VECDRILL_TEST_CHROMA") {
        return PathBuf::from(path);
    }
    let path = project_root().join(".venv/bin/chroma");
    assert!(
        path.exists(),
        "the Chroma server is not installed at {}: run `bash .ci/setup` first (it creates .venv with chromadb)",
        path.display()
    );
    path
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free port")
}

/// A Chroma server running on a persistent directory; killed when dropped.
pub struct ChromaServer {
    pub port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl ChromaServer {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(&chroma_bin(), data_dir)
    }

    /// A server of the Chroma whose `chroma` command is `bin` (any supported version).
    pub fn start_with(bin: &Path, data_dir: &Path) -> Self {
        let port = free_port();
        let log = std::fs::File::create(data_dir.with_extension("server.log")).expect("server log");
        let child = Command::new(bin)
            .args(["run", "--path"])
            .arg(data_dir)
            .args(["--port", &port.to_string()])
            // Chroma 0.x writes chroma.log into its working directory: keep it beside the data.
            .current_dir(data_dir.parent().unwrap_or(data_dir))
            .env("ANONYMIZED_TELEMETRY", "False")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start chroma");
        let server = Self {
            port,
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
        };
        server.wait_healthy();
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let url = format!("{}/api/v2/heartbeat", self.url());
        while Instant::now() < deadline {
            // /api/v2 from Chroma 0.5 on, /api/v1 on 0.4.
            for api in ["v2", "v1"] {
                if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                    use std::io::{Read, Write};
                    let request =
                        format!("GET /api/{api}/heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                    if stream.write_all(request.as_bytes()).is_ok() {
                        let mut answer = String::new();
                        let _ = stream.read_to_string(&mut answer);
                        if answer.contains("nanosecond heartbeat") {
                            return;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "Chroma did not answer {url} (or /api/v1) within 90s; see {}",
            self.data_dir.with_extension("server.log").display()
        );
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    /// A crash: SIGKILL, waiting for the process to be gone.
    pub fn crash(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChromaServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Run the vecdrill binary.
pub fn vecdrill<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    vecdrill_env(args, &[])
}

/// The `vecdrill` binary, run from the project root, recording its history in a database of
/// this test process's own (never the project's `reports/`). Tests that read the history pass
/// `--history` or `VECDRILL_HISTORY` themselves.
pub fn vecdrill_command() -> Command {
    static HISTORY: OnceLock<PathBuf> = OnceLock::new();
    let history = HISTORY.get_or_init(|| {
        std::env::temp_dir()
            .join(format!("vecdrill-tests-{}", std::process::id()))
            .join("history.sqlite")
    });
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecdrill"));
    command
        .current_dir(project_root())
        .env("VECDRILL_HISTORY", history)
        // A password in the developer's shell must not turn the tests' repositories encrypted.
        .env_remove("VECDRILL_PASSWORD")
        .env_remove("VECDRILL_PASSWORD_FILE")
        .env_remove("VECDRILL_PASSWORD_COMMAND")
        .env_remove("VECDRILL_FROM_PASSWORD")
        .env_remove("VECDRILL_FROM_PASSWORD_FILE")
        .env_remove("VECDRILL_FROM_PASSWORD_COMMAND")
        .env_remove("VECDRILL_COPY_PASSWORD")
        .env_remove("VECDRILL_COPY_PASSWORD_FILE")
        .env_remove("VECDRILL_COPY_PASSWORD_COMMAND")
        .stdin(Stdio::null());
    command
}

pub struct Run {
    pub description: String,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Assert the exit code, showing everything when it is wrong.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "\ncommand: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.description,
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\ncommand: {}\n--- stdout\n{}\n--- stderr\n{}",
                self.description,
                self.stdout(),
                self.stderr()
            )
        })
    }
}

/// A temporary Chroma directory holding `count` deterministic records of dimension `dim` in
/// `collection`, written through `vecdrill seed` and then cleanly stopped.
pub fn seeded_data_dir(root: &Path, collections: &[(&str, u64, usize)]) -> PathBuf {
    let data = root.join("chroma");
    std::fs::create_dir_all(&data).expect("data dir");
    let server = ChromaServer::start(&data);
    for (collection, count, dim) in collections {
        vecdrill([
            "seed",
            "--url",
            &server.url(),
            "--collection",
            collection,
            "--count",
            &count.to_string(),
            "--dim",
            &dim.to_string(),
        ])
        .expect_code(0);
    }
    server.stop();
    data
}

/// `vecdrill run SCENARIO --report-dir DIR --json --var ...` with extra environment variables.
pub fn run_scenario(
    scenario: &Path,
    report_dir: &Path,
    vars: &[String],
    env: &[(&str, String)],
) -> Run {
    let mut args = vec![
        "run".to_string(),
        scenario.display().to_string(),
        "--report-dir".into(),
        report_dir.display().to_string(),
        "--json".into(),
    ];
    for var in vars {
        args.push("--var".into());
        args.push(var.clone());
    }
    vecdrill_env(&args, env)
}

/// Spawn a fixture server that prints `listening on PORT` first; returns it and the port.
fn spawn_announcing_port(command: &mut Command, what: &str) -> (Child, u16) {
    use std::io::BufRead;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what} prints its port: {e}"));
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output from {what}: {line:?}"));
    (child, port)
}

/// GET a JSON document from a fixture server on loopback.
fn get_json(port: u16, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("fixture server");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

/// Is anything listening on this port?
pub fn port_is_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

/// Run the vecdrill binary with extra environment variables.
pub fn vecdrill_env<I, S>(args: I, env: &[(&str, String)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = vecdrill_command();
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let description = format!("{command:?}");
    let output = command.output().expect("run vecdrill");
    Run {
        description,
        output,
    }
}

/// An S3-protocol server (moto) on a free loopback port, with one bucket; killed when dropped.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub fn start(bucket: &str) -> Self {
        let server = Self::spawn(&[]);
        let port = server.port;
        server.http(&format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        server
    }

    /// A server that checks every request's signature, as a real S3 does, against credentials
    /// it has none of: it refuses everything (403).
    pub fn start_refusing() -> Self {
        Self::spawn(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    fn spawn(env: &[(&str, &str)]) -> Self {
        let bin = std::env::var("VECDRILL_TEST_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|_| project_root().join(".venv-s3/bin/moto_server"));
        assert!(
            bin.exists(),
            "the S3 test server is not installed at {}: run `bash .ci/setup` first (it installs moto[server] into .venv-s3)",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !port_is_open(port) {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn http(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "moto answered {answer}");
        answer
    }

    /// The environment object_store reads for an S3-compatible endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        Self::env_for_port(self.port)
    }

    /// The environment object_store reads for an S3-compatible endpoint on `port`.
    pub fn env_for_port(port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` with its BLAKE3, by relative path: to compare directories exactly.
pub fn tree_hashes(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(
                    rel,
                    blake3::hash(&std::fs::read(&p).unwrap())
                        .to_hex()
                        .to_string(),
                );
            }
        }
    }
    out
}

/// Invert one byte of a file.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] = !bytes[offset];
    std::fs::write(path, bytes).unwrap();
}

/// Every regular file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The embedding endpoint STAND-IN (tests/fixtures/embedding_standin.py): implements the
/// OpenAI `/v1/embeddings` contract with deterministic word-hash embeddings. Killed on drop.
pub struct EmbeddingStandin {
    pub port: u16,
    child: Child,
}

impl EmbeddingStandin {
    pub fn start(args: &[&str]) -> Self {
        let (child, port) = spawn_announcing_port(
            Command::new("python3")
                .arg(project_root().join("tests/fixtures/embedding_standin.py"))
                .args(args),
            "the embedding stand-in",
        );
        Self { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Counters: requests, throttled, failed, texts, unauthorized.
    pub fn stats(&self) -> serde_json::Value {
        get_json(self.port, "/stats")
    }
}

impl Drop for EmbeddingStandin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server in a scratch directory, run as the `postgres` user when the tests run
/// as root (PostgreSQL refuses root). Stopped and removed on drop.
pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PostgresServer {
    pub fn start() -> Self {
        let bin = postgres_bin_dir();
        let dir = std::env::temp_dir().join(format!("vecdrill-pg-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let server = Self { port, dir, bin };
        server.as_owner(
            &["chown", "-R", "postgres", server.dir.to_str().unwrap()],
            true,
        );
        let data = server.dir.join("data");
        server.pg(&[
            "initdb",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-D",
            data.to_str().unwrap(),
        ]);
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            server.dir.display()
        );
        server.pg(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "-l",
            server.dir.join("log").to_str().unwrap(),
            "start",
        ]);
        server
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Run SQL through psql.
    pub fn psql(&self, sql: &str) {
        self.pg(&[
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-c",
            sql,
        ]);
    }

    fn pg(&self, args: &[&str]) {
        let mut full = vec![self.bin.join(args[0]).display().to_string()];
        full.extend(args[1..].iter().map(|s| s.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        self.as_owner(&full, false);
    }

    fn as_owner(&self, args: &[&str], as_root: bool) {
        let is_root = nix_is_root();
        let mut command = if is_root && !as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).args(args);
            c
        } else if as_root && !is_root {
            return;
        } else {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        };
        let output = command
            .current_dir(&self.dir)
            .output()
            .expect("run a postgres tool");
        assert!(
            output.status.success(),
            "{args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let stop = [
            self.bin.join("pg_ctl").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ];
        let stop: Vec<&str> = stop.iter().map(String::as_str).collect();
        let _ =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.as_owner(&stop, false)));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Debian keeps the server tools in /usr/lib/postgresql/VERSION/bin.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|b| b.join("initdb").exists())
        .expect("PostgreSQL server tools are not installed: run `bash .ci/setup` (apt postgresql)")
}

/// A real redis-server (Debian's) on a free port with its own directory; killed on drop.
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Start on `dir` (loading `dump.rdb` there if present), with no automatic saves.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args([
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                // Lets a test move `dir` away to make BGSAVE fail.
                "--enable-protected-configs",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (bash .ci/setup)");
        let server = Self {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// redis-cli against this server; stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `count` keys `PREFIX<i>` with a small JSON value, through one pipe.
    pub fn fill(&self, prefix: &str, count: u64) {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..count {
            let key = format!("{prefix}{i}");
            let value = format!("{{\"id\":{i},\"v\":[{}]}}", i % 97);
            write!(
                stdin,
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .unwrap();
        }
        drop(stdin);
        child.wait().unwrap();
    }

    /// Keys under `prefix`.
    pub fn count(&self, prefix: &str) -> u64 {
        let output = self.cli(&["--scan", "--pattern", &format!("{prefix}*")]);
        output.lines().filter(|l| !l.is_empty()).count() as u64
    }

    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Railway API STAND-IN (tests/fixtures/railway_standin.py): Railway's GraphQL contract
/// for the operations vecdrill uses, with a real Chroma on a real directory as the service.
/// Terminated on drop (it stops its Chroma first).
pub struct RailwayStandin {
    pub port: u16,
    pub app_port: u16,
    child: Child,
}

pub const RAILWAY_TEST_TOKEN: &str = "rw-test-token-5f1e9c";

impl RailwayStandin {
    pub fn start(volume: &Path, extra: &[&str]) -> Self {
        let app_port = free_port();
        let (child, port) = spawn_announcing_port(
            Command::new("python3")
                .arg(project_root().join("tests/fixtures/railway_standin.py"))
                .arg("--chroma")
                .arg(chroma_bin())
                .arg("--volume")
                .arg(volume)
                .args([
                    "--app-port",
                    &app_port.to_string(),
                    "--token",
                    RAILWAY_TEST_TOKEN,
                ])
                .args(extra),
            "the Railway stand-in",
        );
        let standin = Self {
            port,
            app_port,
            child,
        };
        // Ready when its first deployment is: Chroma answering its heartbeat and the stand-in
        // having seen it (an open port alone still reads DEPLOYING to a test under load).
        let deadline = Instant::now() + Duration::from_secs(90);
        while standin.stats()["latest_status"] != "SUCCESS" {
            assert!(
                Instant::now() < deadline,
                "the stand-in's first deployment did not become ready: {}",
                standin.stats()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        standin
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/graphql/v2", self.port)
    }

    pub fn app_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.app_port)
    }

    /// Requests per operation and in all.
    pub fn stats(&self) -> serde_json::Value {
        get_json(self.port, "/stats")
    }
}

impl Drop for RailwayStandin {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every sample of a Prometheus text-format file as (`name{label="value",...}`, value), read by
/// the reference parser (prometheus_client, in .venv-fixtures); panics when it refuses the file.
pub fn prometheus_samples(path: &Path) -> Vec<(String, f64)> {
    let output = Command::new(project_root().join(".venv-fixtures/bin/python"))
        .arg(project_root().join("tests/fixtures/parse_prometheus.py"))
        .arg(path)
        .output()
        .expect("run the Prometheus parser (bash .ci/setup installs it)");
    assert!(
        output.status.success(),
        "not Prometheus text format: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('\t').expect("name<TAB>value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// The step `id` of a report.json (main steps, not rollback).
pub fn report_step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {report:#}"))
}

/// The objective `name` of a report.json.
pub fn report_objective<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["objectives"]
        .as_array()
        .and_then(|objectives| objectives.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no objective {name} in {report:#}"))
}

/// A `file://` repository URL for a directory.
pub fn repo_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// A temporary directory holding a seeded Chroma directory and where a `file://` repository
/// goes (created by the first backup).
pub struct Workspace {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub repo_dir: PathBuf,
    pub repo: String,
}

pub fn workspace(collections: &[(&str, u64, usize)]) -> Workspace {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), collections);
    let repo_dir = tmp.path().join("repo");
    let repo = repo_url(&repo_dir);
    Workspace {
        tmp,
        data,
        repo_dir,
        repo,
    }
}

/// `vecdrill backup --repo REPO --chroma-dir DATA [EXTRA]...`, whatever its outcome.
pub fn backup_run(repo: &str, data: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "backup",
        "--repo",
        repo,
        "--chroma-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    vecdrill(&args)
}

/// `vecdrill backup --repo REPO --chroma-dir DATA --json [EXTRA]...`, which must succeed; its
/// JSON summary.
pub fn backup_json(repo: &str, data: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let run = backup_run(repo, data, &args);
    run.expect_code(0);
    run.json()
}

/// `vecdrill restore --repo REPO BACKUP --to TO --yes [EXTRA]...`, whatever its outcome.
pub fn restore_run(repo: &str, backup: &str, to: &Path, extra: &[&str]) -> Run {
    restore_run_env(repo, backup, to, extra, &[])
}

/// [`restore_run`] with extra environment variables.
pub fn restore_run_env(
    repo: &str,
    backup: &str,
    to: &Path,
    extra: &[&str],
    env: &[(&str, String)],
) -> Run {
    let mut args = vec![
        "restore",
        "--repo",
        repo,
        backup,
        "--to",
        to.to_str().unwrap(),
        "--yes",
    ];
    args.extend_from_slice(extra);
    vecdrill_env(&args, env)
}

/// Add `count` records (dimension `dim`) in collection `name` to the Chroma directory `data`,
/// through a server started on it and stopped again.
pub fn add_records(data: &Path, name: &str, count: u64, dim: usize) {
    let server = ChromaServer::start(data);
    vecdrill([
        "seed",
        "--url",
        &server.url(),
        "--collection",
        name,
        "--count",
        &count.to_string(),
        "--dim",
        &dim.to_string(),
        "--seed",
        "9",
    ])
    .expect_code(0);
    server.stop();
}

/// Copy every file under `from` to the same place under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

/// An export file as collections (without ids) and records by collection, in file order.
pub struct Export {
    pub collections: Vec<serde_json::Value>,
    pub records: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
}

pub fn read_export(path: &Path) -> Export {
    let bytes = std::fs::read(path).unwrap();
    let text = if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
    } else {
        String::from_utf8(bytes).unwrap()
    };
    let mut export = Export {
        collections: Vec::new(),
        records: std::collections::BTreeMap::new(),
    };
    let mut current = String::new();
    for line in text.lines() {
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        match value["type"].as_str().unwrap() {
            "collection" => {
                value.as_object_mut().unwrap().remove("id");
                current = value["name"].as_str().unwrap().to_string();
                export.records.entry(current.clone()).or_default();
                export.collections.push(value);
            }
            "record" => export.records.get_mut(&current).unwrap().push(value),
            _ => {}
        }
    }
    export
}

/// Records by id.
pub fn by_id(
    records: &[serde_json::Value],
) -> std::collections::BTreeMap<String, serde_json::Value> {
    records
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// Run the vecdrill binary on a pseudo-terminal (its stdin a terminal, `/dev/tty` its own),
/// typing `answers` one after each password prompt, as `vecdrill_command` runs it otherwise.
/// `shell_after` runs in the same terminal once vecdrill has ended (e.g. `stty -a`).
pub fn vecdrill_on_terminal(args: &[&str], answers: &[&str], shell_after: Option<&str>) -> Run {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_vecdrill"))
        .chain(args.iter().copied())
        .map(|word| format!("'{}'", word.replace('\'', "'\\''")))
        .collect();
    let script = match shell_after {
        Some(after) => format!("{}; echo \"vecdrill exited $?\"; {after}", quoted.join(" ")),
        None => quoted.join(" "),
    };
    let base = vecdrill_command();
    let mut command = Command::new("python3");
    command
        .arg(project_root().join("tests/common/terminal.py"))
        .arg(serde_json::to_string(answers).unwrap())
        .args(["sh", "-c", &script])
        .current_dir(project_root())
        .env_remove("VECDRILL_PASSWORD")
        .env_remove("VECDRILL_PASSWORD_FILE")
        .env_remove("VECDRILL_PASSWORD_COMMAND")
        .stdin(Stdio::null());
    for (key, value) in base.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let description = format!("{command:?}");
    let output = command.output().expect("run vecdrill on a terminal");
    Run {
        description,
        output,
    }
}

/// A webhook on loopback that answers with `statuses` in turn (then 200) and keeps every body.
pub struct Webhook {
    pub port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    pub requests: std::sync::Arc<std::sync::Mutex<usize>>,
}

impl Webhook {
    pub fn start(statuses: &[u16]) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(0));
        let (kept, counted) = (bodies.clone(), requests.clone());
        let mut statuses = std::collections::VecDeque::from(statuses.to_vec());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                use std::io::{BufRead, Read, Write};
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                *counted.lock().unwrap() += 1;
                let status = statuses.pop_front().unwrap_or(200);
                if status == 200 {
                    kept.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Self {
            port,
            bodies,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/secret-token", self.port)
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }
}
