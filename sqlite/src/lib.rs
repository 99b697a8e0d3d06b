//! FieldGrid's SQLite layer, shared by the phone's store (fieldgrid-core)
//! and the district server's SQLite store (fieldgrid-server):
//!
//! - [`cipher`]: SQLCipher's crypto provider in Rust. Every build of this
//!   workspace compiles one SQLCipher (libsqlite3-sys is one package per
//!   build, `links = "sqlite3"`), configured in `.cargo/config.toml` to take
//!   its crypto from here; so whatever links SQLite links this crate. The
//!   server's databases are not keyed: it uses SQLCipher as plain SQLite.
//! - [`migrate`]: the one schema migration runner.
//!
//! No rules and no records: those are fieldgrid-domain's.

pub mod cipher;
pub mod migrate;
