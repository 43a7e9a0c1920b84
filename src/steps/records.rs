//! `sample_records` and `compare_records`: a sample of records read from a data directory
//! offline (before a server starts on it), then fetched by id from the server and compared
//! exactly (vector, document, metadata): the server serves what is on disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::outputs;
use crate::targets::chroma::client::ChromaClient;
use crate::targets::chroma::offline::{OfflineDatabase, OfflineRecord};
use crate::targets::spec::TargetKind;

/// Records sampled per collection, by collection name.
pub type Sample = BTreeMap<String, Vec<OfflineRecord>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecords {
    /// Name to compare against later; defaults to `records`.
    #[serde(default = "default_name")]
    name: String,
    /// Records per collection, spread evenly over it.
    #[serde(default = "default_per_collection")]
    per_collection: usize,
    /// These records too, by collection (the records a backup's probe queries are, for
    /// `compare_neighbours`).
    #[serde(default)]
    also: BTreeMap<String, Vec<String>>,
    /// The directory to read; defaults to `target.data_dir`.
    #[serde(default)]
    data_dir: Option<PathBuf>,
}

fn default_name() -> String {
    "records".into()
}

fn default_per_collection() -> usize {
    50
}

pub const SAMPLE: StepKind = StepKind {
    name: "sample_records",
    summary: "read `per_collection` (50) records of each collection (and those `also` names) from `data_dir` offline, to compare a server with",
    outputs: &["name", "collections", "records"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<SampleRecords>,
};

#[async_trait]
impl Step for SampleRecords {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let dir = ctx.data_dir(self.data_dir.as_deref())?;
        let (per_collection, also) = (self.per_collection.max(1), self.also.clone());
        let (sample, counts) =
            tokio::task::spawn_blocking(move || read_sample(&dir, per_collection, &also))
                .await
                .map_err(|e| StepError::Setup(format!("sampling task: {e}")))?
                .map_err(StepError::Check)?;
        let records: usize = sample.values().map(Vec::len).sum();
        if records == 0 {
            return Err(ctx.nothing_to_check("sampled no record: the directory holds none"));
        }
        let out = outputs! {
            "name" => self.name.clone(),
            "collections" => sample.len(),
            "records" => records,
        };
        ctx.memory.samples.insert(self.name.clone(), sample);
        ctx.memory.sample_counts.insert(self.name.clone(), counts);
        Ok(out)
    }
}

/// Up to `per_collection` records of each collection, every (count / per_collection)th in
/// the order Chroma pages them, and those `also` names; with each collection's count as the
/// files say a server must answer it (its log replayed).
fn read_sample(
    dir: &std::path::Path,
    per_collection: usize,
    also: &BTreeMap<String, Vec<String>>,
) -> Result<(Sample, BTreeMap<String, u64>), String> {
    let db = OfflineDatabase::open(dir).map_err(|e| e.to_string())?;
    let mut sample = Sample::new();
    let counts = db
        .collections()
        .iter()
        .map(|c| (c.info.name.clone(), c.info.count))
        .collect();
    for collection in db.collections() {
        let stride = (collection.info.count as usize / per_collection).max(1);
        let named: std::collections::HashSet<&str> = also
            .get(&collection.info.name)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut picked = Vec::new();
        // Only the records kept have their vectors read.
        let wanted = |at: u64, id: &str| {
            let at = at as usize;
            (at % stride == 0 && at / stride < per_collection) || named.contains(id)
        };
        db.for_each_record_where(collection, wanted, |record| -> Result<(), String> {
            picked.push(record);
            Ok(())
        })?;
        sample.insert(collection.info.name.clone(), picked);
    }
    Ok((sample, counts))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRecords {
    /// The sample to compare with (`sample_records`' `name`).
    #[serde(default = "default_name")]
    against: String,
}

pub const COMPARE: StepKind = StepKind {
    name: "compare_records",
    summary: "fetch a sample's records by id from the server and compare them exactly (vector, document, metadata)",
    outputs: &["compared", "mismatches"],
    needs_service: false,
    targets: &[TargetKind::Chroma],
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<CompareRecords>,
};

#[async_trait]
impl Step for CompareRecords {
    async fn run(&self, ctx: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let (sample, client, ids_of) = sample_and_server(ctx, &self.against).await?;
        let mut problems = Vec::new();
        let mut compared = 0usize;
        for (name, records) in sample {
            let Some(id) = ids_of.get(name) else {
                problems.push(format!("collection {name:?} is missing"));
                continue;
            };
            let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
            let page = client
                .get_by_ids(id, &ids, &["embeddings", "documents", "metadatas"])
                .await?;
            for record in records {
                compared += 1;
                if let Some(problem) = differs(record, &page) {
                    problems.push(format!(
                        "collection {name:?} record {:?}: {problem}",
                        record.id
                    ));
                }
            }
        }
        let out = outputs! {
            "compared" => compared,
            "mismatches" => problems.len(),
        };
        if compared == 0 {
            return Err(ctx.nothing_to_check("compared no record"));
        }
        match problems.first() {
            None => Ok(out),
            Some(first) => Err(StepError::Mismatch {
                message: format!(
                    "{} of {compared} records differ; first: {first}",
                    problems.len()
                ),
                outputs: out,
            }),
        }
    }
}

/// What comparing a sample with the server starts from: the sample named `against`, the
/// server's client, and its collections' ids by name.
pub(super) async fn sample_and_server<'s>(
    ctx: &'s StepContext<'_>,
    against: &str,
) -> Result<(&'s Sample, &'s ChromaClient, BTreeMap<String, String>), StepError> {
    let sample = ctx.memory.samples.get(against).ok_or_else(|| {
        StepError::Setup(format!(
            "no sample named {against:?} was taken before this step"
        ))
    })?;
    let client = ctx.chroma()?;
    let ids_of = client
        .list_collections()
        .await?
        .into_iter()
        .map(|c| (c.name, c.id))
        .collect();
    Ok((sample, client, ids_of))
}

/// How the server's answer for `record` differs from it, if it does.
fn differs(
    record: &OfflineRecord,
    page: &crate::targets::chroma::client::RecordPage,
) -> Option<String> {
    let Some(at) = page.ids.iter().position(|id| *id == record.id) else {
        return Some("the server does not have it".into());
    };
    let embedding = page.embeddings.as_ref().and_then(|e| e.get(at));
    if embedding != Some(&record.embedding) {
        return Some("its vector differs".into());
    }
    let document = page
        .documents
        .as_ref()
        .and_then(|d| d.get(at).cloned().flatten());
    if document != record.document {
        return Some("its document differs".into());
    }
    let metadata = page
        .metadatas
        .as_ref()
        .and_then(|m| m.get(at).cloned().flatten())
        .filter(|m| !m.is_null());
    let recorded = record.metadata.clone().map(serde_json::Value::Object);
    if metadata != recorded {
        return Some("its metadata differs".into());
    }
    None
}
