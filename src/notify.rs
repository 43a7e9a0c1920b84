//! Alerts: a webhook POST of a JSON summary after a drill or backup, with a Slack-compatible
//! `text` field so a Slack (or Mattermost, Better Stack, ...) incoming webhook shows it as is.
//!
//! A notification is best effort by design: it is retried and then given up, and its failure
//! is reported but never changes the verdict of the drill or backup it describes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::duration::format_ms as ms;
use crate::history::RunRecord;
use crate::redaction::redact_webhook;
use crate::report::DrillReport;
pub use crate::scenario::notify::{NotifyOn, NotifySpec};

#[derive(Debug, thiserror::Error)]
#[error("notification to {webhook} failed after {attempts} attempt(s): {reason}")]
pub struct NotifyError {
    /// The webhook without its path, which often is the secret.
    pub webhook: String,
    pub attempts: u32,
    pub reason: String,
}

/// POST `payload`, retrying connection failures, timeouts, 429 and 5xx. Returns the attempts
/// it took.
pub async fn send(spec: &NotifySpec, payload: &Value) -> Result<u32, NotifyError> {
    let failed = |attempts, reason: String| NotifyError {
        webhook: redact_webhook(&spec.webhook),
        attempts,
        reason,
    };
    let client = crate::net::client_builder()
        .timeout(spec.timeout.as_duration())
        .build()
        .map_err(|e| failed(0, e.to_string()))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (retryable, reason) = match client.post(&spec.webhook).json(payload).send().await {
            Ok(response) if response.status().is_success() => return Ok(attempt),
            Ok(response) => {
                let status = response.status();
                (
                    status.is_server_error() || status.as_u16() == 429,
                    format!("the webhook answered {status}"),
                )
            }
            // The error's own text names the full URL; keep only its kind.
            Err(err) if err.is_timeout() => (true, "timed out".to_string()),
            Err(err) if err.is_connect() => (true, "could not connect".to_string()),
            Err(err) if err.is_builder() => (false, "the webhook URL is not valid".to_string()),
            Err(_) => (true, "the request failed".to_string()),
        };
        if !retryable || attempt > spec.retries {
            return Err(failed(attempt, reason));
        }
        tracing::info!("notification attempt {attempt} failed ({reason}); retrying");
        tokio::time::sleep(Duration::from_millis(500 << (attempt - 1).min(4))).await;
    }
}

/// What a drill's notification says.
pub fn drill_summary(report: &DrillReport) -> Value {
    let verdict = report.verdict();
    let mut text = format!(
        "vecdrill drill {} {verdict} on {} ({})",
        report.scenario, report.host, report.target.url
    );
    if let Some(rto) = report.rto_ms {
        text.push_str(&format!("; RTO {}", ms(rto)));
    }
    if let Some(failure) = &report.failure {
        text.push_str(&format!(
            "\nstep {} ({}) failed: {}",
            failure.step, failure.kind, failure.reason
        ));
    }
    for o in report.objectives.iter().filter(|o| !o.passed) {
        text.push_str(&format!(
            "\nobjective {} (target {}) missed: {}",
            o.name, o.target, o.detail
        ));
    }
    text.push_str(&format!("\nreport: {}", report.run_dir));
    json!({
        "text": text,
        "event": "drill",
        "verdict": verdict,
        "passed": report.passed,
        "scenario": report.scenario,
        "run_id": report.run_id,
        "host": report.host,
        "target": report.target.url,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "rto_ms": report.rto_ms,
        "rpo_ms": report.rpo_ms,
        "exit_code": report.exit_code,
        "failure": report.failure,
        "objectives": report.objectives.iter().map(|o| json!({
            "name": o.name,
            "target": o.target,
            "measured": o.measured,
            "passed": o.passed,
            "detail": o.detail,
        })).collect::<Vec<_>>(),
        "report_dir": report.run_dir,
    })
}

/// What a backup's notification says; `error` is the failure's message when it failed.
pub fn backup_summary(run: &RunRecord, error: Option<&str>) -> Value {
    let repo = run.repo.as_deref().unwrap_or_default();
    let text = match (error, &run.backup_id) {
        (Some(error), _) => format!(
            "vecdrill backup of {} to {repo} FAILED on {}: {error}",
            run.target, run.host
        ),
        (None, Some(id)) => format!(
            "vecdrill backup {id} of {} to {repo} succeeded on {} in {}",
            run.target,
            run.host,
            ms(run.duration_ms)
        ),
        (None, None) => format!(
            "vecdrill backup of {} to {repo}: skipped, the newest backup is recent enough",
            run.target
        ),
    };
    json!({
        "text": text,
        "event": "backup",
        "verdict": if run.passed { "PASSED" } else { "FAILED" },
        "passed": run.passed,
        "repo": repo,
        "target": run.target,
        "host": run.host,
        "backup_id": run.backup_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "logical_bytes": run.logical_bytes,
        "stored_bytes": run.stored_bytes,
        "exit_code": run.exit_code,
        "error": error,
    })
}
