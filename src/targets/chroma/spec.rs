//! A scenario's `target:` when its `kind:` is `chroma`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::platform::ServiceSpec;
use crate::targets::spec::TargetKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChromaSpec {
    /// `chroma`.
    pub kind: TargetKind,
    /// The server's HTTP URL.
    pub url: String,
    /// The persistent directory (`chroma run --path`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default)]
    pub service: Option<ServiceSpec>,
}

fn default_tenant() -> String {
    super::client::DEFAULT_TENANT.to_string()
}

fn default_database() -> String {
    super::client::DEFAULT_DATABASE.to_string()
}
