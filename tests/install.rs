//! What surrounds the tool where fleet maintainers install it: the version, shell
//! completions and man pages, all from the same clap definitions as the tool.

mod support;

use std::process::Command;

use support::TestEnv;

#[test]
fn version_names_the_release_and_the_commit_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(support::repo_root())
        .output()
        .expect("git is required by this test");
    assert!(head.status.success(), "{}", support::show(&head));
    let head = support::text(&head.stdout).trim().to_owned();
    let out = TestEnv::new().kube_dc().arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert_eq!(
        support::text(&out.stdout),
        format!("kube-dc {} (commit {head})\n", env!("CARGO_PKG_VERSION"))
    );
}
