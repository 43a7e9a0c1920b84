//! What a drill remembers about a Chroma database: per-collection counts, and the top-k
//! neighbours of fixed probe queries taken from stored vectors.
//!
//! Search is approximate (HNSW). Restarting on the same files gives identical answers, so
//! after a restart or a byte-identical restore the neighbours must match exactly; after an
//! import or a rebuild the graph differs and only an overlap threshold is fair (DESIGN.md).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::{ChromaClient, ChromaError};

/// How many probe queries per collection, and how many neighbours each.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    pub probes: usize,
    pub k: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { probes: 10, k: 10 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetState {
    pub captured_at: DateTime<Utc>,
    pub collections: BTreeMap<String, CollectionState>,
}

impl TargetState {
    pub fn total_count(&self) -> u64 {
        self.collections.values().map(|c| c.count).sum()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.collections
            .iter()
            .map(|(name, c)| (name.clone(), c.count))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionState {
    pub id: String,
    pub count: u64,
    pub dimension: Option<u64>,
    pub probes: Vec<Probe>,
}

/// One probe query: a stored vector and the ids Chroma returned as its nearest neighbours.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub source_id: String,
    #[serde(skip_serializing)]
    #[serde(default)]
    pub vector: Vec<f32>,
    pub neighbours: Vec<String>,
}

/// Counts only: cheap enough for `count` steps and health checks.
pub async fn collection_counts(
    client: &ChromaClient,
) -> Result<BTreeMap<String, u64>, ChromaError> {
    let mut counts = BTreeMap::new();
    for collection in client.list_collections().await? {
        let count = client.count(&collection.id).await?;
        counts.insert(collection.name, count);
    }
    Ok(counts)
}

/// Counts plus probe neighbours for every collection (or only those named).
pub async fn capture(
    client: &ChromaClient,
    settings: ProbeSettings,
    only: Option<&[String]>,
) -> Result<TargetState, ChromaError> {
    let captured_at = Utc::now();
    let mut collections = BTreeMap::new();
    for collection in client.list_collections().await? {
        if only.is_some_and(|names| !names.contains(&collection.name)) {
            continue;
        }
        let count = client.count(&collection.id).await?;
        let probes = take_probes(client, &collection.id, count, settings).await?;
        collections.insert(
            collection.name.clone(),
            CollectionState {
                id: collection.id,
                count,
                dimension: collection.dimension,
                probes,
            },
        );
    }
    if let Some(names) = only {
        for name in names {
            if !collections.contains_key(name) {
                return Err(ChromaError::CollectionNotFound {
                    url: client.url().to_string(),
                    name: name.clone(),
                });
            }
        }
    }
    Ok(TargetState {
        captured_at,
        collections,
    })
}

/// Probe vectors are stored records spread evenly over the collection, so they are fixed for a
/// given state and need no random source.
async fn take_probes(
    client: &ChromaClient,
    collection_id: &str,
    count: u64,
    settings: ProbeSettings,
) -> Result<Vec<Probe>, ChromaError> {
    if count == 0 || settings.probes == 0 {
        return Ok(Vec::new());
    }
    let wanted = (settings.probes as u64).min(count);
    let mut sources = Vec::with_capacity(wanted as usize);
    for i in 0..wanted {
        let offset = i * count / wanted;
        let page = client
            .get_page(collection_id, offset, 1, &["embeddings"])
            .await?;
        if let (Some(id), Some(vector)) = (
            page.ids.into_iter().next(),
            page.embeddings.and_then(|e| e.into_iter().next()),
        ) {
            sources.push((id, vector));
        }
    }
    let vectors: Vec<Vec<f32>> = sources.iter().map(|(_, v)| v.clone()).collect();
    let neighbours = client.query(collection_id, &vectors, settings.k).await?;
    Ok(sources
        .into_iter()
        .zip(neighbours)
        .map(|((source_id, vector), neighbours)| Probe {
            source_id,
            vector,
            neighbours,
        })
        .collect())
}

/// How the current database differs from a captured state.
#[derive(Debug, Clone, Serialize)]
pub struct StateComparison {
    pub collections: Vec<CollectionComparison>,
    /// Collections present now that the captured state did not have.
    pub extra_collections: Vec<String>,
    /// Mean top-k overlap over every probe of every collection (1.0 = identical sets).
    pub mean_overlap: f64,
    /// The worst single probe.
    pub min_overlap: f64,
    /// Probes whose neighbour list came back in exactly the same order.
    pub identical_probes: usize,
    pub total_probes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionComparison {
    pub name: String,
    pub expected_count: u64,
    /// `None` when the collection is missing.
    pub actual_count: Option<u64>,
    pub mean_overlap: Option<f64>,
    pub min_overlap: Option<f64>,
}

impl StateComparison {
    pub fn counts_equal(&self) -> bool {
        self.collections
            .iter()
            .all(|c| c.actual_count == Some(c.expected_count))
    }

    /// Human lines for every count that differs.
    pub fn count_differences(&self) -> Vec<String> {
        self.collections
            .iter()
            .filter_map(|c| match c.actual_count {
                None => Some(format!(
                    "collection {:?} is missing (had {})",
                    c.name, c.expected_count
                )),
                Some(actual) if actual != c.expected_count => Some(format!(
                    "collection {:?} has {actual} records, expected {} ({:+})",
                    c.name,
                    c.expected_count,
                    actual as i64 - c.expected_count as i64
                )),
                Some(_) => None,
            })
            .collect()
    }
}

/// Re-run the captured probes and compare counts and neighbours.
pub async fn compare(
    client: &ChromaClient,
    baseline: &TargetState,
) -> Result<StateComparison, ChromaError> {
    let current = client.list_collections().await?;
    let mut collections = Vec::new();
    let (mut overlap_sum, mut min_overlap, mut identical, mut total) = (0.0, 1.0f64, 0, 0);
    for (name, expected) in &baseline.collections {
        let Some(live) = current.iter().find(|c| &c.name == name) else {
            collections.push(CollectionComparison {
                name: name.clone(),
                expected_count: expected.count,
                actual_count: None,
                mean_overlap: None,
                min_overlap: None,
            });
            min_overlap = 0.0;
            total += expected.probes.len();
            continue;
        };
        let count = client.count(&live.id).await?;
        let (mut sum, mut worst) = (0.0, 1.0f64);
        if !expected.probes.is_empty() {
            let vectors: Vec<Vec<f32>> = expected.probes.iter().map(|p| p.vector.clone()).collect();
            let k = expected.probes[0].neighbours.len().max(1);
            let answers = client.query(&live.id, &vectors, k).await?;
            for (probe, answer) in expected.probes.iter().zip(&answers) {
                let overlap = overlap(&probe.neighbours, answer);
                sum += overlap;
                worst = worst.min(overlap);
                identical += usize::from(&probe.neighbours == answer);
            }
        }
        let n = expected.probes.len();
        overlap_sum += sum;
        total += n;
        min_overlap = min_overlap.min(worst);
        collections.push(CollectionComparison {
            name: name.clone(),
            expected_count: expected.count,
            actual_count: Some(count),
            mean_overlap: (n > 0).then(|| sum / n as f64),
            min_overlap: (n > 0).then_some(worst),
        });
    }
    let extra_collections = current
        .iter()
        .filter(|c| !baseline.collections.contains_key(&c.name))
        .map(|c| c.name.clone())
        .collect();
    Ok(StateComparison {
        collections,
        extra_collections,
        mean_overlap: if total == 0 {
            1.0
        } else {
            overlap_sum / total as f64
        },
        min_overlap,
        identical_probes: identical,
        total_probes: total,
    })
}

/// Fraction of the expected neighbours found again, order ignored.
fn overlap(expected: &[String], actual: &[String]) -> f64 {
    if expected.is_empty() {
        return 1.0;
    }
    let actual: HashSet<&String> = actual.iter().collect();
    let found = expected.iter().filter(|id| actual.contains(id)).count();
    found as f64 / expected.len() as f64
}

#[cfg(test)]
mod tests {
    use super::overlap;

    #[test]
    fn overlap_ignores_order_and_counts_misses() {
        let ids = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(overlap(&ids(&["a", "b"]), &ids(&["b", "a"])), 1.0);
        assert_eq!(
            overlap(&ids(&["a", "b", "c", "d"]), &ids(&["a", "x", "c", "y"])),
            0.5
        );
        assert_eq!(overlap(&ids(&[]), &ids(&["a"])), 1.0);
    }
}
