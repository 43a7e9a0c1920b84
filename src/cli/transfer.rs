//! `export` and `import`: collections to and from the documented export file.

use std::path::PathBuf;

use clap::Args;
use vecdrill::exit;
use vecdrill::export::api::ApiExportOptions;
use vecdrill::export::import::ImportOptions;
use vecdrill::export::{api, import, offline, Selection, TransferSummary};
use vecdrill::repo::Repository;
use vecdrill::targets::chroma::ChromaClient;

use super::{print_json, progress::for_terminal, Failure};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["url", "chroma_dir", "repo"]))]
#[command(group = clap::ArgGroup::new("which").required(true).args(["collections", "all"]))]
pub struct ExportArgs {
    /// A running Chroma server.
    #[arg(long)]
    pub url: Option<String>,
    /// A Chroma persistent directory, read with no server (stop the server first).
    #[arg(long)]
    pub chroma_dir: Option<PathBuf>,
    /// A backup repository (with --backup); only the needed files are fetched.
    #[arg(long)]
    pub repo: Option<String>,
    /// With --repo: backup id, unique prefix, or `latest`.
    #[arg(long, default_value = "latest", requires = "repo")]
    pub backup: String,
    #[command(flatten)]
    pub password: super::repo_args::PasswordArgs,
    /// Collection to export (repeatable).
    #[arg(long = "collection")]
    pub collections: Vec<String>,
    /// Export every collection.
    #[arg(long)]
    pub all: bool,
    /// Output file (JSON lines; zstd-compressed when it ends in .zst).
    #[arg(long)]
    pub out: PathBuf,
    /// With --url: records per request.
    #[arg(long, default_value_t = 1000)]
    pub page_size: u64,
    /// With --url: requests in flight.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// With --repo: where the needed backup files are staged (default: beside --out).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
    /// Print the export summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The Chroma server to import into.
    #[arg(long)]
    pub url: String,
    /// An export file written by `vecdrill export` (plain or .zst).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Import only this collection (repeatable); default: every collection in the file.
    #[arg(long = "collection")]
    pub collections: Vec<String>,
    /// Import the one selected collection under another name.
    #[arg(long = "as", requires = "collections")]
    pub rename: Option<String>,
    /// Records per upsert (capped at the server's maximum batch size).
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Upserts in flight.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Print the import summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn export(args: ExportArgs) -> Result<i32, Failure> {
    let progress = for_terminal(args.json);
    // clap makes --all and --collection exclusive: no names means every collection.
    let which = Selection::of(&args.collections);
    let summary = if let Some(url) = &args.url {
        let options = ApiExportOptions {
            page_size: args.page_size,
            parallel: args.parallel,
        };
        api::export(
            &ChromaClient::new(url),
            &which,
            &args.out,
            options,
            progress.as_ref(),
        )
        .await?
    } else if let Some(dir) = &args.chroma_dir {
        let (dir, which, out) = (dir.clone(), which.clone(), args.out.clone());
        let bar = for_terminal(args.json);
        tokio::task::spawn_blocking(move || offline::export_dir(&dir, &which, &out, bar.as_ref()))
            .await
            .map_err(|e| Failure {
                message: format!("export task: {e}"),
                hint: None,
                code: exit::RUNTIME,
            })??
    } else {
        let url = args.repo.as_deref().expect("clap requires a source");
        let repo =
            Repository::open_with(url, &args.password.sources(), super::prompt::for_terminal())
                .await?;
        let scratch = args.scratch_dir.clone().unwrap_or_else(|| {
            args.out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
        });
        offline::export_backup(
            &repo,
            &args.backup,
            &which,
            &args.out,
            &scratch,
            progress.as_ref(),
        )
        .await?
    };
    report(&summary, "exported", "to", args.json);
    Ok(exit::SUCCESS)
}

pub async fn import(args: ImportArgs) -> Result<i32, Failure> {
    let progress = for_terminal(args.json);
    let options = ImportOptions {
        selection: Selection::of(&args.collections),
        rename: args.rename.clone(),
        batch_size: args.batch_size,
        parallel: args.parallel,
    };
    let summary = import::import(
        &ChromaClient::new(&args.url),
        &args.input,
        &options,
        progress.as_ref(),
    )
    .await?;
    report(&summary, "imported", "from", args.json);
    Ok(exit::SUCCESS)
}

fn report(summary: &TransferSummary, verb: &str, preposition: &str, json: bool) {
    if json {
        print_json(summary);
        return;
    }
    for c in &summary.collections {
        say!(
            "  {:<30} {:>10} records (count {})",
            c.name,
            c.records,
            c.count
        );
    }
    say!(
        "{verb} {} collections, {} records {preposition} {} in {:.1}s ({:.0} rows/s)",
        summary.collections.len(),
        summary.records,
        summary.file,
        summary.seconds,
        summary.rows_per_second
    );
}
