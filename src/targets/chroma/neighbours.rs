//! Exact nearest neighbours, computed offline from a directory's stored vectors: what a backup
//! records so that a proof can judge a restored server's search (HNSW, approximate) by recall
//! against the truth rather than against another approximate answer.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::layout::ExactProbe;
use super::offline::{OfflineCollection, OfflineDatabase};
use super::state::ProbeSettings;

/// The distance Chroma answers with in `space` (`l2` is squared, as hnswlib's).
pub fn distance(space: &str, a: &[f32], b: &[f32]) -> f32 {
    let dot = || a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    match space {
        "ip" => 1.0 - dot(),
        "cosine" => {
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let lengths = norm(a) * norm(b);
            if lengths == 0.0 {
                1.0
            } else {
                1.0 - dot() / lengths
            }
        }
        _ => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
    }
}

/// A candidate neighbour, ordered by distance then id (so that ties are decided the same way
/// every time); the heap's greatest is the farthest kept.
#[derive(PartialEq)]
struct Candidate(f32, String);

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// The `k` nearest seen so far of one query vector.
struct Nearest {
    record: String,
    vector: Vec<f32>,
    heap: BinaryHeap<Candidate>,
}

impl Nearest {
    fn offer(&mut self, space: &str, k: usize, id: &str, vector: &[f32]) {
        let d = distance(space, &self.vector, vector);
        let nearer = |far: &Candidate| d.total_cmp(&far.0).then_with(|| id.cmp(&far.1)).is_lt();
        if self.heap.len() < k {
            self.heap.push(Candidate(d, id.to_string()));
        } else if self.heap.peek().is_some_and(nearer) {
            self.heap.pop();
            self.heap.push(Candidate(d, id.to_string()));
        }
    }

    fn into_probe(self) -> ExactProbe {
        let nearest = self.heap.into_sorted_vec();
        ExactProbe {
            record: self.record,
            distances: nearest.iter().map(|c| c.0).collect(),
            neighbours: nearest.into_iter().map(|c| c.1).collect(),
        }
    }
}

/// Exact probes of `collection`: the first `settings.probes` vectors a search searches (in
/// the index's storage order) as queries, each compared with every vector, in one sequential
/// read. Memory holds the query vectors and `k` candidates each, whatever the collection's
/// size.
pub fn exact_probes(
    db: &OfflineDatabase,
    collection: &OfflineCollection,
    settings: ProbeSettings,
) -> Result<Vec<ExactProbe>, String> {
    let (space, k) = (collection.space.as_str(), settings.k.max(1));
    let mut queries: Vec<Nearest> = Vec::with_capacity(settings.probes);
    // The vectors read before the last query was known, to show each later query.
    let mut early: Vec<(String, Vec<f32>)> = Vec::new();
    db.for_each_vector(collection, |id, vector| {
        if queries.len() < settings.probes {
            let mut query = Nearest {
                record: id.to_string(),
                vector: vector.to_vec(),
                heap: BinaryHeap::new(),
            };
            for (id, vector) in &early {
                query.offer(space, k, id, vector);
            }
            queries.push(query);
            if queries.len() < settings.probes {
                early.push((id.to_string(), vector.to_vec()));
            } else {
                early = Vec::new();
            }
        }
        for query in &mut queries {
            query.offer(space, k, id, vector);
        }
        Ok(())
    })?;
    Ok(queries.into_iter().map(Nearest::into_probe).collect())
}

/// `settings.probes` exact probes of each collection in `dir` (a consistent copy: nothing may
/// write to it meanwhile), by collection id.
pub fn probes_of(
    dir: &std::path::Path,
    settings: ProbeSettings,
) -> Result<BTreeMap<String, Vec<ExactProbe>>, String> {
    let db = OfflineDatabase::open(dir).map_err(|e| e.to_string())?;
    db.collections()
        .iter()
        .map(|c| Ok((c.info.id.clone(), exact_probes(&db, c, settings)?)))
        .collect()
}

/// How many of `probe`'s recorded neighbours a server's answer (ids with their distances, as
/// many as it was asked for) holds at their recorded distances, as a fraction of those
/// recorded. An answered record that is not recorded but lies as far as the farthest recorded
/// one is a tie, and counts; one that lies nearer would have been recorded, and one answered
/// at another distance has another vector: neither is the backup's.
pub fn recall(tolerance: f32, probe: &ExactProbe, answer: &[(String, f32)]) -> f64 {
    if probe.neighbours.is_empty() {
        return 1.0;
    }
    let recorded: HashMap<&str, f32> = probe
        .neighbours
        .iter()
        .map(String::as_str)
        .zip(probe.distances.iter().copied())
        .collect();
    let farthest = probe.distances.last().copied().unwrap_or(0.0);
    let same = |a: f32, b: f32| (a - b).abs() <= tolerance * b.abs().max(1.0);
    let found = answer
        .iter()
        .filter(|(id, d)| match recorded.get(id.as_str()) {
            Some(distance) => same(*d, *distance),
            None => same(*d, farthest),
        })
        .count()
        .min(probe.neighbours.len());
    found as f64 / probe.neighbours.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_chromas() {
        let (a, b) = ([1.0, 0.0], [0.0, 2.0]);
        assert_eq!(distance("l2", &a, &b), 5.0);
        assert_eq!(distance("ip", &a, &b), 1.0);
        assert!((distance("cosine", &a, &[2.0, 0.0])).abs() < 1e-6);
        assert!((distance("cosine", &a, &b) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn recall_counts_recorded_neighbours_at_their_distances_and_ties_only() {
        let probe = ExactProbe {
            record: "a".into(),
            neighbours: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            distances: vec![0.0, 0.1, 0.4, 0.5],
        };
        let answer = |ids: &[(&str, f32)]| -> Vec<(String, f32)> {
            ids.iter().map(|(i, d)| (i.to_string(), *d)).collect()
        };
        let all = answer(&[("d", 0.5), ("c", 0.4), ("b", 0.1), ("a", 0.0)]);
        assert_eq!(recall(1e-4, &probe, &all), 1.0);
        // "x" ties with "d"; "n" is nearer than "d" and was not recorded; "c" at another
        // distance has another vector: neither is the backup's.
        let tie = answer(&[("a", 0.0), ("b", 0.1), ("c", 0.4), ("x", 0.5)]);
        assert_eq!(recall(1e-4, &probe, &tie), 1.0);
        let nearer = answer(&[("a", 0.0), ("b", 0.1), ("c", 0.4), ("n", 0.45)]);
        assert_eq!(recall(1e-4, &probe, &nearer), 0.75);
        let moved = answer(&[("a", 0.0), ("b", 0.1), ("c", 0.3), ("d", 0.5)]);
        assert_eq!(recall(1e-4, &probe, &moved), 0.75);
        let miss = answer(&[("a", 0.0), ("y", 0.9), ("z", 0.9), ("b", 0.1)]);
        assert_eq!(recall(1e-4, &probe, &miss), 0.5);
        assert_eq!(recall(1e-4, &probe, &[]), 0.0);
        // A longer answer holding them all, farther records after: all found, never more.
        let longer = answer(&[
            ("a", 0.0),
            ("b", 0.1),
            ("c", 0.4),
            ("d", 0.5),
            ("x", 0.5),
            ("y", 0.9),
        ]);
        assert_eq!(recall(1e-4, &probe, &longer), 1.0);
    }
}
