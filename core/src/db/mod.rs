//! Storage internals: the schema and its migrations.

pub(crate) use fieldgrid_sqlite::cipher;
pub mod schema;
