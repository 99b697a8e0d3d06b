//! End-to-end: devices with their own encrypted store files and the real
//! district server (its own SQLite data folder) on loopback over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod accounts;
mod authz;
mod centre;
mod console;
mod convergence;
mod crash;
mod faults;
mod fields;
mod helpers;
mod inspections;
mod model;
mod openapi;
mod privacy;
mod processes;
mod readable;
mod scope;
mod storage;
mod sync;
mod tls;
mod trust;
mod upgrade;
mod visits;
