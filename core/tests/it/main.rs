//! Integration tests of the core against real SQLite files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod bad_input;
mod capture;
mod common;
mod concurrency;
mod extra;
mod inspections;
mod privacy;
mod robustness;
mod rules_agree;
mod search;
mod storage;
mod sync_engine;
mod upgrade;
mod visits;
