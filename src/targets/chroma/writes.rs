//! A writer for point-in-time drills: adds, updates and deletes records continuously through
//! the API, recording each write with when it was sent and when it was acknowledged, and what
//! a database restored to a moment must then hold.
//!
//! One write at a time, so at most one is in flight at any moment: a write acknowledged by
//! the end of a second was logged in it or before (and a restore to that second has it), one
//! sent after it was logged after (and must not be there), and the one in flight across it
//! may be either.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client::{ChromaClient, Records};

/// One write as the writer saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Write {
    pub op: &'static str,
    pub ids: Vec<String>,
    /// The documents written (none for a delete).
    pub documents: Vec<String>,
    pub sent_at: DateTime<Utc>,
    /// When the server acknowledged it; none when it failed (its effect is then unknown).
    pub acked_at: Option<DateTime<Utc>>,
}

/// Every write, in the order sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteLog {
    pub collection: String,
    /// The collection's count when the writer began (the writer's ids are its own).
    pub count_before: u64,
    pub writes: Vec<Write>,
}

/// How the writer writes.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub collection: String,
    pub dim: usize,
    /// Records added per write.
    pub batch: usize,
    /// Between writes.
    pub pause: Duration,
}

/// Write until `stop` changes (or the collection is gone: three failures in a row), then
/// return every write made.
pub async fn write_until(
    client: &ChromaClient,
    settings: &WriterSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<WriteLog, super::ChromaError> {
    let collection = client.collection(&settings.collection).await?;
    let mut log = WriteLog {
        collection: settings.collection.clone(),
        count_before: client.count(&collection.id).await?,
        writes: Vec::new(),
    };
    let mut live: Vec<String> = Vec::new();
    let (mut next, mut failures) = (0u64, 0);
    for round in 0u64.. {
        if *stop.borrow() || failures >= 3 {
            break;
        }
        let (op, ids, documents) = match round % 5 {
            // Every fifth write changes two records, every fifth deletes one; the rest add.
            2 if live.len() >= 2 => {
                let ids = vec![live[0].clone(), live[live.len() / 2].clone()];
                let documents = ids
                    .iter()
                    .map(|id| format!("{id} rewritten in round {round}"))
                    .collect();
                ("update", ids, documents)
            }
            4 if !live.is_empty() => ("delete", vec![live.remove(0)], Vec::new()),
            _ => {
                let ids: Vec<String> = (0..settings.batch)
                    .map(|i| format!("w{:08}", next + i as u64))
                    .collect();
                next += settings.batch as u64;
                let documents = ids
                    .iter()
                    .map(|id| format!("{id} added in round {round}"))
                    .collect();
                ("add", ids, documents)
            }
        };
        let records = Records {
            embeddings: ids.iter().map(|id| vector_of(id, settings.dim)).collect(),
            ids: ids.clone(),
            documents: Some(documents.clone()),
            metadatas: None,
        };
        let sent_at = Utc::now();
        let result = match op {
            "add" => client.add(&collection.id, &records).await,
            "update" => client.update(&collection.id, &records).await,
            _ => client.delete_records(&collection.id, &ids).await,
        };
        let acked_at = match result {
            Ok(()) => {
                failures = 0;
                if op == "add" {
                    live.extend(ids.iter().cloned());
                }
                Some(Utc::now())
            }
            Err(err) => {
                failures += 1;
                tracing::info!("the writer's {op} failed: {err}");
                None
            }
        };
        log.writes.push(Write {
            op,
            ids,
            documents,
            sent_at,
            acked_at,
        });
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(settings.pause) => {}
        }
    }
    Ok(log)
}

/// A record's vector, from its id: the same id always has the same vector.
fn vector_of(id: &str, dim: usize) -> Vec<f32> {
    let seed = blake3::hash(id.as_bytes());
    seed.as_bytes()
        .iter()
        .cycle()
        .take(dim)
        .map(|b| f32::from(*b) / 255.0)
        .collect()
}

/// What a database restored to the end of `moment` must hold of the writer's records.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Id to document, for every record the writes acknowledged by then leave.
    pub records: BTreeMap<String, String>,
    /// Ids the write in flight at the moment touched: their state before or after it.
    pub either: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Every id the writer touched.
    pub touched: BTreeSet<String>,
    /// Writes acknowledged by then, and the newest acknowledgement among them.
    pub acknowledged: usize,
    pub newest_ack: Option<DateTime<Utc>>,
}

