//! The object store under a repository: opened from a URL, with keys relative to the
//! repository's prefix. Cloud backends take their settings from the standard `AWS_*`,
//! `GOOGLE_*` and `AZURE_*` variables and retry transient errors with object_store's own
//! backoff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::crypto::{Keys, OBJECT_OVERHEAD};
use super::format::{limits, Sealed};
use super::RepoError;

#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    /// An encrypted repository's keys, once unlocked: every JSON object is then sealed under
    /// its own name (see [`super::crypto`]).
    keys: Arc<std::sync::OnceLock<Arc<Keys>>>,
}

/// An object below the repository prefix.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Key relative to the repository, e.g. `snapshots/abc.json`.
    pub key: String,
    pub size: u64,
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 6,
        retry_timeout: Duration::from_secs(120),
        ..RetryConfig::default()
    }
}

impl Store {
    /// Open the store a repository URL names: `file:///DIR` (absolute) or a plain path,
    /// `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, `az://CONTAINER/PREFIX`, `memory://`. A
    /// local directory is created only when `create` is set (a backup creating its repository);
    /// a command that only reads finds a mistyped one missing instead of creating it.
    /// Whether two repository URLs name the same place, as far as can be told without opening
    /// them: one local directory (however its path is written), or one URL.
    pub fn same_place(a: &str, b: &str) -> bool {
        fn local(url: &str) -> Option<PathBuf> {
            match url.split_once("://") {
                None => Some(PathBuf::from(url)),
                Some(("file", path)) => Some(PathBuf::from(path)),
                Some(_) => None,
            }
        }
        match (local(a), local(b)) {
            (Some(x), Some(y)) => match (x.canonicalize(), y.canonicalize()) {
                (Ok(x), Ok(y)) => x == y,
                _ => std::path::absolute(&x).ok() == std::path::absolute(&y).ok(),
            },
            (None, None) => a.trim_end_matches('/') == b.trim_end_matches('/'),
            _ => false,
        }
    }

    pub fn open(url: &str, create: bool) -> Result<Self, RepoError> {
        let bad = |reason: String| RepoError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let (inner, prefix): (Arc<dyn ObjectStore>, String) = match url.split_once("://") {
            None | Some(("file", _)) => {
                let dir = match url.strip_prefix("file://") {
                    // `file://srv/x` reads as host `srv`, yet would silently mean `./srv/x`:
                    // after file:// comes `/` or an explicit `./` or `../`.
                    Some(path)
                        if !(path.starts_with('/')
                            || path.starts_with("./")
                            || path.starts_with("../")) =>
                    {
                        return Err(bad(format!(
                            "after file:// comes an absolute path (file:///{path}) or one starting with ./ or ../ (file://./{path}); or write the path without file://"
                        )))
                    }
                    Some(path) => PathBuf::from(path),
                    None => PathBuf::from(url),
                };
                if create {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
                } else if !dir.is_dir() {
                    return Err(RepoError::NotARepository {
                        url: url.to_string(),
                    });
                }
                // fsync: a put returns once the object and its directory entry are on disk,
                // as a cloud store's does. Without it a power cut after a backup reported
                // success could leave a manifest naming packs that were never written.
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(e.to_string()))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                (Arc::new(store), String::new())
            }
            Some(("memory", _)) => (
                Arc::new(object_store::memory::InMemory::new()),
                String::new(),
            ),
            Some((scheme, rest)) => {
                let prefix = rest
                    .split_once('/')
                    .map(|(_, p)| p.trim_matches('/').to_string())
                    .unwrap_or_default();
                crate::net::use_ring_for_tls();
                let store: Arc<dyn ObjectStore> = match scheme {
                    "s3" | "s3a" => Arc::new(
                        object_store::aws::AmazonS3Builder::from_env()
                            .with_url(url)
                            .with_retry(retry())
                            .build()
                            .map_err(|e| bad(e.to_string()))?,
                    ),
                    "gs" => Arc::new(
                        object_store::gcp::GoogleCloudStorageBuilder::from_env()
                            .with_url(url)
                            .with_retry(retry())
                            .build()
                            .map_err(|e| bad(e.to_string()))?,
                    ),
                    "az" | "azure" | "abfs" | "abfss" => Arc::new(
                        object_store::azure::MicrosoftAzureBuilder::from_env()
                            .with_url(url)
                            .with_retry(retry())
                            .build()
                            .map_err(|e| bad(e.to_string()))?,
                    ),
                    other => {
                        return Err(bad(format!(
                        "unknown scheme {other:?}; use file://, s3://, gs://, az:// or memory://"
                    )))
                    }
                };
                (store, prefix)
            }
        };
        Ok(Self {
            inner,
            prefix: Path::from(prefix),
            url: url.to_string(),
            keys: Default::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, rel: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            path = path.clone().join(part);
        }
        path
    }

