//! The in-process sops reader: byte-identical to `sops decrypt` on generated files and
//! failing in sops' classes on altered ones. Needs the real sops, age and ssh-keygen.

#[path = "../support/mod.rs"]
mod support;

mod differential;
mod fixture;
mod generator;
mod tamper;
