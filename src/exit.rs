//! Exit codes: part of the public interface, relied on by scripts and cron jobs.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success; every objective met |
//! | 1    | an objective was missed, a step failed, or a verification failed |
//! | 2    | bad usage or bad input (invalid scenario, malformed file, unknown flag) |
//! | 3    | could not run: a service, network or storage failure |
//! | 130  | interrupted (after rollback ran) |

pub const SUCCESS: i32 = 0;
pub const FAILED: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const RUNTIME: i32 = 3;
pub const INTERRUPTED: i32 = 130;

/// What to do when a disk filled up, whichever command met it.
pub const DISK_FULL_HINT: &str = "the filesystem is full: free space there (`vecdrill prune` removes old backups from a repository), or use another location; what was committed before is intact";

/// Whether an error's message shows the OS's "no space left on device" (ENOSPC), for errors
/// that carry the OS error only as text.
pub fn says_disk_full(message: &str) -> bool {
    message.contains(&std::io::Error::from_raw_os_error(28).to_string())
}

/// Every library error knows which exit code it maps to and what the user can do next.
pub trait Classify {
    fn exit_code(&self) -> i32;
    /// One line telling the user what to do next, when there is something useful to say.
    fn hint(&self) -> Option<String> {
        None
    }
}
