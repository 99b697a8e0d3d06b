//! Storage internals: the schema and its migrations.

pub mod schema;
