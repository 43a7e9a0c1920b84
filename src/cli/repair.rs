//! `repair index`: a repository's pack indexes written again from its packs (restic's
//! `repair index`), for when an index was lost or damaged and `prune` refuses or a backup
//! does not restore.

use clap::{Args, Subcommand};
use vecdrill::exit;
use vecdrill::repo::repair::repair_index;

use super::repo_args::RepoArg;
use super::{print_json, Failure};

#[derive(Args)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub command: RepairCommand,
}

#[derive(Subcommand)]
pub enum RepairCommand {
    /// Write missing, damaged or wrong pack indexes again from their packs (each pack repeats
    /// its index in a trailer). Damaged and missing packs, and objects under packs/ where no
    /// pack belongs, are named and left as they are.
    Index(RepairIndexArgs),
}

#[derive(Args)]
pub struct RepairIndexArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Read every pack, not only those without a readable index of their size, and write again
    /// every index that differs from its pack's trailer.
    #[arg(long)]
    pub read_all_packs: bool,
    /// Say what would be written and removed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was done as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RepairArgs) -> Result<i32, Failure> {
    let RepairCommand::Index(args) = args.command;
    let repo = args.repo.open().await?;
    let repair = repair_index(&repo, args.read_all_packs, args.dry_run).await?;
    let code = if repair.whole() {
        exit::SUCCESS
    } else {
        exit::FAILED
    };
    if args.json {
        print_json(&repair);
        return Ok(code);
    }
    // The verbs for each object, then for the totals.
    let (rebuilt, removed, dry, written, gone) = match repair.dry_run {
        true => (
            "would write",
            "would remove",
            "dry run: ",
            "to write",
            "to remove",
        ),
        false => ("wrote", "removed", "", "written", "removed"),
    };
    for done in &repair.rebuilt {
        say_shown!("{rebuilt} {}: {}", done.object, done.why);
    }
    for done in &repair.removed {
        say_shown!("{removed} {}: {}", done.object, done.why);
    }
    for damaged in &repair.damaged {
        say_shown!("DAMAGED {}: {}; left as it is", damaged.object, damaged.why);
    }
    for missing in &repair.missing {
        say_shown!("MISSING {}: {}", missing.object, missing.why);
    }
    for stray in &repair.strays {
        say_shown!("NOT A PACK {}: {}", stray.object, stray.why);
    }
    say!(
        "{dry}{} pack(s), {} read; {} index(es) {written}, {} {gone}; {} damaged and {} missing pack(s)",
        repair.packs,
        repair.packs_read,
        repair.rebuilt.len(),
        repair.removed.len(),
        repair.damaged.len(),
        repair.missing.len()
    );
    if !repair.whole() {
        return Err(Failure {
            message: format!(
                "{} pack(s) damaged and {} missing: the chunks in them cannot be read",
                repair.damaged.len(),
                repair.missing.len()
            ),
            hint: Some("a pack moved by hand goes back where its name says (packs/<first 2 hex>/<name>); `vecdrill verify --repo URL` names the backups that used the others: restore an older backup that verifies, and `vecdrill forget` the damaged ones, after which `prune` reclaims the packs".into()),
            code,
        });
    }
    Ok(code)
}
