//! The commands as library functions: an options struct in, a result out, no printing, no
//! prompts, no history. The command line (`src/cli/`) and the drill steps (`src/steps/`) both
//! call these, so a command and its step can never disagree.

pub mod backup;
pub mod verify;
