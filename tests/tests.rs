//! Integration tests: one crate of modules so CI links once. They run the built `vecdrill`
//! binary against real Chroma servers started on free ports in temporary directories.

mod common;

mod check;
mod closed_stdout;
mod copy;
mod docker;
mod drill;
mod durability;
mod encryption;
mod faiss_redis;
mod faults;
mod follow;
mod formats;
mod hostile;
mod latency;
mod menu;
mod mutation;
mod new_user;
mod prove;
mod quiet;
mod railway;
mod rebuild;
mod records;
mod repair;
mod report_files;
mod repository;
mod seed_bench;
mod store_faults;
mod transfer;
mod validate;
mod versions;
