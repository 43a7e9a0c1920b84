//! Where a run's result is sent: the `notify:` block of a scenario, or `--notify` on `backup`.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::HumanDuration;

/// `notify: { webhook: URL, on: failure|always }` in a scenario, or `--notify` on `backup`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    pub webhook: String,
    #[serde(default)]
    pub on: NotifyOn,
    /// Per attempt.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Attempts after the first, with a growing pause between them.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    #[default]
    Failure,
    Always,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_retries() -> u32 {
    3
}

impl NotifySpec {
    pub fn new(webhook: String, on: NotifyOn) -> Self {
        Self {
            webhook,
            on,
            timeout: default_timeout(),
            retries: default_retries(),
        }
    }

    pub fn wants(&self, passed: bool) -> bool {
        self.on == NotifyOn::Always || !passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_only_notifications_skip_passed_runs() {
        let spec = NotifySpec::new("http://x".into(), NotifyOn::Failure);
        assert!(!spec.wants(true));
        assert!(spec.wants(false));
        assert!(NotifySpec::new("http://x".into(), NotifyOn::Always).wants(true));
    }
}
