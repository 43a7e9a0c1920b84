//! `check_faiss`: read the target's index files and compare them with the restored backup:
//! each parses, with the recorded type, dimension and `ntotal`.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::faiss::{self, FaissIndexInfo, IndexContent};
use crate::targets::faiss_redis;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckFaiss {
    /// Index files; default `target.faiss`.
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    repo: Option<String>,
}

pub const KIND: StepKind = StepKind {
    name: "check_faiss",
    summary:
        "parse the index files (`files`, default target.faiss); compare with the restored backup",
    outputs: &["indexes", "ntotal", "probes"],
    needs_service: false,
    targets: &[TargetKind::FaissRedis],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<CheckFaiss>,
};

#[async_trait]
impl Step for CheckFaiss {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let files = if self.files.is_empty() {
            ctx.target
                .as_kind::<faiss_redis::FaissRedisSpec>()
                .map(|spec| spec.faiss.clone())
                .unwrap_or_default()
        } else {
            self.files.clone()
        };
        if files.is_empty() {
            return Err(StepError::Setup(
                "no index files: list them in `target.faiss` or `files:`".into(),
            ));
        }
        let recorded = match ctx.memory.restored.clone() {
            Some((backup, _)) => {
                let repo = ctx.open_repo(self.repo.as_deref()).await?;
                faiss_redis::described(&repo.manifest(&backup).await?).map(|d| d.faiss)
            }
            None => None,
        };
        let mut found = serde_json::Map::new();
        let mut problems = Vec::new();
        let (mut total, mut probes) = (0u64, 0usize);
        for path in &files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (info, content): (FaissIndexInfo, IndexContent) =
                faiss::inspect_content(path).map_err(|e| StepError::Check(e.to_string()))?;
            total += info.ntotal;
            if let Some(expected) = recorded
                .as_ref()
                .and_then(|r| r.iter().find(|i| i.name == name))
            {
                if expected.info != info {
                    problems.push(format!(
                        "{name}: {}; the backup recorded {}",
                        faiss_redis::describe_index(&info),
                        faiss_redis::describe_index(&expected.info)
                    ));
                } else if let Some(problem) = content_differs(&expected.content, &content) {
                    problems.push(format!("{name}: {problem}"));
                } else {
                    probes += expected.content.probes.len();
                }
            }
            found.insert(name, serde_json::to_value(&info).unwrap_or_default());
        }
        let outputs = outputs! { "indexes" => &found, "ntotal" => total, "probes" => probes };
        if !problems.is_empty() {
            return Err(StepError::Mismatch {
                message: problems.join("; "),
                outputs,
            });
        }
        Ok(outputs)
    }
}

/// How a restored index's content differs from what its backup recorded (nothing recorded:
/// nothing to differ): a flat index must answer each probe query with exactly the recorded
/// neighbours, an ID map and an IVF index's lists hold exactly the recorded ids.
fn content_differs(recorded: &IndexContent, found: &IndexContent) -> Option<String> {
    for probe in &recorded.probes {
        let answered = found.probes.iter().find(|p| p.query == probe.query);
        if answered.map(|p| &p.neighbours) != Some(&probe.neighbours) {
            return Some(format!(
                "the probe query of its vector {} answers {:?}; the backup recorded {:?}",
                probe.query,
                answered.map(|p| p.neighbours.clone()).unwrap_or_default(),
                probe.neighbours
            ));
        }
    }
    let differs = |want: &Option<String>, got: &Option<String>| want.is_some() && want != got;
    if differs(&recorded.ids_blake3, &found.ids_blake3) {
        return Some("its ids are not the ones the backup recorded".into());
    }
    if differs(&recorded.list_ids_blake3, &found.list_ids_blake3) {
        return Some("its inverted lists do not hold the ids the backup recorded".into());
    }
    None
}
