//! Storage internals: the schema and its migrations.

pub(crate) mod cipher;
pub mod schema;
