//! The command line's own pieces: one module per group of subcommands, plus how errors and
//! JSON reach the user.

/// `println!` that a closed stdout does not stop: `vecdrill list | head -1` is no error, so
/// what cannot be written is dropped and the command carries on to its own exit code. Any
/// other failure to write (a full disk under `> file`) turns a success into exit 3.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

/// [`say!`] for text holding strings read from a repository, an archive or a server: control
/// characters are escaped (see [`vecdrill::text::printable`]).
macro_rules! say_shown {
    ($($arg:tt)*) => {
        say!("{}", vecdrill::text::printable(&format!($($arg)*)))
    };
}

pub mod check;
pub mod copy;
pub mod drill;
pub mod follow;
pub mod history;
pub mod key;
pub mod menu;
pub mod observer;
pub mod platform;
pub mod progress;
pub mod prompt;
pub mod prove;
pub mod quiet;
pub mod rebuild;
pub mod records;
pub mod repair;
pub mod repo;
pub mod repo_args;
pub mod transfer;

use vecdrill::exit::Classify;

/// An error on its way to the user: message, optional hint, exit code.
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl<E: Classify + std::fmt::Display> From<E> for Failure {
    fn from(err: E) -> Self {
        let message = err.to_string();
        // A full disk met anywhere (listing, staging, copying) says what to do about it.
        let hint = err.hint().or_else(|| {
            vecdrill::exit::says_disk_full(&message).then(|| vecdrill::exit::DISK_FULL_HINT.into())
        });
        Self {
            message,
            hint,
            code: err.exit_code(),
        }
    }
}

pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// Text on stdout as it is (see [`say!`]).
pub fn write_text(text: &str) {
    emit(text.as_bytes());
}

/// One line on stdout (see [`say!`]).
pub fn write_line(line: std::fmt::Arguments) {
    emit(format!("{line}\n").as_bytes());
}

/// Write and flush, so a failure is seen here rather than lost in the flush at exit. Once
/// stdout has failed, nothing more is formatted for it.
fn emit(bytes: &[u8]) {
    use std::io::Write;
    if STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    wrote(stdout.write_all(bytes).and_then(|()| stdout.flush()));
}

/// One JSON document on stdout (see [`say!`]).
pub fn print_json<T: serde::Serialize>(value: &T) {
    let text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    write_line(format_args!("{text}"));
}

/// Whether stdout has failed: its reader gone, or (then also in [`STDOUT_FAILED`]) anything else.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The first failure to write stdout other than its reader having gone (a full disk under
/// `> file`): the command's output is incomplete, which its exit code must say.
static STDOUT_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn wrote(result: std::io::Result<()>) {
    if let Err(err) = result {
        STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_FAILED.set(err.to_string());
        }
    }
}

/// Why stdout could not be written, when something other than a closed pipe stopped it.
pub fn stdout_failure() -> Option<&'static str> {
    STDOUT_FAILED.get().map(String::as_str)
}

/// Ask a yes/no question on the terminal; only "y" or "yes" is a yes.
pub fn ask_yes(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
