//! `use` and `status` decrypt in-process, so they run with no sops installed;
//! `KUBE_DC_SOPS_DECRYPT=binary` forces the sops binary.

use std::process::Output;

use crate::support::{TestEnv, show, text};

/// PATH without the directory that has sops (git, kill, true stay).
const PATH_WITHOUT_SOPS: &str = "/usr/local/bin:/usr/bin:/bin";

fn run(env: &TestEnv, sops: bool, mode: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = env.kube_dc();
    if !sops {
        cmd.env("PATH", PATH_WITHOUT_SOPS)
            .env_remove("KUBE_DC_SOPS");
    }
    if let Some(mode) = mode {
        cmd.env("KUBE_DC_SOPS_DECRYPT", mode);
    }
    cmd.args(["bootstrap", "break-glass"]).args(args);
    cmd.output().unwrap()
}

fn only_alpha() -> TestEnv {
    let env = TestEnv::new();
    for other in ["beta", "eu"] {
        std::fs::remove_dir_all(env.fleet.join("clusters").join(other)).unwrap();
    }
    env.with_git()
}

#[test]
fn sops_is_not_installed_here() {
    for dir in std::env::split_paths(PATH_WITHOUT_SOPS) {
        assert!(
            !dir.join("sops").exists(),
            "{} has sops; the tests below would prove nothing",
            dir.display()
        );
    }
}

#[test]
fn use_and_status_decrypt_without_sops() {
    let env = only_alpha();
    let used = run(
        &env,
        false,
        None,
        &["use", "alpha", "--reason", "test", "--", "true"],
    );
    assert!(used.status.success(), "{}", show(&used));
    let one = run(&env, false, None, &["status", "alpha", "-o", "json"]);
    assert!(one.status.success(), "{}", show(&one));
    let report: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(report["decryption"]["ok"], true, "{}", show(&one));
    let all = run(&env, false, None, &["status", "--all", "-o", "json"]);
    assert!(all.status.success(), "{}", show(&all));
    let report: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(
        report["clusters"][0]["decryption"]["ok"],
        true,
        "{}",
        show(&all)
    );
}

#[test]
fn binary_mode_uses_sops_and_needs_it() {
    let env = only_alpha();
    let with_sops = run(
        &env,
        true,
        Some("binary"),
        &["use", "alpha", "--reason", "test", "--", "true"],
    );
    assert!(with_sops.status.success(), "{}", show(&with_sops));
    let without = run(
        &env,
        false,
        Some("binary"),
        &["use", "alpha", "--reason", "test", "--", "true"],
    );
    assert_eq!(without.status.code(), Some(1), "{}", show(&without));
    assert!(
        text(&without.stderr).contains("sops is not installed"),
        "{}",
        show(&without)
    );
    let bad = run(
        &env,
        true,
        Some("sometimes"),
        &["use", "alpha", "--reason", "test", "--", "true"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
}

#[test]
fn a_wrong_key_is_reported_the_same_without_sops() {
    let env = only_alpha();
    let other = env.other_age_key();
    let mut cmd = env.kube_dc();
    cmd.env("PATH", PATH_WITHOUT_SOPS)
        .env_remove("KUBE_DC_SOPS")
        .env("SOPS_AGE_KEY_FILE", &other)
        .args(crate::support::USE_ALPHA);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("your age key is not one of the file's recipients"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_file_the_reader_leaves_to_sops_falls_back_and_says_so_under_v() {
    let env = only_alpha();
    let file = env.break_glass_file("alpha");
    let original = std::fs::read_to_string(&file).unwrap();
    // The version is not covered by the MAC; the reader knows sops up to 3.11 only.
    std::fs::write(
        &file,
        original.replace("version: 3.11.0", "version: 3.99.0"),
    )
    .unwrap();
    let mut cmd = env.kube_dc();
    cmd.arg("-v").args(crate::support::USE_ALPHA);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("decrypting with the sops binary: the in-process reader does not handle sops format version"),
        "{}",
        show(&out)
    );
    let without = run(
        &env,
        false,
        None,
        &["use", "alpha", "--reason", "test", "--", "true"],
    );
    assert_eq!(without.status.code(), Some(1), "{}", show(&without));
    assert!(
        text(&without.stderr).contains("sops is not installed"),
        "{}",
        show(&without)
    );
}
