//! Progress reporting as a library trait; the CLI implements it with indicatif on a terminal
//! and the library never draws anything itself.

/// What a phase counts, so that it can be shown in the units people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    /// Records, packs, files: whole things, counted.
    Items,
}

/// Receives progress of one long operation at a time.
pub trait Progress: Send + Sync {
    /// A new phase begins; `total` (in `unit`s) is known for bars, `None` for spinners.
    fn start(&self, _label: &str, _total: Option<u64>, _unit: Unit) {}
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}

/// For `--json`, tests and anything without a terminal.
pub struct NoProgress;

impl Progress for NoProgress {}
