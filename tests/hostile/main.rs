//! The hostile-input suite: table-driven cases, one module per class of hostile input
//! (issue 10). Every case runs the real kube-dc binary on a fresh copy of the fixture
//! fleet and asserts its exit code, its message, the absence of canary secrets in its
//! output, that nothing but the expected files changed, and that it ended within its bound.

#[path = "../support/mod.rs"]
mod support;

mod children;
mod disk_full;
mod files;
mod fixes;
mod harness;
mod inputs;
mod names;
mod reader;
mod scanner;
mod secrets;
mod session;
mod timing;