impl WriteLog {
    /// What a restore to the end of `moment` must hold (see the module's doc).
    pub fn expected_at(&self, moment: DateTime<Utc>) -> Expected {
        let mut expected = Expected::default();
        for write in &self.writes {
            expected.touched.extend(write.ids.iter().cloned());
            if write.sent_at >= moment {
                continue;
            }
            let before: Vec<Option<String>> = write
                .ids
                .iter()
                .map(|id| expected.records.get(id).cloned())
                .collect();
            apply(&mut expected.records, write);
            match write.acked_at {
                Some(acked) if acked <= moment => {
                    expected.acknowledged += 1;
                    expected.newest_ack = Some(acked);
                }
                // In flight at the moment (or failed): either side.
                _ => {
                    for (id, before) in write.ids.iter().zip(before) {
                        let after = expected.records.get(id).cloned();
                        expected.either.insert(id.clone(), (before, after));
                    }
                }
            }
        }
        expected
    }
}

fn apply(records: &mut BTreeMap<String, String>, write: &Write) {
    match write.op {
        "delete" => {
            for id in &write.ids {
                records.remove(id);
            }
        }
        _ => {
            for (id, document) in write.ids.iter().zip(&write.documents) {
                records.insert(id.clone(), document.clone());
            }
        }
    }
}

/// How the records a server holds compare with [`Expected`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteComparison {
    pub expected_records: usize,
    pub recovered_records: usize,
    /// Acknowledged writes whose effect is missing or different, by id (up to 10 shown).
    pub wrong: Vec<String>,
    pub wrong_total: usize,
    /// Ids the write in flight touched (either state accepted).
    pub in_flight: usize,
}

impl Expected {
    /// Compare `found` (id to document, for every id the writer touched that the server has).
    pub fn compare(&self, found: &BTreeMap<String, String>) -> WriteComparison {
        let mut comparison = WriteComparison {
            expected_records: self.records.len(),
            recovered_records: found.len(),
            in_flight: self.either.len(),
            ..WriteComparison::default()
        };
        for id in &self.touched {
            let have = found.get(id);
            let right = match self.either.get(id) {
                Some((before, after)) => have == before.as_ref() || have == after.as_ref(),
                None => have == self.records.get(id),
            };
            if !right {
                comparison.wrong_total += 1;
                if comparison.wrong.len() < 10 {
                    comparison.wrong.push(format!(
                        "{id}: {} expected, {} found",
                        self.records.get(id).map_or("absent", String::as_str),
                        have.map_or("absent", String::as_str)
                    ));
                }
            }
        }
        comparison
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64, millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(second, 0).unwrap() + chrono::Duration::milliseconds(millis)
    }

    fn write(
        op: &'static str,
        ids: &[&str],
        sent: DateTime<Utc>,
        acked: Option<DateTime<Utc>>,
    ) -> Write {
        Write {
            op,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            documents: ids.iter().map(|s| format!("{op} {s}")).collect(),
            sent_at: sent,
            acked_at: acked,
        }
    }

    #[test]
    fn the_moment_splits_writes_into_acknowledged_in_flight_and_after() {
        let log = WriteLog {
            collection: "docs".into(),
            count_before: 0,
            writes: vec![
                write("add", &["a", "b"], at(10, 0), Some(at(10, 100))),
                write("update", &["a"], at(10, 200), Some(at(10, 300))),
                // In flight across the moment (11.0).
                write("delete", &["b"], at(10, 900), Some(at(11, 50))),
                write("add", &["c"], at(11, 100), Some(at(11, 200))),
            ],
        };
        let expected = log.expected_at(at(11, 0));
        assert_eq!(expected.acknowledged, 2);
        assert_eq!(expected.newest_ack, Some(at(10, 300)));
        assert_eq!(expected.records.get("a").unwrap(), "update a");
        assert!(!expected.records.contains_key("c"));
        let mut found: BTreeMap<String, String> =
            [("a".to_string(), "update a".to_string())].into();
        // b deleted or not: both accepted.
        assert_eq!(expected.compare(&found).wrong_total, 0);
        found.insert("b".into(), "add b".into());
        assert_eq!(expected.compare(&found).wrong_total, 0);
        // c was written after the moment: wrong to find it.
        found.insert("c".into(), "add c".into());
        assert_eq!(expected.compare(&found).wrong_total, 1);
        found.remove("c");
        found.remove("a");
        assert_eq!(expected.compare(&found).wrong_total, 1);
    }
}
