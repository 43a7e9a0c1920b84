//! `report.junit.xml`: the run as JUnit XML, so a CI system that schedules drills shows each
//! objective and step as a test. One suite per run, named after the scenario: objectives are
//! test cases of class `objectives`, steps of class `steps` and `rollback`.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::DrillReport;
use crate::drill::objectives::ObjectiveResult;
use crate::drill::timeline::{Phase, StepRecord, StepStatus};
use crate::duration::from_ms;

/// `report.junit.xml`.
pub struct Junit;

impl super::ReportWriter for Junit {
    fn file_name(&self) -> &'static str {
        "report.junit.xml"
    }

    fn render(&self, report: &DrillReport) -> std::io::Result<String> {
        Ok(render(report))
    }
}

pub fn render(report: &DrillReport) -> String {
    let mut suite = TestSuite::new(report.scenario.as_str());
    suite
        .set_timestamp(report.started_at)
        .set_time(from_ms(report.duration_ms))
        .add_properties([
            Property::new("run_id", report.run_id.as_str()),
            Property::new("host", report.host.as_str()),
            Property::new("vecdrill_version", report.vecdrill_version.as_str()),
            Property::new(
                "target",
                format!("{} {}", report.target.kind, report.target.url),
            ),
            Property::new("exit_code", report.exit_code.to_string()),
        ])
        .add_test_cases(report.objectives.iter().map(objective_case))
        .add_test_cases(report.steps.iter().chain(&report.rollback).map(step_case));
    let mut junit = Report::new("vecdrill");
    junit
        .set_timestamp(report.started_at)
        .set_time(from_ms(report.duration_ms))
        .add_test_suite(suite);
    // Serialising into memory cannot fail: there is no I/O, and every string is UTF-8.
    junit.to_string().expect("JUnit XML serialises into memory")
}

fn objective_case(objective: &ObjectiveResult) -> TestCase {
    let status = if objective.skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(objective.detail.as_str());
        status
    } else if objective.passed {
        TestCaseStatus::success()
    } else {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(objective.detail.as_str())
            .set_type("objective");
        status
    };
    let mut case = TestCase::new(objective.name.as_str(), status);
    case.set_classname("objectives");
    case.add_properties([
        Property::new("target", objective.target.as_str()),
        Property::new(
            "measured",
            objective.measured.as_deref().unwrap_or("not measured"),
        ),
    ]);
    case
}

fn step_case(step: &StepRecord) -> TestCase {
    let error = step.error.as_deref();
    let status = match step.status {
        StepStatus::Passed | StepStatus::FailedIgnored => TestCaseStatus::success(),
        StepStatus::Skipped => TestCaseStatus::skipped(),
        StepStatus::Failed | StepStatus::Interrupted => {
            let kind = match step.status {
                StepStatus::Interrupted => "interrupted",
                _ => "failed",
            };
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(error.unwrap_or(kind)).set_type(kind);
            status
        }
    };
    let mut case = TestCase::new(format!("{} ({})", step.id, step.kind), status);
    case.set_classname(match step.phase {
        Phase::Steps => "steps",
        Phase::Rollback => "rollback",
    })
    .set_time(from_ms(step.duration_ms));
    if let Some(at) = step.started_at {
        case.set_timestamp(at);
    }
    // `continue_on_error` let the run go on; the error still belongs in the record.
    if let (StepStatus::FailedIgnored, Some(error)) = (step.status, error) {
        case.set_system_out(format!("failed (ignored): {error}"));
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    fn cases<'a>(doc: &'a roxmltree::Document) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect()
    }

    fn case<'a>(doc: &'a roxmltree::Document, name: &str) -> roxmltree::Node<'a, 'a> {
        cases(doc)
            .into_iter()
            .find(|c| c.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no testcase {name}"))
    }

    fn child<'a>(node: roxmltree::Node<'a, 'a>, tag: &str) -> Option<roxmltree::Node<'a, 'a>> {
        node.children().find(|c| c.has_tag_name(tag))
    }

    #[test]
    fn one_case_per_objective_and_step_with_failures_and_skips_counted() {
        let report = sample::report();
        let xml = render(&report);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("name"), Some("vecdrill"));
        let suites: Vec<_> = root
            .children()
            .filter(|c| c.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 1);
        let suite = suites[0];
        assert_eq!(suite.attribute("name"), Some(sample::HOSTILE_NAME));
        assert_eq!(suite.attribute("time"), Some("10.000"));
        assert!(suite
            .attribute("timestamp")
            .is_some_and(|t| t.starts_with("2026-03-01T09:30:00")));

        // 3 objectives, 8 steps, 1 rollback step.
        assert_eq!(cases(&doc).len(), 12);
        assert_eq!(suite.attribute("tests"), Some("12"));
        // search_p99 missed, boom failed.
        assert_eq!(suite.attribute("failures"), Some("2"));
        // search_p90 skipped, never skipped.
        assert_eq!(suite.attribute("skipped"), Some("2"));

        let missed = case(&doc, "search_p99");
        assert_eq!(missed.attribute("classname"), Some("objectives"));
        let failure = child(missed, "failure").expect("a failure");
        assert_eq!(
            failure.attribute("message"),
            Some("missed by 13ms <&> 'p99'")
        );
        assert_eq!(failure.attribute("type"), Some("objective"));
        assert!(child(case(&doc, "rto"), "failure").is_none());
        assert!(child(case(&doc, "search_p90"), "skipped").is_some());

        let boom = case(&doc, "boom (shell)");
        assert_eq!(boom.attribute("classname"), Some("steps"));
        assert_eq!(boom.attribute("time"), Some("2.000"));
        assert_eq!(
            child(boom, "failure").and_then(|f| f.attribute("message")),
            Some(sample::HOSTILE_ERROR)
        );
        let flaky = case(&doc, "flaky (shell)");
        assert!(child(flaky, "failure").is_none());
        assert!(child(flaky, "system-out").is_some());
        assert!(child(case(&doc, "never (sleep)"), "skipped").is_some());
        assert_eq!(
            case(&doc, "undo (start)").attribute("classname"),
            Some("rollback")
        );
    }

    #[test]
    fn an_interrupted_step_is_a_failure() {
        let mut report = sample::bare_report(2);
        report.steps[1].status = StepStatus::Interrupted;
        report.steps[1].error = None;
        let xml = render(&report);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let failure = child(case(&doc, "step-1 (sleep)"), "failure").expect("a failure");
        assert_eq!(failure.attribute("message"), Some("interrupted"));
        assert_eq!(failure.attribute("type"), Some("interrupted"));
    }
}
