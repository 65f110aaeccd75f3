//! The in-process sops reader: byte-identical to `sops decrypt` on generated files,
//! failing in sops' classes on altered ones, and what lets `use` and `status` run where
//! sops is not installed. Needs the real sops, age and ssh-keygen.

#[path = "../support/mod.rs"]
mod support;

mod differential;
mod fixture;
mod generator;
mod tamper;
mod without_sops;
