//! The `fieldgrid` command line as a library: the demo, device QA commands
//! and the load generator (also used by the sync benchmark).

pub mod demo;
pub mod device;
pub mod load;
