//! `status <cluster>` and `status --all` through the binary, with real git and sops.

mod support;

use std::process::Command;

use serde_json::Value;
use support::TestEnv;

fn status(env: &TestEnv, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut cmd = env.kube_dc();
    cmd.args(["bootstrap", "break-glass", "status"]).args(args);
    cmd.assert()
}

fn json(assert: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&assert.get_output().stdout).expect("stdout is JSON")
}

fn cluster<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

fn problems(cluster: &Value) -> Vec<String> {
    cluster["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

/// A cluster directory with a config and, optionally, a copy of alpha's break-glass file.
fn add_cluster(env: &TestEnv, name: &str, with_file: bool) {
    let dir = env.fleet.join("clusters").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cluster-config.env"),
        format!("CLUSTER_NAME={name}\n"),
    )
    .unwrap();
    if with_file {
        std::fs::copy(env.break_glass_file("alpha"), env.break_glass_file(name)).unwrap();
    }
}

fn append(env: &TestEnv, name: &str) {
    let path = env.break_glass_file(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("# edited\n");
    std::fs::write(path, text).unwrap();
}

fn with_remote(env: &TestEnv) {
    let remote = env.dir.path().join("remote.git");
    let out = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&remote)
        .output()
        .unwrap();
    assert!(out.status.success());
    env.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    env.git(&["push", "-q", "-u", "origin", "main"]);
}

/// Only alpha: a fleet with nothing to complain about.
fn clean_env() -> TestEnv {
    let env = TestEnv::new();
    std::fs::remove_dir_all(env.fleet.join("clusters/beta")).unwrap();
    std::fs::remove_dir_all(env.fleet.join("clusters/eu")).unwrap();
    let env = env.with_git();
    with_remote(&env);
    env
}

#[test]
fn all_reports_each_git_state_and_check_fails_on_them() {
    let env = TestEnv::new();
    for name in ["committed", "modified", "staged", "unpushed"] {
        add_cluster(&env, name, true);
    }
    add_cluster(&env, "untracked", false);
    let env = env.with_git();
    with_remote(&env);
    append(&env, "modified");
    append(&env, "staged");
    env.git(&["add", "clusters/staged/break-glass-kubeconfig.enc.yaml"]);
    append(&env, "unpushed");
    env.git(&[
        "commit",
        "-q",
        "-m",
        "unpushed: rotate",
        "--",
        "clusters/unpushed/break-glass-kubeconfig.enc.yaml",
    ]);
    std::fs::copy(
        env.break_glass_file("alpha"),
        env.break_glass_file("untracked"),
    )
    .unwrap();

    let out = status(&env, &["--all", "--no-decrypt", "--output", "json"]).success();
    let report = json(&out);

    let expected = [
        ("alpha", "committed", vec![]),
        ("beta", "not_adopted", vec!["not_adopted"]),
        ("committed", "committed", vec![]),
        ("eu/dc1", "not_adopted", vec!["not_adopted"]),
        ("modified", "modified", vec!["uncommitted"]),
        ("staged", "staged", vec!["uncommitted"]),
        ("unpushed", "unpushed", vec!["unpushed"]),
        ("untracked", "untracked", vec!["uncommitted"]),
    ];
    let names: Vec<&str> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected.iter().map(|e| e.0).collect::<Vec<_>>());
    for (name, state, kinds) in expected {
        let c = cluster(&report, name);
        assert_eq!(c["state"], state, "{name}");
        assert_eq!(problems(c), kinds, "{name}");
    }
    assert_eq!(
        cluster(&report, "unpushed")["last_commit"]["subject"],
        "unpushed: rotate"
    );
    assert_eq!(report["repository"]["upstream"], "origin/main");
    assert_eq!(report["repository"]["ahead"], 1);
    assert_eq!(report["summary"]["with_problems"], 6);

    let table = status(&env, &["--all", "--no-decrypt", "--check"]).code(1);
    let text = String::from_utf8_lossy(&table.get_output().stdout).into_owned();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    assert!(row("unpushed").contains("unpushed"), "{text}");
    assert!(row("beta").contains("not adopted"), "{text}");
    assert!(
        text.contains("fix: kube-dc bootstrap break-glass adopt beta"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&table.get_output().stderr)
            .contains("6 of 8 cluster(s) need attention")
    );
}

