//! FieldGrid's SQLite layer, shared by the phone's store (fieldgrid-core)
//! and the district server's SQLite store (fieldgrid-server):
//!
//! - `cipher` (feature `sqlcipher`): SQLCipher's crypto provider in Rust.
//!   With the feature, SQLite is SQLCipher, configured in `.cargo/config.toml`
//!   to take its crypto from here. The phone's store turns it on; the district
//!   server built alone links plain SQLite. (One SQLite is built per cargo
//!   invocation, `links = "sqlite3"`: in a build of the whole workspace the
//!   server gets SQLCipher too, and uses it unkeyed, as plain SQLite.)
//! - [`migrate`]: the one schema migration runner.
//!
//! No rules and no records: those are fieldgrid-domain's.

#[cfg(feature = "sqlcipher")]
pub mod cipher;
pub mod migrate;
