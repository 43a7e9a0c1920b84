//! The databases vecdrill protects and drills, one module per kind.

pub mod chroma;
pub mod faiss;
pub mod faiss_redis;
pub mod redis;