    fn error(&self, op: &'static str, rel: &str, source: object_store::Error) -> RepoError {
        match source {
            source if names_missing_place(&source) => RepoError::NoSuchPlace {
                url: self.url.clone(),
            },
            // A write creates its object: only the place it goes into can be missing.
            object_store::Error::NotFound { .. } if op == "put" => RepoError::NoSuchPlace {
                url: self.url.clone(),
            },
            object_store::Error::NotFound { .. } => RepoError::ObjectMissing {
                key: rel.to_string(),
            },
            // The store's answer (an XML body for S3) only with -v: it is long, and says no
            // more than that access was refused.
            source @ (object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }) => {
                tracing::debug!(
                    "the object store refused the {op} of {rel}: {}",
                    described(&source)
                );
                RepoError::Refused {
                    url: self.url.clone(),
                    op,
                    key: rel.to_string(),
                }
            }
            source => RepoError::Store {
                op,
                key: rel.to_string(),
                source,
            },
        }
    }

    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), RepoError> {
        let Err(err) = self
            .inner
            .put(&self.key(rel), PutPayload::from_bytes(bytes.clone()))
            .await
        else {
            return Ok(());
        };
        // A store can fail a write it has made: its answer lost after the object was stored,
        // and every retry answered the same. What reads back whole was written.
        if self
            .get(rel, bytes.len() as u64)
            .await
            .is_ok_and(|stored| stored == bytes)
        {
            tracing::warn!(
                "the object store reported the write of {rel} as failed ({}), yet it reads back whole: written",
                described(&err)
            );
            return Ok(());
        }
        Err(self.error("put", rel, err))
    }

    /// Unlock an encrypted repository: from now on every JSON object is sealed and opened
    /// with `keys` (set once).
    pub fn unlock(&self, keys: Arc<Keys>) {
        let _ = self.keys.set(keys);
    }

    /// The keys, in an unlocked encrypted repository.
    pub fn keys(&self) -> Option<&Keys> {
        self.keys.get().map(|k| k.as_ref())
    }

    /// The keys, shared, for work on other threads.
    pub fn shared_keys(&self) -> Option<Arc<Keys>> {
        self.keys.get().cloned()
    }

    /// A JSON object's bytes as stored: sealed under its name when the repository is
    /// encrypted.
    fn sealing(&self, rel: &str, plain: Vec<u8>) -> Bytes {
        match self.keys() {
            Some(keys) => Bytes::from(keys.seal_object(rel, &plain)),
            None => Bytes::from(plain),
        }
    }

    /// A JSON object's plain bytes: opened (and so authenticated) when the repository is
    /// encrypted; anything else there, plaintext resealed by someone without the key
    /// included, is refused as corrupt.
    pub async fn get_plain(&self, rel: &str) -> Result<Vec<u8>, RepoError> {
        self.get_opened(rel).await
    }

    /// Store a JSON object's plain bytes as [`Store::get_plain`] reads them back: sealed
    /// under its name when the repository is encrypted (to copy one between repositories).
    pub async fn put_plain(&self, rel: &str, plain: Vec<u8>) -> Result<(), RepoError> {
        self.put(rel, self.sealing(rel, plain)).await
    }

    async fn get_opened(&self, rel: &str) -> Result<Vec<u8>, RepoError> {
        let bytes = self
            .get(rel, limits::JSON_BYTES + OBJECT_OVERHEAD as u64)
            .await?;
        match self.keys() {
            Some(keys) => keys
                .open_object(rel, &bytes)
                .map_err(|e| RepoError::Corrupt {
                    what: rel.to_string(),
                    detail: e.to_string(),
                }),
            None => Ok(bytes.to_vec()),
        }
    }

    pub async fn put_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<(), RepoError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| RepoError::Corrupt {
            what: rel.to_string(),
            detail: format!("cannot encode: {e}"),
        })?;
        self.put(rel, self.sealing(rel, bytes)).await
    }

    pub async fn put_sealed<T: Sealed>(&self, rel: &str, value: &T) -> Result<(), RepoError> {
        self.put(rel, self.sealing(rel, value.seal())).await
    }

    /// A sealed JSON object stored in the clear even in an encrypted repository: the config
    /// and the key files, which are read before the key is known.
    pub async fn put_clear<T: Sealed>(&self, rel: &str, value: &T) -> Result<(), RepoError> {
        self.put(rel, Bytes::from(value.seal())).await
    }

    /// Read what [`Store::put_clear`] wrote, refused as corrupt above `max` bytes.
    pub async fn get_clear<T: Sealed>(&self, rel: &str, max: u64) -> Result<T, RepoError> {
        let bytes = self.get(rel, max).await?;
        T::unseal(&bytes).map_err(|detail| RepoError::Corrupt {
            what: rel.to_string(),
            detail,
        })
    }

    pub async fn get_sealed<T: Sealed>(&self, rel: &str) -> Result<T, RepoError> {
        let bytes = self.get_opened(rel).await?;
        T::unseal(&bytes).map_err(|detail| RepoError::Corrupt {
            what: rel.to_string(),
            detail,
        })
    }

    /// A whole object, refused as corrupt when it is larger than `max` bytes (checked before
    /// its body is read, so a forged object cannot exhaust memory).
    pub async fn get(&self, rel: &str, max: u64) -> Result<Bytes, RepoError> {
        self.reading(rel, || self.get_once(rel, max)).await
    }

    async fn get_once(&self, rel: &str, max: u64) -> Result<Bytes, RepoError> {
        let result = self
            .inner
            .get(&self.key(rel))
            .await
            .map_err(|e| self.error("get", rel, e))?;
        if result.meta.size > max {
            return Err(RepoError::Corrupt {
                what: rel.to_string(),
                detail: format!(
                    "it is {} bytes, more than the format's maximum of {max}",
                    result.meta.size
                ),
            });
        }
        // The body is read against the bound too: a store whose metadata understates the
        // object must not make this read more than `max` bytes.
        let mut body = bytes::BytesMut::with_capacity(result.meta.size as usize);
        let mut stream = result.into_stream();
        while let Some(part) = stream
            .try_next()
            .await
            .map_err(|e| self.error("get", rel, e))?
        {
            if (body.len() + part.len()) as u64 > max {
                return Err(RepoError::Corrupt {
                    what: rel.to_string(),
                    detail: format!("it is more than the format's maximum of {max} bytes"),
                });
            }
            body.extend_from_slice(&part);
        }
        Ok(body.freeze())
    }

    pub async fn get_range(
        &self,
        rel: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, RepoError> {
        self.reading(rel, || async {
            self.inner
                .get_range(&self.key(rel), range.clone())
                .await
                .map_err(|e| self.error("get", rel, e))
        })
        .await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, rel: &str) -> Result<T, RepoError> {
        let bytes = self.get_opened(rel).await?;
        serde_json::from_slice(&bytes).map_err(|e| RepoError::Corrupt {
            what: rel.to_string(),
            detail: format!("not a valid {rel} file: {e}"),
        })
    }

    /// Size of an object, or `None` when it does not exist.
    pub async fn size(&self, rel: &str) -> Result<Option<u64>, RepoError> {
        match self.inner.head(&self.key(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("head", rel, e)),
        }
    }

    pub async fn delete(&self, rel: &str) -> Result<(), RepoError> {
        match self.inner.delete(&self.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", rel, e)),
        }
    }

    /// Every object under `dir` (relative keys), in no particular order.
    pub async fn list(&self, dir: &str) -> Result<Vec<Listed>, RepoError> {
        self.reading(dir, || async {
            self.list_once(dir)
                .await
                .map_err(|e| self.error("list", dir, e))
        })
        .await
    }

    /// Run the read `attempt` of `rel`, again when its answer broke off on the way.
    /// object_store retries a request that fails, and a GET whose body breaks off when it
    /// can resume it, but not a listing's body nor every GET's: those are retried here,
    /// [`READ_RETRIES`] times.
    async fn reading<T, F, Fut>(&self, rel: &str, mut attempt: F) -> Result<T, RepoError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RepoError>>,
    {
        let mut retries = 0;
        loop {
            match attempt().await {
                Err(RepoError::Store { source, .. })
                    if retries < READ_RETRIES && broke_off(&source) =>
                {
                    retries += 1;
                    let pause = Duration::from_millis(200 * u64::from(retries));
                    tracing::info!(
                        "reading {rel} broke off ({}); retrying in {pause:?}, retry {retries} of {READ_RETRIES}",
                        described(&source)
                    );
                    tokio::time::sleep(pause).await;
                }
                result => return result,
            }
        }
    }

    async fn list_once(&self, dir: &str) -> Result<Vec<Listed>, object_store::Error> {
        let prefix = self.key(dir);
        let skip = if self.prefix.as_ref().is_empty() {
            0
        } else {
            self.prefix.as_ref().len() + 1
        };
        self.inner
            .list(Some(&prefix))
            .map_ok(|meta| Listed {
                key: meta.location.as_ref()[skip..].to_string(),
                size: meta.size,
            })
            .try_collect()
            .await
    }
}

