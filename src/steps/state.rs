//! `capture_state` and `compare_state`: remember counts and probe neighbours, then prove the
//! recovered database answers the same.

use crate::targets::spec::TargetKind;
use async_trait::async_trait;
use serde::Deserialize;

use super::{Objective, Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::chroma::state::{self, ProbeSettings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Name to compare against later; defaults to the step id.
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "default_probes")]
    probes: usize,
    #[serde(default = "default_k")]
    k: usize,
    /// Only these collections; default all.
    #[serde(default)]
    collections: Option<Vec<String>>,
    /// Pass with no collection or no record to probe; otherwise that fails, since an empty
    /// database is more often a wrong data directory than the state to compare with.
    #[serde(default)]
    allow_empty: bool,
    /// Capture another Chroma server than the target (an upgrade's old one, to compare the
    /// new one with).
    #[serde(default)]
    url: Option<String>,
}

fn default_probes() -> usize {
    ProbeSettings::default().probes
}

fn default_k() -> usize {
    ProbeSettings::default().k
}

pub const CAPTURE: StepKind = StepKind {
    name: "capture_state",
    summary: "remember per-collection counts and the top-k of `probes` fixed queries (of the target, or the server at `url`)",
    outputs: &["name", "total", "collections", "probes", "counts"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::CollectionsMin, Objective::Count],
    build: super::build::<Capture>,
};

#[async_trait]
impl Step for Capture {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let settings = ProbeSettings {
            probes: self.probes,
            k: self.k.max(1),
        };
        let client = ctx.chroma_at(self.url.as_deref())?;
        let captured = state::capture(&client, settings, self.collections.as_deref()).await?;
        let name = self.name.clone().unwrap_or_else(|| ctx.step_id.to_string());
        ctx.record_counts(captured.counts());
        let probes: usize = captured.collections.values().map(|c| c.probes.len()).sum();
        if !self.allow_empty && captured.collections.is_empty() {
            return Err(ctx.nothing_to_check("captured nothing: there is no collection"));
        }
        if !self.allow_empty && probes == 0 {
            return Err(ctx.nothing_to_check(&format!(
                "captured no probe: the {} collection(s) hold no record",
                captured.collections.len()
            )));
        }
        let out = outputs! {
            "name" => name,
            "total" => captured.total_count(),
            "collections" => captured.collections.len(),
            "probes" => probes,
            "counts" => captured.counts(),
        };
        ctx.memory.states.insert(name, captured);
        Ok(out)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// The captured state to compare with; defaults to the most recent one.
    #[serde(default)]
    against: Option<String>,
    /// Required mean top-k overlap. 1.0 (the default) demands the same neighbours, right for
    /// a restart or a byte-identical restore; an import or rebuild needs a lower threshold.
    #[serde(default = "default_overlap")]
    min_overlap: f64,
    /// Require equal per-collection counts.
    #[serde(default = "default_true")]
    counts: bool,
    /// Pass with no probe to compare; otherwise that fails (nothing was compared).
    #[serde(default)]
    allow_empty: bool,
}

fn default_overlap() -> f64 {
    1.0
}

fn default_true() -> bool {
    true
}

pub const COMPARE: StepKind = StepKind {
    name: "compare_state",
    summary: "compare counts and probe top-k with a captured state (`against`, `min_overlap`)",
    outputs: &[
        "mean_overlap",
        "min_overlap",
        "identical_probes",
        "total_probes",
        "counts_equal",
        "collections",
    ],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[Objective::CollectionsMin, Objective::Count],
    build: super::build::<Compare>,
};

#[async_trait]
impl Step for Compare {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let baseline = match &self.against {
            Some(name) => ctx.memory.states.get(name).ok_or_else(|| {
                StepError::Setup(format!(
                    "no state named {name:?} was captured before this step"
                ))
            })?,
            None => ctx
                .memory
                .states
                .values()
                .max_by_key(|s| s.captured_at)
                .ok_or_else(|| {
                    StepError::Setup(
                        "no state was captured before this step; add a `capture_state` step".into(),
                    )
                })?,
        };
        let comparison = state::compare(ctx.chroma()?, baseline).await?;
        if !self.allow_empty && comparison.total_probes == 0 {
            return Err(ctx.nothing_to_check(
                "compared nothing: the captured state holds no probe to ask again",
            ));
        }
        let counts = comparison
            .collections
            .iter()
            .filter_map(|c| c.actual_count.map(|n| (c.name.clone(), n)))
            .collect();
        ctx.record_counts(counts);
        let out = outputs! {
            "mean_overlap" => comparison.mean_overlap,
            "min_overlap" => comparison.min_overlap,
            "identical_probes" => comparison.identical_probes,
            "total_probes" => comparison.total_probes,
            "counts_equal" => comparison.counts_equal(),
            "collections" => &comparison.collections,
        };
        let mut problems = Vec::new();
        if self.counts {
            problems.extend(comparison.count_differences());
        }
        // Compare with a tolerance: the mean of 1.0s can land a hair under 1.0.
        if comparison.mean_overlap + 1e-9 < self.min_overlap {
            problems.push(format!(
                "top-k overlap {:.3} is below the required {:.3} ({} of {} probes identical, worst {:.2})",
                comparison.mean_overlap,
                self.min_overlap,
                comparison.identical_probes,
                comparison.total_probes,
                comparison.min_overlap
            ));
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(StepError::Mismatch {
                message: problems.join("; "),
                outputs: out,
            })
        }
    }
}
