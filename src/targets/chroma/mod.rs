//! ChromaDB as a drill target: the HTTP client, and the state (counts plus probe neighbours)
//! that drills capture before a disaster and compare after recovery.

pub mod capture;
pub mod client;
mod hnsw_metadata;
mod integrity;
pub mod layout;
pub mod neighbours;
pub mod offline;
pub mod pitr;
pub mod protect;
pub mod release;
pub mod schema;
pub mod shipped;
pub mod spec;
pub mod state;
pub mod wal;
pub mod writes;

pub use client::{ChromaClient, ChromaError, Collection, Records};
pub use state::{CollectionState, StateComparison, TargetState};

/// A Chroma server as a drill's target.
pub struct ChromaTarget {
    pub client: ChromaClient,
}

#[async_trait::async_trait]
impl super::Target for ChromaTarget {
    fn kind(&self) -> super::spec::TargetKind {
        super::spec::TargetKind::Chroma
    }

    async fn probe(&self, timeout: std::time::Duration) -> Result<(), String> {
        self.client
            .heartbeat(timeout)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn chroma(&self) -> Option<&ChromaClient> {
        Some(&self.client)
    }
}
