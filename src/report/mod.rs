//! Drill reports: `report.json` (the machine-readable record, schema in the README),
//! `report.md` (what you attach to a monthly drill record), `report.html` (one self-contained
//! page with charts, to share), `report.junit.xml` (objectives and steps as tests, for CI) and
//! the terminal summary.
//! Writers only format; every figure is computed by the drill runner.

use std::path::Path;

pub mod html;
pub mod junit;
pub mod markdown;
#[cfg(test)]
mod sample;
pub mod terminal;

pub use crate::drill::outcome::*;

/// One file a drill run writes into its run directory. A new format is a module with a
/// writer and a line in [`WRITERS`].
pub trait ReportWriter: Sync {
    /// Its name in the run directory.
    fn file_name(&self) -> &'static str;
    fn render(&self, report: &DrillReport) -> std::io::Result<String>;
}

/// `report.json`: the machine-readable record (schema in the README).
pub struct Json;

impl ReportWriter for Json {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, report: &DrillReport) -> std::io::Result<String> {
        serde_json::to_string_pretty(report).map_err(std::io::Error::other)
    }
}

/// Every file format a run is written in, in the order they are written.
pub static WRITERS: &[&dyn ReportWriter] =
    &[&Json, &markdown::Markdown, &junit::Junit, &html::Html];

/// Write every [`WRITERS`] file into the run directory, each atomically (synced under a
/// temporary name, then renamed) so a reader never sees half a report.
pub fn write_files(report: &DrillReport, run_dir: &Path) -> std::io::Result<()> {
    for writer in WRITERS {
        let text = writer.render(report)?;
        crate::atomic_file::write(&run_dir.join(writer.file_name()), text.as_bytes())?;
    }
    Ok(())
}
