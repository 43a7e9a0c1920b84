//! `vecdrill menu`: seed 002's interactive tool, for someone at a terminal who would rather be
//! shown the choices than remember ids and flags. Every choice is turned into the command line
//! that does the same, which is shown (for next time, or a script) and then run exactly as
//! typed, through the same parser and the same functions: the menu cannot do anything the
//! commands do not.

use std::io::{BufRead, IsTerminal, Write};

use clap::Parser;
use vecdrill::exit;
use vecdrill::repo::format::Manifest;
use vecdrill::repo::password::PasswordSources;
use vecdrill::repo::{RepoError, Repository};
use vecdrill::text::printable;

use super::repo_args::PasswordArgs;
use super::{prompt, Failure};

#[derive(clap::Args)]
pub struct MenuArgs {
    /// The repository to work on (asked when not given).
    #[arg(long, env = "VECDRILL_REPO")]
    pub repo: Option<String>,
    /// The Chroma directory to back up and restore (asked when needed; by default the
    /// newest backup's, when it is on this host).
    #[arg(long)]
    pub chroma_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

const CHOICES: &[&str] = &[
    "create a backup",
    "list backups",
    "show a backup",
    "verify a backup",
    "restore a backup (the current data backed up first)",
    "copy a backup to another repository",
    "remove a backup (forget)",
    "exit",
];

/// Backups offered to choose from, newest first.
const SHOWN_BACKUPS: usize = 15;

pub async fn run(args: MenuArgs) -> Result<i32, Failure> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(Failure {
            message: "`vecdrill menu` asks questions, and there is no terminal to ask them on"
                .into(),
            hint: Some(
                "run it at a terminal, or run the commands it runs (`vecdrill --help` lists them)"
                    .into(),
            ),
            code: exit::BAD_INPUT,
        });
    }
    let Some(mut menu) = Menu::new(args).await? else {
        return Ok(exit::SUCCESS);
    };
    loop {
        say!("");
        say!("vecdrill — repository {}", menu.shown_url());
        for (n, choice) in CHOICES.iter().enumerate() {
            say!("  {}) {choice}", n + 1);
        }
        let Some(answer) = ask(&format!("choose [1-{}]", CHOICES.len())).await? else {
            return Ok(exit::SUCCESS);
        };
        let done = match answer.as_str() {
            "1" => menu.create_backup().await?,
            "2" => menu.list().await?,
            "3" => menu.show().await?,
            "4" => menu.verify().await?,
            "5" => menu.restore().await?,
            "6" => menu.copy().await?,
            "7" => menu.forget().await?,
            "8" | "q" | "exit" | "quit" => return Ok(exit::SUCCESS),
            other => {
                say_shown!("{other:?} is not one of the choices");
                Step::Asked
            }
        };
        if done == Step::Ended {
            return Ok(exit::SUCCESS);
        }
    }
}

/// A backup chosen, or why none was.
enum Chosen {
    Backup(String),
    /// There is none to choose: back to the menu.
    Back,
    /// The terminal closed.
    Ended,
}

impl Chosen {
    fn step(self) -> Step {
        match self {
            Self::Ended => Step::Ended,
            _ => Step::Asked,
        }
    }
}

/// How a choice ended: back to the menu, or the terminal closed (Ctrl-D).
#[derive(PartialEq, Eq)]
enum Step {
    Asked,
    Ended,
}

struct Menu {
    url: String,
    password: PasswordArgs,
    /// The repository, once it exists.
    repo: Option<Repository>,
    chroma_dir: Option<String>,
}

impl Menu {
    /// The menu on the repository given or asked for (`None`: the terminal closed).
    async fn new(args: MenuArgs) -> Result<Option<Self>, Failure> {
        let url = match args.repo {
            Some(url) => url,
            None => match ask("repository URL [file://./backups]").await? {
                Some(url) if !url.is_empty() => url,
                Some(_) => "file://./backups".into(),
                None => return Ok(None),
            },
        };
        let mut menu = Self {
            url,
            password: args.password,
            repo: None,
            chroma_dir: args.chroma_dir.map(|d| d.display().to_string()),
        };
        menu.open().await?;
        Ok(Some(menu))
    }

