//! Month-by-month trend of a scenario's drills: the figures a monthly recovery drill is
//! judged on (RTO, RPO, search p90), each month's median with its change from the month
//! before.

use serde::Serialize;

use super::RunRecord;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrendMonth {
    /// `YYYY-MM`, UTC.
    pub month: String,
    pub runs: usize,
    pub passed: usize,
    /// Median over the month's runs that measured it.
    pub rto_ms: Option<f64>,
    /// Change from the previous month that measured it, in percent.
    pub rto_change_pct: Option<f64>,
    pub rpo_ms: Option<f64>,
    pub rpo_change_pct: Option<f64>,
    pub search_p90_ms: Option<f64>,
    pub search_p90_change_pct: Option<f64>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

fn change(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    crate::percent::change(now?, before?)
}

/// `runs` in any order; months in time order.
pub fn monthly<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> Vec<TrendMonth> {
    let mut months: std::collections::BTreeMap<String, Vec<&RunRecord>> = Default::default();
    for run in runs {
        months
            .entry(run.started_at.format("%Y-%m").to_string())
            .or_default()
            .push(run);
    }
    let mut out: Vec<TrendMonth> = Vec::new();
    let (mut last_rto, mut last_rpo, mut last_p90) = (None, None, None);
    for (month, runs) in months {
        let rto_ms = median(runs.iter().filter_map(|r| r.rto_ms).collect());
        let rpo_ms = median(runs.iter().filter_map(|r| r.rpo_ms).collect());
        let search_p90_ms = median(runs.iter().filter_map(|r| r.p90_ms).collect());
        out.push(TrendMonth {
            month,
            runs: runs.len(),
            passed: runs.iter().filter(|r| r.passed).count(),
            rto_ms,
            rto_change_pct: change(rto_ms, last_rto),
            rpo_ms,
            rpo_change_pct: change(rpo_ms, last_rpo),
            search_p90_ms,
            search_p90_change_pct: change(search_p90_ms, last_p90),
        });
        last_rto = rto_ms.or(last_rto);
        last_rpo = rpo_ms.or(last_rpo);
        last_p90 = search_p90_ms.or(last_p90);
    }
    out
}
