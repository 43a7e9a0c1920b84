//! ChromaDB as a drill target: the HTTP client, and the state (counts plus probe neighbours)
//! that drills capture before a disaster and compare after recovery.

pub mod capture;
pub mod client;
mod hnsw_metadata;
mod integrity;
pub mod layout;
pub mod offline;
pub mod protect;
pub mod state;

pub use client::{ChromaClient, ChromaError, Collection, Records};
pub use state::{CollectionState, StateComparison, TargetState};