    /// Open the repository, asking its password at most once for the whole session (the
    /// commands run from here are answered from memory).
    async fn open(&mut self) -> Result<(), Failure> {
        let sources: PasswordSources = self.password.sources();
        match Repository::open_with(&self.url, &sources, prompt::remembering()).await {
            Ok(repo) => {
                if self.chroma_dir.is_none() {
                    self.chroma_dir = newest_source_here(&repo).await;
                }
                self.repo = Some(repo);
                Ok(())
            }
            Err(RepoError::NotARepository { .. }) => {
                say_shown!(
                    "{} holds no repository yet: the first backup creates it",
                    self.shown_url()
                );
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    fn shown_url(&self) -> String {
        vecdrill::redaction::redact_url(&self.url)
    }

    /// `--repo URL` and the password options given to the menu, for a command line.
    fn repo_args(&self) -> Vec<String> {
        let mut args = vec!["--repo".to_string(), self.url.clone()];
        if let Some(file) = &self.password.password_file {
            args.extend(["--password-file".into(), file.display().to_string()]);
        }
        if let Some(command) = &self.password.password_command {
            args.extend(["--password-command".into(), command.clone()]);
        }
        args
    }

    /// The Chroma directory, asked each time it is needed (the last answer is the default).
    async fn chroma_dir(&mut self) -> Result<Option<String>, Failure> {
        let default = self
            .chroma_dir
            .clone()
            .unwrap_or_else(|| "./data/chroma".into());
        let Some(answer) = ask(&format!("Chroma directory [{default}]")).await? else {
            return Ok(None);
        };
        let dir = if answer.is_empty() { default } else { answer };
        self.chroma_dir = Some(dir.clone());
        Ok(Some(dir))
    }

    async fn create_backup(&mut self) -> Result<Step, Failure> {
        let Some(dir) = self.chroma_dir().await? else {
            return Ok(Step::Ended);
        };
        let Some(hot) =
            ask_yes_no("is a server running on it (then the copy is hot)?", false).await?
        else {
            return Ok(Step::Ended);
        };
        let Some(tag) = ask("name (a tag; Enter for none) []").await? else {
            return Ok(Step::Ended);
        };
        let mut line = vec!["backup".to_string()];
        line.extend(self.repo_args());
        line.extend(["--chroma-dir".into(), dir]);
        if hot {
            line.extend(["--mode".into(), "hot".into()]);
        }
        if !tag.is_empty() {
            line.extend(["--tag".into(), tag]);
        }
        let succeeded = run_line(&line).await;
        if succeeded && self.repo.is_none() {
            self.open().await?;
        }
        Ok(Step::Asked)
    }

    async fn list(&mut self) -> Result<Step, Failure> {
        let mut line = vec!["list".to_string()];
        line.extend(self.repo_args());
        run_line(&line).await;
        Ok(Step::Asked)
    }

    async fn show(&mut self) -> Result<Step, Failure> {
        let id = match self.choose_backup("show", false).await? {
            Chosen::Backup(id) => id,
            other => return Ok(other.step()),
        };
        let mut line = vec!["info".to_string()];
        line.extend(self.repo_args());
        line.push(id);
        run_line(&line).await;
        Ok(Step::Asked)
    }

    async fn verify(&mut self) -> Result<Step, Failure> {
        let id = match self.choose_backup("verify", false).await? {
            Chosen::Backup(id) => id,
            other => return Ok(other.step()),
        };
        let Some(read) = ask_yes_no("read every byte back (slower, complete)?", true).await? else {
            return Ok(Step::Ended);
        };
        let mut line = vec!["verify".to_string()];
        line.extend(self.repo_args());
        line.push(id);
        if read {
            line.push("--read-data".into());
        }
        run_line(&line).await;
        Ok(Step::Asked)
    }

    /// Seed 002's restore: the plan shown, the current data backed up into the repository,
    /// a confirmation, then the restore (which checks the restored copy before swapping it
    /// in, and keeps the current data beside it).
    async fn restore(&mut self) -> Result<Step, Failure> {
        let id = match self.choose_backup("restore", false).await? {
            Chosen::Backup(id) => id,
            other => return Ok(other.step()),
        };
        let Some(dir) = self.chroma_dir().await? else {
            return Ok(Step::Ended);
        };
        let mut restore = vec!["restore".to_string()];
        restore.extend(self.repo_args());
        restore.extend([id.clone(), "--to".into(), dir.clone()]);
        let mut plan = restore.clone();
        plan.push("--dry-run".into());
        if !run_line(&plan).await {
            return Ok(Step::Asked);
        }
        let has_data = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
        if has_data {
            say!("first, a backup of the data there now:");
            let mut backup = vec!["backup".to_string()];
            backup.extend(self.repo_args());
            backup.extend([
                "--chroma-dir".into(),
                dir.clone(),
                "--tag".into(),
                "pre-restore".into(),
            ]);
            if !run_line(&backup).await {
                say!("the current data could not be backed up (see above); the restore still keeps it beside the restored directory as a safety copy");
            }
        }
        let question = format!("replace {dir} with backup {id}?");
        match ask_yes_no(&question, false).await? {
            None => return Ok(Step::Ended),
            Some(false) => {
                say!("nothing restored");
                return Ok(Step::Asked);
            }
            Some(true) => {}
        }
        restore.push("--yes".into());
        if run_line(&restore).await {
            say!("verified: every restored file matched its recorded hash, and the database passed its checks and counts, before it was swapped in");
        }
        Ok(Step::Asked)
    }

    async fn copy(&mut self) -> Result<Step, Failure> {
        let id = match self.choose_backup("copy", false).await? {
            Chosen::Backup(id) => id,
            other => return Ok(other.step()),
        };
        let Some(to) = ask("copy into repository (URL) []").await? else {
            return Ok(Step::Ended);
        };
        if to.is_empty() {
            say!("nothing copied");
            return Ok(Step::Asked);
        }
        let mut line = vec!["copy".to_string(), "--from-repo".into(), self.url.clone()];
        if let Some(file) = &self.password.password_file {
            line.extend(["--from-password-file".into(), file.display().to_string()]);
        }
        if let Some(command) = &self.password.password_command {
            line.extend(["--from-password-command".into(), command.clone()]);
        }
        line.extend(["--repo".into(), to, id]);
        run_line(&line).await;
        Ok(Step::Asked)
    }

    /// One backup removed, after a confirmation that defaults to no; `prune` reclaims its
    /// space later.
    async fn forget(&mut self) -> Result<Step, Failure> {
        let id = match self.choose_backup("remove", true).await? {
            Chosen::Backup(id) => id,
            other => return Ok(other.step()),
        };
        let question =
            format!("remove backup {id} from the repository? it cannot be restored afterwards");
        match ask_yes_no(&question, false).await? {
            None => return Ok(Step::Ended),
            Some(false) => {
                say!("nothing removed");
                return Ok(Step::Asked);
            }
            Some(true) => {}
        }
        let mut line = vec!["forget".to_string()];
        line.extend(self.repo_args());
        line.push(id);
        run_line(&line).await;
        Ok(Step::Asked)
    }

    /// The newest backups, numbered; the one chosen, by id (never `latest`, which a backup
    /// taken on the way, such as a restore's, would move). Backups whose manifest cannot be
    /// read are shown too; with `damaged_too` (removing) one of them is chosen by its id.
    /// `q` goes back to the menu.
    async fn choose_backup(&mut self, what: &str, damaged_too: bool) -> Result<Chosen, Failure> {
        let backups = match &self.repo {
            Some(repo) => repo.scan().await?,
            None => vecdrill::repo::Backups::default(),
        };
        let newest: Vec<&Manifest> = backups.manifests.iter().rev().take(SHOWN_BACKUPS).collect();
        for damaged in &backups.damaged {
            say_shown!(
                "  DAMAGED {}: {}{}",
                damaged.backup_id(),
                damaged.problem,
                if damaged_too {
                    " (type its id to remove it)"
                } else {
                    ""
                }
            );
        }
        if newest.is_empty() && (!damaged_too || backups.damaged.is_empty()) {
            say!("there are no backups yet: create one first");
            return Ok(Chosen::Back);
        }
        let repo = self.repo.as_ref().expect("backups were read from it");
        for (n, m) in newest.iter().enumerate() {
            say_shown!(
                "  {:>2}) {}  {}  {}  {}{}",
                n + 1,
                m.id,
                m.created_at.format("%Y-%m-%d %H:%M"),
                m.source_label(),
                vecdrill::units::bytes(m.totals.logical_bytes),
                if m.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", m.tags.join(", "))
                }
            );
        }
        let default = if newest.is_empty() { "" } else { "1" };
        loop {
            let question = format!("{what} which backup (number or id, q to go back) [{default}]");
            let Some(answer) = ask(&question).await? else {
                return Ok(Chosen::Ended);
            };
            let answer = if answer.is_empty() {
                default.to_string()
            } else {
                answer
            };
            if answer == "q" {
                return Ok(Chosen::Back);
            }
            if let Some(m) = answer
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| newest.get(i))
            {
                return Ok(Chosen::Backup(m.id.clone()));
            }
            if damaged_too && backups.damaged.iter().any(|d| d.backup_id() == answer) {
                return Ok(Chosen::Backup(answer));
            }
            match repo.manifest(&answer).await {
                Ok(m) => return Ok(Chosen::Backup(m.id)),
                Err(err) => say_shown!("{err}"),
            }
        }
    }
}

/// The directory of the newest backup's source, when it is on this host.
async fn newest_source_here(repo: &Repository) -> Option<String> {
    let newest = repo.readable_manifests().await.ok()?.pop()?;
    (newest.hostname == vecdrill::repo::lock::hostname()
        && std::path::Path::new(&newest.source.path).is_dir())
    .then_some(newest.source.path)
}

/// Show `line` as a shell command line, then run it as `vecdrill` would; whether it
/// succeeded. Its failure is shown and the menu goes on.
async fn run_line(line: &[String]) -> bool {
    let shown: Vec<String> = line
        .iter()
        .map(|word| {
            shlex::try_quote(&vecdrill::redaction::redact_url(word))
                .map(|q| q.into_owned())
                .unwrap_or_else(|_| word.clone())
        })
        .collect();
    say_shown!("$ vecdrill {}", shown.join(" "));
    let parsed = match crate::Cli::try_parse_from(
        std::iter::once("vecdrill".to_string()).chain(line.iter().cloned()),
    ) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("{err}");
            return false;
        }
    };
    let Some(command) = parsed.command else {
        return false;
    };
    let result = Box::pin(crate::dispatch(command)).await;
    match result {
        Ok(code) if code == exit::SUCCESS => true,
        Ok(code) => {
            say!("(exit {code})");
            false
        }
        Err(failure) => {
            eprintln!("error: {}", printable(&failure.message));
            if let Some(hint) = failure.hint {
                eprintln!("hint: {}", printable(&hint));
            }
            say!("(exit {})", failure.code);
            false
        }
    }
}

