//! Minting and rotating one cluster's break-glass token, free of the command line.
//!
//! - [`admin`]: adopt, and rotate with an admin login;
//! - [`self_rotation`]: rotate with the break-glass credential itself, the peer strategy;
//!   [`strategy`] picks one of the two;
//! - [`steps`]: what both share (preflight, revoke and re-mint, verify, seal);
//! - [`target`]: one cluster and how it is reached; [`progress`]: what a run reports;
//! - [`plan`]: `--dry-run` of either strategy; [`record`]: committing the written files,
//!   [`landing`]: which break-glass file lands when pushes meet;
//! - [`rotation_lock`]: the cluster's rotation lock around each strategy;
//! - `up_to_date`: whether adopt's file already holds the cluster's credential.
//!
//! The files import each other without cycles (tests/module_cycles.rs checks it): the
//! strategies use the steps, never one another; this file only re-exports.

pub mod admin;
pub mod landing;
pub mod plan;
pub mod progress;
pub mod record;
pub mod rotation_lock;
pub mod self_rotation;
pub mod steps;
pub mod strategy;
pub mod target;
mod up_to_date;

pub use progress::{Progress, Stage, Step};
pub use record::{Commits, record};
pub use strategy::Via;
pub use target::{CONTEXT_KEY, Outcome, Target, admin_context};
