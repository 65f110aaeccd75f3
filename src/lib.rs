//! kube-dc: keeps a static cluster-admin "break-glass" kubeconfig per cluster,
//! SOPS-encrypted in a Git fleet repo, for when the identity provider is down.
//!
//! The binary (`main.rs`) only parses arguments and maps errors to exit codes; the work
//! happens here, in modules named after the domain.

// Hostile input must not panic the tool (issue 10); unit tests may.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod atomic;
pub mod breakglass;
pub mod cli;
pub mod cluster;
pub mod cluster_config;
pub mod commands;
pub mod credential_plugin;
pub mod credentials;
pub mod error;
pub mod fleet;
pub mod fleet_settings;
pub mod git;
pub mod input;
pub mod kubeconfig;
pub mod leak_scan;
pub mod process;
pub mod redact;
pub mod safe_fs;
pub mod shell;
pub mod sops;
pub mod sops_config;
pub mod sops_file;
pub mod sops_reader;
pub mod state_dir;
pub mod subprocess;
pub mod ui;
pub mod version;