const READ_RETRIES: u32 = 2;

/// Whether `err` is a store saying the bucket or container itself does not exist, by the
/// documented error codes of S3 (`NoSuchBucket`) and Azure (`ContainerNotFound`) in its
/// answer: a 404 alone cannot tell a missing bucket from a missing object.
fn names_missing_place(err: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        let text = error.to_string();
        if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `err` as the store said it, with its innermost cause when that is not already in it: an
/// HTTP client's "error sending request" says nothing of the "Connection refused (os error
/// 111)" under it. Only the innermost cause is added, never the layers between; a URL's query
/// (a SAS token, a signature) is never shown.
pub fn described(err: &object_store::Error) -> String {
    let text = err.to_string();
    let mut innermost: Option<&(dyn std::error::Error + 'static)> = None;
    let mut cause = std::error::Error::source(err);
    while let Some(error) = cause {
        innermost = Some(error);
        cause = error.source();
    }
    let described = match innermost.map(|e| e.to_string()) {
        Some(root) if !root.is_empty() && !text.contains(&root) => format!("{text} ({root})"),
        _ => text,
    };
    crate::redaction::redact_queries(&described)
}

/// Whether the connection broke while `err`'s answer was on its way (a cut-off body).
fn broke_off(err: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        if error.downcast_ref::<HttpError>().is_some_and(|http| {
            matches!(
                http.kind(),
                HttpErrorKind::Interrupted | HttpErrorKind::Request
            )
        }) {
            return true;
        }
        cause = error.source();
    }
    false
}
