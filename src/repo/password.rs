//! Where an encrypted repository's password comes from, the way backup tools take it: a file
//! (`--password-file` / `VECDRILL_PASSWORD_FILE`), a command's output (`--password-command` /
//! `VECDRILL_PASSWORD_COMMAND`, run without a shell), `VECDRILL_PASSWORD`, or a prompt on a
//! terminal. Resolved only when a repository turns out to be encrypted, so an unencrypted one
//! never runs the command or prompts. The password is never shown: errors name the source,
//! never what it gave.

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::exit::{self, Classify};

pub const PASSWORD_ENV: &str = "VECDRILL_PASSWORD";
pub const PASSWORD_FILE_ENV: &str = "VECDRILL_PASSWORD_FILE";
pub const PASSWORD_COMMAND_ENV: &str = "VECDRILL_PASSWORD_COMMAND";

/// The environment variables one repository's password is taken from.
#[derive(Debug, Clone, Copy)]
pub struct PasswordEnv {
    pub password: &'static str,
    pub file: &'static str,
    pub command: &'static str,
}

/// The repository a command works on (`--repo`).
pub const MAIN_ENV: PasswordEnv = PasswordEnv {
    password: PASSWORD_ENV,
    file: PASSWORD_FILE_ENV,
    command: PASSWORD_COMMAND_ENV,
};

/// The repository `vecdrill copy` copies from (`--from-repo`).
pub const FROM_ENV: PasswordEnv = PasswordEnv {
    password: "VECDRILL_FROM_PASSWORD",
    file: "VECDRILL_FROM_PASSWORD_FILE",
    command: "VECDRILL_FROM_PASSWORD_COMMAND",
};

/// The second repository a backup is copied into (`backup --copy-to`, `check --copy-repo`).
pub const COPY_ENV: PasswordEnv = PasswordEnv {
    password: "VECDRILL_COPY_PASSWORD",
    file: "VECDRILL_COPY_PASSWORD_FILE",
    command: "VECDRILL_COPY_PASSWORD_COMMAND",
};

/// What a password comes from, as given (flags win over the environment).
#[derive(Clone, Default)]
pub struct PasswordSources {
    pub file: Option<PathBuf>,
    pub command: Option<String>,
    /// `VECDRILL_PASSWORD`'s value.
    pub env: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for PasswordSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordSources")
            .field("file", &self.file)
            .field("command", &self.command.as_ref().map(|_| "…"))
            .field("env", &self.env.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Asks for a password on a terminal (the command line's to give; none where nobody can
/// answer).
pub type Prompt<'a> = &'a (dyn Fn(&str) -> std::io::Result<String> + Sync);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// No usable password: none given, or a source that failed.
    #[error("{0}")]
    Missing(String),
    /// Ctrl-C at the prompt.
    #[error("interrupted at the password prompt")]
    Interrupted,
}

impl Classify for PasswordError {
    fn exit_code(&self) -> i32 {
        match self {
            Self::Missing(_) => exit::BAD_INPUT,
            Self::Interrupted => exit::INTERRUPTED,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Missing(_) => Some(format!(
                "give its password, or type it on a terminal: {WHERE_PASSWORDS_GO}"
            )),
            Self::Interrupted => None,
        }
    }
}

/// Which options give which repository's password, for hints: a command may open two.
pub const WHERE_PASSWORDS_GO: &str = "--repo's with --password-file, --password-command or VECDRILL_PASSWORD[_FILE|_COMMAND]; --from-repo's with --from-password-file, --from-password-command or VECDRILL_FROM_PASSWORD[_FILE|_COMMAND]; --copy-to's and --copy-repo's with --copy-password-file, --copy-password-command or VECDRILL_COPY_PASSWORD[_FILE|_COMMAND]";

impl PasswordError {
    /// This error, saying which repository's password it is about.
    pub fn of_repository(self, url: &str) -> Self {
        match self {
            Self::Missing(why) => {
                Self::Missing(format!("{}: {why}", crate::redaction::redact_url(url)))
            }
            other => other,
        }
    }
}

impl PasswordSources {
    /// The flags given, completed from the environment.
    pub fn from_env(file: Option<PathBuf>, command: Option<String>) -> Self {
        Self::from_env_of(&MAIN_ENV, file, command)
    }

    /// The flags given for another repository, completed from its own variables (`env`).
    pub fn from_env_of(env: &PasswordEnv, file: Option<PathBuf>, command: Option<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            file: file.or_else(|| var(env.file).map(PathBuf::from)),
            command: command.or_else(|| var(env.command)),
            env: var(env.password).map(Zeroizing::new),
        }
    }

    /// These sources when any is given, else `fallback`'s: a second repository is opened with
    /// the first one's password unless it is given its own.
    pub fn or(self, fallback: &Self) -> Self {
        if self.given() {
            self
        } else {
            fallback.clone()
        }
    }

    /// Whether any source but a prompt is given.
    pub fn given(&self) -> bool {
        self.file.is_some() || self.command.is_some() || self.env.is_some()
    }

    /// The password: from the file or the command (not both), else the environment, else
    /// `prompt` asking `question`.
    pub fn resolve(
        &self,
        question: &str,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Zeroizing<String>, PasswordError> {
        self.resolve_asking(question, prompt, Typed::Once)
    }

    /// [`Self::resolve`] for a password being set: typed at the prompt, it is asked twice and
    /// refused when the two differ (a typo would leave a repository nobody can open).
    pub fn resolve_new(
        &self,
        question: &str,
        prompt: Option<Prompt<'_>>,
    ) -> Result<Zeroizing<String>, PasswordError> {
        self.resolve_asking(question, prompt, Typed::Twice)
    }

    fn resolve_asking(
        &self,
        question: &str,
        prompt: Option<Prompt<'_>>,
        typed: Typed,
    ) -> Result<Zeroizing<String>, PasswordError> {
        let password = match (&self.file, &self.command) {
            (Some(_), Some(_)) => {
                return Err(PasswordError::Missing(
                    "a password file and a password command were both given: use one".into(),
                ))
            }
            (Some(file), None) => from_file(file)?,
            (None, Some(command)) => from_command(command)?,
            (None, None) => match (&self.env, prompt) {
                (Some(env), _) => env.clone(),
                (None, Some(prompt)) => {
                    let first = ask(prompt, question)?;
                    if typed == Typed::Twice
                        && *ask(prompt, "enter the same password again: ")? != *first
                    {
                        return Err(PasswordError::Missing(
                            "the two passwords typed differ: nothing was changed".into(),
                        ));
                    }
                    first
                }
                (None, None) => {
                    return Err(PasswordError::Missing(
                        "the repository is encrypted and no password was given".into(),
                    ))
                }
            },
        };
        if password.is_empty() {
            return Err(PasswordError::Missing("the password is empty".into()));
        }
        Ok(password)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Typed {
    Once,
    Twice,
}

fn ask(prompt: Prompt<'_>, question: &str) -> Result<Zeroizing<String>, PasswordError> {
    prompt(question).map(Zeroizing::new).map_err(|e| {
        if e.kind() == std::io::ErrorKind::Interrupted {
            PasswordError::Interrupted
        } else {
            PasswordError::Missing(format!("cannot read the password: {e}"))
        }
    })
}

/// The file's text, without a byte-order mark or the whitespace around it (as editors and
/// `echo` leave them).
fn from_file(path: &std::path::Path) -> Result<Zeroizing<String>, PasswordError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        PasswordError::Missing(format!(
            "cannot read the password file {}: {e}",
            path.display()
        ))
    })?);
    Ok(Zeroizing::new(
        text.trim_start_matches('\u{feff}').trim().to_string(),
    ))
}

