//! Progress reporting as a library trait; the CLI implements it with indicatif on a terminal
//! and the library never draws anything itself.

/// Receives progress of one long operation at a time.
pub trait Progress: Send + Sync {
    /// A new phase begins; `total` is known for bars, `None` for spinners.
    fn start(&self, _label: &str, _total: Option<u64>) {}
    fn advance(&self, _delta: u64) {}
    fn finish(&self) {}
}

/// For `--json`, tests and anything without a terminal.
pub struct NoProgress;

impl Progress for NoProgress {}