#[test]
fn token_age_is_the_last_commit_not_the_mtime() {
    let env = TestEnv::new().with_git();
    append(&env, "alpha");
    let hundred_days_ago = (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339();
    let out = Command::new("git")
        .args([
            "commit",
            "-q",
            "-am",
            "alpha: rotate break-glass token after recovery",
        ])
        .env_clear()
        .envs(env.base_env())
        .env("GIT_AUTHOR_DATE", &hundred_days_ago)
        .current_dir(&env.fleet)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A later commit of another file must not count.
    std::fs::write(env.fleet.join("clusters/beta/cluster-config.env"), "X=1\n").unwrap();
    env.git(&["commit", "-q", "-am", "beta config"]);

    let report = json(
        &status(
            &env,
            &["alpha", "--no-decrypt", "--max-age", "90d", "-o", "json"],
        )
        .success(),
    );
    let age = report["token_age_seconds"].as_i64().unwrap();
    assert!(
        (100 * 86_400 - 60..=100 * 86_400 + 60).contains(&age),
        "{age}"
    );
    assert_eq!(report["age_source"], "commit");
    assert_eq!(
        report["last_commit"]["subject"],
        "alpha: rotate break-glass token after recovery"
    );
    assert_eq!(problems(&report), ["too_old"]);

    status(
        &env,
        &["alpha", "--no-decrypt", "--max-age", "90d", "--check"],
    )
    .code(1);
    status(
        &env,
        &["alpha", "--no-decrypt", "--max-age", "120d", "--check"],
    )
    .success();
}

#[test]
fn recipient_mismatch_says_to_run_updatekeys() {
    let env = TestEnv::new();
    let other = env.other_age_key();
    let public = std::fs::read_to_string(&other)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .unwrap();
    let config = std::fs::read_to_string(env.fleet.join(".sops.yaml")).unwrap();
    let first_rule = config
        .lines()
        .find(|l| l.trim_start().starts_with("age: "))
        .unwrap();
    std::fs::write(
        env.fleet.join(".sops.yaml"),
        config.replacen(first_rule, &format!("{first_rule},{public}"), 1),
    )
    .unwrap();
    let env = env.with_git();

    let assert = status(&env, &["alpha", "--check"]).code(1);
    let text = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(text.contains("differ from .sops.yaml"), "{text}");
    assert!(
        text.contains("sops updatekeys --yes clusters/alpha/break-glass-kubeconfig.enc.yaml"),
        "{text}"
    );

    let report = json(&status(&env, &["alpha", "-o", "json"]).success());
    assert_eq!(report["sops"]["recipients_match"], false);
    assert_eq!(report["sops"]["selective_rule"], serde_json::Value::Null);
    assert_eq!(
        report["sops"]["expected_recipients"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(problems(&report), ["recipients_mismatch"]);
}

#[test]
fn undecryptable_with_the_wrong_key_and_no_decrypt_needs_no_sops() {
    let env = clean_env();
    let other = env.other_age_key();
    let mut cmd = env.kube_dc();
    let assert = cmd
        .args([
            "bootstrap",
            "break-glass",
            "status",
            "--all",
            "--check",
            "-o",
            "json",
        ])
        .env("SOPS_AGE_KEY_FILE", &other)
        .assert()
        .code(1);
    let report = json(&assert);
    let alpha = cluster(&report, "alpha");
    assert_eq!(alpha["decryption"]["ok"], false);
    assert!(
        alpha["decryption"]["error"]
            .as_str()
            .unwrap()
            .contains("not one of the file's recipients"),
        "{alpha}"
    );
    assert_eq!(problems(alpha), ["undecryptable"]);

    // --no-decrypt with no key and a sops that fails if it is ever run.
    let fake = env.dir.path().join("sops-must-not-run");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch {}.ran\nexit 99\n", fake.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = env.kube_dc();
    cmd.args([
        "bootstrap",
        "break-glass",
        "status",
        "--all",
        "--check",
        "--no-decrypt",
        "-o",
        "json",
    ])
    .env_remove("SOPS_AGE_KEY_FILE")
    .env("KUBE_DC_SOPS", &fake);
    let report = json(&cmd.assert().success());
    assert_eq!(report["decrypted"], false);
    assert_eq!(cluster(&report, "alpha")["decryption"], Value::Null);
    assert!(
        !fake.with_extension("ran").exists(),
        "sops ran with --no-decrypt"
    );
}

#[test]
fn a_clean_fleet_passes_check_and_leaves_no_plaintext() {
    let env = clean_env();
    let before = support::files_under(&env.fleet);
    let assert = status(&env, &["--all", "--check", "--max-age", "1d"]).success();
    let text = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("CLUSTER  STATE      LAST COMMIT"),
        "{text}"
    );
    assert!(
        text.contains("1 cluster(s): 1 ok, 0 with problems"),
        "{text}"
    );
    let one = status(&env, &["alpha"]).success();
    let text = String::from_utf8_lossy(&one.get_output().stdout).into_owned();
    assert!(text.contains("state:          committed"), "{text}");
    assert!(
        text.contains("server:         https://kube-api.alpha.example.test:6443"),
        "{text}"
    );
    assert!(text.contains("(since last commit)"), "{text}");
    assert_eq!(support::files_under(&env.fleet), before);
}

#[test]
fn one_cluster_not_adopted_is_reported_and_fails_but_is_only_a_row_of_all() {
    let env = TestEnv::new().with_git();
    // A script asking about one cluster must not read success from a missing file.
    let assert = status(&env, &["beta"]).code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("cluster beta has no break-glass kubeconfig"),
        "{stderr}"
    );
    let text = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(text.contains("state:          not adopted"), "{text}");
    assert!(
        text.contains("fix: kube-dc bootstrap break-glass adopt beta"),
        "{text}"
    );
    status(&env, &["beta", "--check"]).code(1);
    status(&env, &["--all"]).success();
    status(&env, &[]).code(2);
    status(&env, &["alpha", "--all"]).code(2);
}

/// The published schemas (docs/schema/) are the contract: exact fields, types, values.
#[test]
fn json_matches_the_published_schemas() {
    let env = clean_env();
    let report = json(&status(&env, &["--all", "-o", "json"]).success());
    let problems = support::schema::project_violations("status-all.schema.json", &report);
    assert!(problems.is_empty(), "{problems}\n{report:#}");
    let single = json(&status(&env, &["alpha", "-o", "json"]).success());
    let problems = support::schema::project_violations("status.schema.json", &single);
    assert!(problems.is_empty(), "{problems}\n{single:#}");
}

/// Text from a file that holds terminal commands (here a recipient with an OSC 52
/// clipboard write, a bell and a carriage return) is shown as characters, not run: only
/// kube-dc's own colours reach the terminal as escape sequences, in text and JSON alike.
#[test]
fn terminal_commands_in_a_file_are_shown_not_run() {
    let env = clean_env();
    let file = env.break_glass_file("alpha");
    let text = std::fs::read_to_string(&file).unwrap();
    let hostile: String = text
        .lines()
        .map(|line| match line.split_once("recipient: ") {
            Some((indent, value)) => {
                format!("{indent}recipient: \"\\e]52;c;cHduZWQ=\\a\\r{value}\"\n")
            }
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&file, hostile).unwrap();
    for args in [["--color", "always"], ["-o", "json"]] {
        let out = status(&env, &[&["alpha"][..], &args].concat()).success();
        let out = out.get_output();
        let shown = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
        assert!(shown.contains(r"\u001b]52;c;cHduZWQ="), "{args:?}: {shown}");
        assert!(
            !shown.contains("\x1b]") && !shown.contains('\x07') && !shown.contains('\r'),
            "{args:?}: {shown:?}"
        );
        if args[0] == "--color" {
            assert!(
                shown.contains("\x1b[31m"),
                "our colours are gone: {shown:?}"
            );
        } else {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            let recipient = report["sops"]["recipients"][0].as_str().unwrap();
            assert!(
                recipient.starts_with("\x1b]52;"),
                "the data changed: {recipient:?}"
            );
        }
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
