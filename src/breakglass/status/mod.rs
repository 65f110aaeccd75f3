//! The status report of break-glass files, free of the command line: [`collect`] reads
//! Git, the files and (optionally) the clusters, [`judge`] turns facts into problems with
//! fixes, [`model`] is the report itself; `commands::status` renders it.
//!
//! Git metadata for every cluster comes from one history walk (`git::Repo::last_commits`);
//! decryptions run in parallel with a bound. The JSON schema is docs/json-output.md.

pub mod collect;
pub mod judge;
pub mod live;
pub mod model;

pub use collect::{Options, collect};
pub use model::*;
