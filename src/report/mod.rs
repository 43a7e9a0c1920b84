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

/// Write `report.json`, `report.md`, `report.junit.xml` and `report.html` into the run
/// directory, each atomically (written to a temporary name, then renamed) so a reader never
/// sees half a report.
pub fn write_files(report: &DrillReport, run_dir: &Path) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    write_atomic(&run_dir.join("report.json"), json.as_bytes())?;
    write_atomic(
        &run_dir.join("report.md"),
        markdown::render(report).as_bytes(),
    )?;
    write_atomic(
        &run_dir.join("report.junit.xml"),
        junit::render(report).as_bytes(),
    )?;
    write_atomic(
        &run_dir.join("report.html"),
        html::render(report).as_bytes(),
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut temp = crate::atomic_file::create(path)?;
    temp.write_all(bytes)?;
    let (file, temp_path) = temp.into_parts();
    crate::atomic_file::persist(&file, temp_path, path)
}