/// Ask `question` on the terminal (it ends in `[default]`, shown as `QUESTION> `); the answer
/// trimmed, or `None` when the terminal closed (Ctrl-D).
/// The line is read on a blocking thread, so that Ctrl-C at a question interrupts at once.
async fn ask(question: &str) -> Result<Option<String>, Failure> {
    print_prompt(&format!("{question}> "));
    let read = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|n| (n, answer))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|read| read);
    match read {
        Ok((0, _)) => {
            say!("");
            Ok(None)
        }
        Ok((_, answer)) => Ok(Some(answer.trim().to_string())),
        Err(err) => Err(Failure {
            message: format!("cannot read the terminal: {err}"),
            hint: None,
            code: exit::RUNTIME,
        }),
    }
}

fn print_prompt(text: &str) {
    super::write_text(text);
    let _ = std::io::stdout().flush();
}

/// Ask until the answer is yes or no (Enter takes `default`, shown in capitals); `None` when
/// the terminal ended. Anything else is asked again, not taken for either.
async fn ask_yes_no(question: &str, default: bool) -> Result<Option<bool>, Failure> {
    let choices = if default { "[Y/n]" } else { "[y/N]" };
    loop {
        let Some(answer) = ask(&format!("{question} {choices}")).await? else {
            return Ok(None);
        };
        match answer.to_ascii_lowercase().as_str() {
            "" => return Ok(Some(default)),
            "y" | "yes" => return Ok(Some(true)),
            "n" | "no" => return Ok(Some(false)),
            _ => say!("answer y or n"),
        }
    }
}
