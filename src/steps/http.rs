//! `http`: one request with an expected status and, optionally, expected JSON fields.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{Outputs, Step, StepContext, StepError, StepKind};
use crate::duration::{millis, HumanDuration};
use crate::net::describe_reqwest;
use crate::outputs;
use crate::targets::spec::TargetKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    url: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Sent as JSON.
    #[serde(default)]
    body: Option<Value>,
    #[serde(default = "default_status")]
    expect_status: u16,
    /// Dotted paths into the JSON answer (`items.0.name`) and the values they must hold.
    #[serde(default)]
    expect_json: BTreeMap<String, Value>,
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
}

fn default_method() -> String {
    "GET".into()
}
fn default_status() -> u16 {
    200
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

pub const KIND: StepKind = StepKind {
    name: "http",
    summary: "an HTTP request; check `expect_status` and `expect_json` fields",
    outputs: &["status", "body", "json", "latency_ms"],
    needs_service: false,
    targets: TargetKind::ALL,
    needs_repo: false,
    other_repos: &[],
    restores_data: false,
    platform_time: false,
    measures: &[],
    build: super::build::<Http>,
};

/// Longest body kept in outputs and reports.
const BODY_LIMIT: usize = 4096;

#[async_trait]
impl Step for Http {
    async fn run(&self, _: &mut StepContext<'_>) -> Result<Outputs, StepError> {
        let method = reqwest::Method::from_bytes(self.method.to_uppercase().as_bytes())
            .map_err(|_| StepError::Setup(format!("unknown HTTP method {:?}", self.method)))?;
        let client = crate::net::client_builder()
            .build()
            .map_err(|e| StepError::Setup(format!("cannot make an HTTP client: {e}")))?;
        let mut request = client
            .request(method, &self.url)
            .timeout(self.timeout.as_duration());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| {
            StepError::Check(format!(
                "{} {}: {}",
                self.method,
                self.url,
                describe_reqwest(&e)
            ))
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| StepError::Check(format!("reading the answer from {}: {e}", self.url)))?;
        let latency_ms = millis(started.elapsed());
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let mut problems = Vec::new();
        if status != self.expect_status {
            problems.push(format!("status {status}, expected {}", self.expect_status));
        }
        for (path, expected) in &self.expect_json {
            match json.as_ref().and_then(|j| lookup(j, path)) {
                Some(actual) if actual == expected => {}
                Some(actual) => problems.push(format!("`{path}` is {actual}, expected {expected}")),
                None => problems.push(format!("`{path}` is absent from the answer")),
            }
        }
        if !problems.is_empty() {
            let glimpse: String = text.chars().take(200).collect();
            return Err(StepError::Check(format!(
                "{} {}: {} (answer: {glimpse})",
                self.method,
                self.url,
                problems.join("; ")
            )));
        }
        let body: String = text.chars().take(BODY_LIMIT).collect();
        let json = json
            .filter(|_| text.len() <= BODY_LIMIT)
            .unwrap_or(Value::Null);
        Ok(
            outputs! { "status" => status, "body" => body, "json" => json, "latency_ms" => latency_ms },
        )
    }
}

/// `a.b.0.c` into a JSON value; numeric segments index arrays.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, segment| match v {
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(map) => map.get(segment),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::lookup;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_into_objects_and_arrays() {
        let v = json!({ "a": { "items": [ { "n": 1 }, { "n": 2 } ] } });
        assert_eq!(lookup(&v, "a.items.1.n"), Some(&json!(2)));
        assert_eq!(lookup(&v, "a.items.9.n"), None);
        assert_eq!(lookup(&v, "a.nope"), None);
    }
}
