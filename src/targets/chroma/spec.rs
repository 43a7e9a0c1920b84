//! A scenario's `target:` when its `kind:` is `chroma`.

use std::path::{Path, PathBuf};

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

impl crate::targets::spec::TargetConfig for ChromaSpec {
    fn url(&self) -> &str {
        &self.url
    }

    fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn service(&self) -> Option<&ServiceSpec> {
        self.service.as_ref()
    }

    fn connect(&self) -> Box<dyn crate::targets::Target> {
        Box::new(super::ChromaTarget {
            client: super::ChromaClient::with_database(&self.url, &self.tenant, &self.database),
        })
    }

    /// The Chroma directory, copied as `mode` says.
    fn backup_source(
        &self,
        data_dir: Option<PathBuf>,
        mode: super::capture::CaptureMode,
    ) -> Result<Box<dyn crate::targets::protect::BackupSource>, String> {
        let dir =
            data_dir.ok_or("no data directory: add `data_dir:` to the target or to the step")?;
        Ok(Box::new(super::protect::ChromaSource {
            dir,
            mode: Some(mode),
            staging_parent: None,
            read_all: false,
        }))
    }

    fn describe_data_dir(&self, dir: &Path) -> &'static str {
        if dir.join(super::layout::SQLITE_FILE).is_file() {
            " (holds a Chroma database)"
        } else {
            " (no chroma.sqlite3 there yet: a server started on it begins empty)"
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