/// What the command prints, trimmed. Run without a shell (its words split as a shell would);
/// its errors go to the terminal, its output never into a message.
fn from_command(command: &str) -> Result<Zeroizing<String>, PasswordError> {
    let words = shlex::split(command)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            PasswordError::Missing("the password command cannot be split into words".into())
        })?;
    let program = &words[0];
    let output = std::process::Command::new(program)
        .args(&words[1..])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            PasswordError::Missing(format!("cannot run the password command {program}: {e}"))
        })?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(PasswordError::Missing(format!(
            "the password command {program} failed ({})",
            output.status
        )));
    }
    let text = std::str::from_utf8(&stdout).map_err(|_| {
        PasswordError::Missing(format!("the password command {program} printed no text"))
    })?;
    Ok(Zeroizing::new(text.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(file: Option<PathBuf>, command: Option<&str>, env: Option<&str>) -> PasswordSources {
        PasswordSources {
            file,
            command: command.map(str::to_string),
            env: env.map(|e| Zeroizing::new(e.to_string())),
        }
    }

    #[test]
    fn each_source_gives_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "\u{feff}  from the file \n").unwrap();
        let got = |s: PasswordSources| s.resolve("password: ", None).map(|p| p.to_string());
        assert_eq!(
            got(sources(Some(file.clone()), None, None)).unwrap(),
            "from the file"
        );
        assert_eq!(
            got(sources(None, Some("printf '%s\\n' 'from a command'"), None)).unwrap(),
            "from a command"
        );
        assert_eq!(
            got(sources(None, None, Some("from env"))).unwrap(),
            "from env"
        );
        // A file or command wins over the environment.
        assert_eq!(
            got(sources(Some(file.clone()), None, Some("from env"))).unwrap(),
            "from the file"
        );
        let asked = |question: &str| -> std::io::Result<String> {
            assert_eq!(question, "password: ");
            Ok("typed".into())
        };
        let typed = sources(None, None, None)
            .resolve("password: ", Some(&asked))
            .unwrap();
        assert_eq!(typed.as_str(), "typed");
    }

    #[test]
    fn bad_sources_are_named_and_the_password_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret").unwrap();
        let err = |s: PasswordSources| s.resolve("password: ", None).unwrap_err().to_string();
        let both = err(sources(Some(file.clone()), Some("echo x"), None));
        assert!(both.contains("both given"), "{both}");
        let missing = err(sources(Some(dir.path().join("none")), None, None));
        assert!(
            missing.contains("cannot read the password file"),
            "{missing}"
        );
        let failing = err(sources(None, Some("sh -c 'echo secret; exit 3'"), None));
        assert!(failing.contains("password command sh failed"), "{failing}");
        assert!(!failing.contains("secret"), "{failing}");
        let none = err(sources(None, None, None));
        assert!(none.contains("no password was given"), "{none}");
        let empty = err(sources(None, None, Some("")));
        assert!(empty.contains("empty"), "{empty}");
        let shown = format!("{:?}", sources(None, Some("pass show x"), Some("secret")));
        assert!(
            !shown.contains("secret") && !shown.contains("pass show"),
            "{shown}"
        );
    }
}
