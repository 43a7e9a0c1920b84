//! Deterministic synthetic data: the same `(seed, count, dim)` always writes the same ids,
//! vectors, documents and metadata, so drills and staging baselines start from a known shape.
//!
//! Records are generated batch by batch and upserted, so memory stays bounded and running the
//! same seed twice leaves the collection unchanged.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde_json::json;

use crate::progress::{Progress, Unit};
use crate::targets::chroma::{ChromaClient, ChromaError, Records};

#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub collection: String,
    pub count: u64,
    pub dim: usize,
    pub seed: u64,
    /// Records per upsert; capped by the server's own maximum.
    pub batch_size: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    pub collection: String,
    pub collection_id: String,
    pub written: u64,
    pub count_after: u64,
    pub dim: usize,
    pub seed: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

const WORDS: &[&str] = &[
    "vector",
    "index",
    "backup",
    "restore",
    "drill",
    "latency",
    "neighbour",
    "segment",
    "embedding",
    "collection",
    "recovery",
    "snapshot",
    "replica",
    "shard",
    "query",
    "document",
    "metadata",
    "cluster",
    "storage",
    "object",
    "archive",
    "verify",
    "journal",
    "heartbeat",
];

/// Generates records `start..start+len` of the deterministic sequence.
pub struct RecordGenerator {
    rng: ChaCha8Rng,
    dim: usize,
    next: u64,
}

impl RecordGenerator {
    pub fn new(seed: u64, dim: usize) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            dim,
            next: 0,
        }
    }

    /// The next `len` records; vectors are unit-length Gaussian samples.
    pub fn batch(&mut self, len: usize) -> Records {
        let mut records = Records {
            ids: Vec::with_capacity(len),
            embeddings: Vec::with_capacity(len),
            documents: Some(Vec::with_capacity(len)),
            metadatas: Some(Vec::with_capacity(len)),
        };
        for _ in 0..len {
            let i = self.next;
            self.next += 1;
            let mut vector: Vec<f32> = (0..self.dim)
                .map(|_| StandardNormal.sample(&mut self.rng))
                .collect();
            let norm = vector
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::EPSILON);
            vector.iter_mut().for_each(|x| *x /= norm);
            let words: Vec<&str> = (0..8)
                .map(|_| WORDS[self.rng.random_range(0..WORDS.len())])
                .collect();
            records.ids.push(record_id(i));
            records.embeddings.push(vector);
            if let Some(docs) = records.documents.as_mut() {
                docs.push(format!("document {i}: {}", words.join(" ")));
            }
            if let Some(metas) = records.metadatas.as_mut() {
                metas.push(json!({ "i": i, "group": i % 10, "source": "vecdrill-seed" }));
            }
        }
        records
    }
}

pub fn record_id(i: u64) -> String {
    format!("rec-{i:08}")
}

/// Write `count` deterministic records into `collection`, creating it if needed.
pub async fn seed(
    client: &ChromaClient,
    options: &SeedOptions,
    progress: &dyn Progress,
) -> Result<SeedSummary, ChromaError> {
    let started = std::time::Instant::now();
    let collection = client
        .get_or_create_collection(
            &options.collection,
            Some(
                json!({ "created_by": "vecdrill seed", "seed": options.seed, "dim": options.dim }),
            ),
        )
        .await?;
    let batch_size = options
        .batch_size
        .min(client.max_batch_size().await?)
        .max(1);
    let mut generator = RecordGenerator::new(options.seed, options.dim);
    let mut written = 0u64;
    progress.start("seeding", Some(options.count), Unit::Items);
    while written < options.count {
        let len = batch_size.min((options.count - written) as usize);
        let records = generator.batch(len);
        client.upsert(&collection.id, &records).await?;
        written += len as u64;
        progress.advance(len as u64);
    }
    progress.finish();
    let count_after = client.count(&collection.id).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(SeedSummary {
        collection: collection.name,
        collection_id: collection.id,
        written,
        count_after,
        dim: options.dim,
        seed: options.seed,
        seconds,
        rows_per_second: written as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_records_whatever_the_batching() {
        let mut one = RecordGenerator::new(7, 16);
        let whole = one.batch(10);
        let mut two = RecordGenerator::new(7, 16);
        let mut parts = two.batch(3);
        let rest = two.batch(7);
        parts.ids.extend(rest.ids);
        parts.embeddings.extend(rest.embeddings);
        assert_eq!(whole.ids, parts.ids);
        assert_eq!(whole.embeddings, parts.embeddings);
        let mut other = RecordGenerator::new(8, 16);
        assert_ne!(other.batch(10).embeddings, whole.embeddings);
    }

    #[test]
    fn vectors_are_unit_length() {
        let records = RecordGenerator::new(1, 64).batch(5);
        for v in records.embeddings {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        }
    }
}
