//! Test support: real Chroma servers on OS-assigned ports, the `vecdrill` binary, and
//! assertions that show the command, stdout and stderr when they fail.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
        let port = free_port();
        let log = std::fs::File::create(data_dir.with_extension("server.log")).expect("server log");
        let child = Command::new(chroma_bin())
            .args(["run", "--path"])
            .arg(data_dir)
            .args(["--port", &port.to_string()])
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
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/api/v2/heartbeat", self.url());
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let request = "GET /api/v2/heartbeat HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
                if stream.write_all(request.as_bytes()).is_ok() {
                    let mut answer = String::new();
                    let _ = stream.read_to_string(&mut answer);
                    if answer.contains("nanosecond heartbeat") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "Chroma did not answer {url} within 60s; see {}",
            self.data_dir.with_extension("server.log").display()
        );
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub fn stop(mut self) {
        self.terminate();
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecdrill"));
    command
        .args(args)
        .current_dir(project_root())
        .stdin(Stdio::null());
    let description = format!("{command:?}");
    let output = command.output().expect("run vecdrill");
    Run {
        description,
        output,
    }
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecdrill"));
    command
        .args(args)
        .current_dir(project_root())
        .stdin(Stdio::null());
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
        server.http(&format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
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
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
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
