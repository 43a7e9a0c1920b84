//! Hand-built reports for the writers' unit tests: one place that knows how to assemble a
//! `DrillReport` without running a drill, with hostile strings where people's text goes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{DrillReport, Failure, RtoSplit, TargetSummary, SCHEMA_VERSION};
use crate::drill::baseline::Baseline;
use crate::drill::objectives::ObjectiveResult;
use crate::drill::timeline::{MarkRecord, Phase, StepRecord, StepStatus};
use crate::latency::{LatencyPoint, LatencySummary};
use crate::scenario::Mark;

/// A scenario name, an error and a URL that break naive HTML or XML.
pub const HOSTILE_NAME: &str = "restart <script>alert('name')</script> & \"quotes\"";
pub const HOSTILE_ERROR: &str = "exited with 3: </td><script>alert(\"err\")</script> & <b>'x'</b>";

pub fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
}

fn at(offset_ms: i64) -> DateTime<Utc> {
    started() + Duration::milliseconds(offset_ms)
}

pub fn step(
    id: &str,
    kind: &str,
    offset_ms: Option<i64>,
    ms: f64,
    status: StepStatus,
) -> StepRecord {
    StepRecord {
        id: id.to_string(),
        kind: crate::steps::lookup(kind).expect("a step kind"),
        phase: Phase::Steps,
        status,
        started_at: offset_ms.map(at),
        duration_ms: ms,
        attempts: 1,
        error: matches!(
            status,
            StepStatus::Failed | StepStatus::FailedIgnored | StepStatus::Interrupted
        )
        .then(|| HOSTILE_ERROR.to_string()),
        mark: None,
        outputs: BTreeMap::new(),
    }
}

pub fn objective(name: &str, passed: bool, skipped: bool, detail: &str) -> ObjectiveResult {
    ObjectiveResult {
        name: name.to_string(),
        target: "500ms".to_string(),
        measured: Some("120ms".to_string()),
        unit: "ms",
        target_value: 500.0,
        measured_value: Some(120.0),
        passed,
        step: Some("latency".to_string()),
        detail: detail.to_string(),
        baseline_value: Some(100.0),
        change_pct: Some(20.0),
        skipped,
    }
}

pub fn latency(distribution: Vec<LatencyPoint>) -> LatencySummary {
    LatencySummary {
        queries: 200,
        errors: 0,
        concurrency: 4,
        rate: None,
        qps: 850.0,
        duration_ms: 235.0,
        mean_ms: 4.1,
        p50_ms: 3.5,
        p90_ms: 6.0,
        p99_ms: 14.0,
        max_ms: 22.0,
        queue_delay_p99_ms: 0.0,
        queue_delay_max_ms: 0.0,
        first_error: None,
        distribution,
    }
}

pub fn distribution() -> Vec<LatencyPoint> {
    [
        (0.0, 1.2),
        (10.0, 2.0),
        (50.0, 3.5),
        (90.0, 6.0),
        (95.0, 8.0),
        (99.0, 14.0),
        (99.9, 20.0),
        (100.0, 22.0),
    ]
    .into_iter()
    .map(|(percentile, ms)| LatencyPoint { percentile, ms })
    .collect()
}

/// A failed run with every section filled: hostile scenario name and errors, a failing, a
/// passing and a skipped objective, a failed, an ignored, a skipped step and a rollback.
pub fn report() -> DrillReport {
    let mut crash = step("crash", "fault", Some(1_500), 40.0, StepStatus::Passed);
    crash.mark = Some(Mark::Disaster);
    let mut verify = step(
        "verify",
        "compare_state",
        Some(6_000),
        900.0,
        StepStatus::Passed,
    );
    verify.mark = Some(Mark::Recovered);
    let mut undo = step("undo", "start", Some(9_200), 700.0, StepStatus::Passed);
    undo.phase = Phase::Rollback;
    DrillReport {
        schema_version: SCHEMA_VERSION,
        run_id: "restart-20260301-093000".to_string(),
        vecdrill_version: "0.1.0".to_string(),
        host: "drill-host".to_string(),
        scenario: HOSTILE_NAME.to_string(),
        description: Some("Kill <Chroma> & bring it back".to_string()),
        scenario_file: "scenarios/restart.yaml".to_string(),
        target: TargetSummary {
            kind: "chroma".to_string(),
            url: "http://127.0.0.1:8000/?a=1&b=<2>".to_string(),
            service: Some("process: chroma run --path 'data'".to_string()),
        },
        run_dir: "reports/restart-20260301-093000".to_string(),
        started_at: started(),
        finished_at: at(10_000),
        duration_ms: 10_000.0,
        passed: false,
        interrupted: false,
        exit_code: 1,
        rto_ms: Some(5_400.0),
        rto_split: Some(RtoSplit {
            platform_ms: 2_000.0,
            verification_ms: 3_400.0,
        }),
        rpo_ms: None,
        marks: vec![
            MarkRecord {
                mark: Mark::Disaster,
                at: at(1_500),
            },
            MarkRecord {
                mark: Mark::Recovered,
                at: at(6_900),
            },
        ],
        objectives: vec![
            objective("rto", true, false, "met with 1m 55s to spare"),
            objective("search_p99", false, false, "missed by 13ms <&> 'p99'"),
            objective("search_p90", true, true, "skipped: no baseline"),
        ],
        steps: vec![
            step("start", "start", Some(0), 1_200.0, StepStatus::Passed),
            step("up", "wait_healthy", Some(1_200), 0.0, StepStatus::Passed),
            crash,
            step("restart", "start", Some(1_540), 2_000.0, StepStatus::Passed),
            step(
                "flaky",
                "shell",
                Some(3_540),
                10.0,
                StepStatus::FailedIgnored,
            ),
            verify,
            step("boom", "shell", Some(7_000), 2_000.0, StepStatus::Failed),
            step("never", "sleep", None, 0.0, StepStatus::Skipped),
        ],
        rollback: vec![undo],
        failure: Some(Failure {
            step: "boom".to_string(),
            kind: crate::steps::lookup("shell").expect("a step kind"),
            reason: HOSTILE_ERROR.to_string(),
        }),
        latency: Some(latency(distribution())),
        counts: BTreeMap::from([("docs".to_string(), 2_990), ("faq".to_string(), 1_200)]),
        baseline: Some(Baseline {
            scenario: HOSTILE_NAME.to_string(),
            run_id: "restart-20260201-093000".to_string(),
            run_started_at: at(-28 * 24 * 3_600_000),
            set_at: at(-27 * 24 * 3_600_000),
            p50_ms: Some(3.0),
            p90_ms: Some(5.0),
            p99_ms: Some(10.0),
            counts: BTreeMap::from([("docs".to_string(), 3_000)]),
        }),
    }
}

/// A passed run with `n` steps and nothing else: no marks, latency, counts or baseline.
pub fn bare_report(n: usize) -> DrillReport {
    let mut report = report();
    report.passed = true;
    report.exit_code = 0;
    report.failure = None;
    report.marks.clear();
    report.rto_ms = None;
    report.rto_split = None;
    report.objectives.clear();
    report.rollback.clear();
    report.latency = None;
    report.counts.clear();
    report.baseline = None;
    report.steps = (0..n)
        .map(|i| {
            let offset = i as i64 * 300;
            step(
                &format!("step-{i}"),
                "sleep",
                Some(offset),
                300.0,
                StepStatus::Passed,
            )
        })
        .collect();
    report.duration_ms = n as f64 * 300.0;
    report
}
