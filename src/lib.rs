//! vecdrill: disaster-recovery automation for vector databases.
//!
//! - [`scenario`]: the YAML drill format, variables and validation;
//! - [`drill`]: the runner (steps, marks, rollback, objectives);
//! - [`steps`]: one module per step kind;
//! - [`targets`]: the databases (Chroma's HTTP API and state);
//! - [`platform`]: how services are started, stopped and killed;
//! - [`latency`]: the load generator behind `search_latency` and `bench`;
//! - [`report`]: JSON, Markdown and terminal output;
//! - [`seed`]: deterministic sample data.

pub mod atomic_file;
pub mod commands;
pub mod drill;
pub mod duration;
pub mod exit;
pub mod export;
pub mod health;
pub mod history;
pub mod latency;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod percent;
pub mod platform;
pub mod progress;
pub mod rebuild;
pub mod redaction;
pub mod repo;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod steps;
pub mod targets;
pub mod text;
pub mod units;
