//! The command line's own pieces: one module per group of subcommands, plus how errors and
//! JSON reach the user.

/// `println!` for text holding strings read from a repository, an archive or a server: control
/// characters are escaped (see [`vecdrill::report::terminal::printable`]).
macro_rules! println_shown {
    ($($arg:tt)*) => {
        println!("{}", vecdrill::report::terminal::printable(&format!($($arg)*)))
    };
}

pub mod check;
pub mod drill;
pub mod history;
pub mod observer;
pub mod platform;
pub mod progress;
pub mod rebuild;
pub mod records;
pub mod repo;
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

/// One JSON document on stdout. A closed pipe (`| head`) is not an error.
pub fn print_json<T: serde::Serialize>(value: &T) {
    use std::io::Write;
    let text =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// Ask a yes/no question on the terminal; only "y" or "yes" is a yes.
pub fn ask_yes(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
