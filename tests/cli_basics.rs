//! The command line on the fixture fleet: fleet discovery, cluster names, and `status`.

mod support;

use support::TestEnv;

fn status(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut full = vec!["bootstrap", "break-glass", "status"];
    full.extend_from_slice(args);
    env.kube_dc().args(full).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn status_prints_the_five_spec_fields() {
    let env = TestEnv::new();
    let out = status(&env, &["alpha"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let file = env.break_glass_file("alpha").canonicalize().unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(text.contains("cluster:        alpha\n"), "{text}");
    assert!(
        text.contains(&format!("file:           {}\n", file.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("encrypted size: {size} bytes\n")),
        "{text}"
    );
    assert!(text.contains("last modified:  "), "{text}");
    assert!(
        text.contains("server:         https://kube-api.alpha.example.test:6443\n"),
        "{text}"
    );
    assert!(
        support::canary::leaked(&text).is_none(),
        "status printed the token"
    );
}

#[test]
fn status_json_parses_with_documented_fields() {
    let env = TestEnv::new();
    let out = status(&env, &["alpha", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["cluster"], "alpha");
    assert_eq!(
        doc["file"],
        "clusters/alpha/break-glass-kubeconfig.enc.yaml"
    );
    assert_eq!(doc["server"], "https://kube-api.alpha.example.test:6443");
    assert!(doc["encrypted_size_bytes"].as_u64().unwrap() > 500);
    assert!(chrono::DateTime::parse_from_rfc3339(doc["modified"].as_str().unwrap()).is_ok());
}

#[test]
fn status_of_a_cluster_without_file_fails() {
    let env = TestEnv::new();
    let out = status(&env, &["beta"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cluster beta has no break-glass kubeconfig"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn wrong_repo_is_an_error_naming_the_path_not_a_fallthrough() {
    let env = TestEnv::new();
    // cwd is a valid fleet; a mistyped --repo must not fall through to it.
    let out = status(&env, &["alpha", "--repo", "/nonexistent/fleet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--repo points to /nonexistent/fleet"),
        "{}",
        stderr(&out)
    );

    let not_fleet = env.dir.path().join("home");
    let out = env
        .kube_dc()
        .env("KUBE_DC_FLEET", &not_fleet)
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = stderr(&out);
    assert!(
        msg.contains("KUBE_DC_FLEET points to") && msg.contains("is not a fleet repo"),
        "{msg}"
    );
}

#[test]
fn env_var_and_walk_up_find_the_fleet() {
    let env = TestEnv::new();
    let out = env
        .kube_dc()
        .current_dir(&env.home)
        .env("KUBE_DC_FLEET", &env.fleet)
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let deep = env.fleet.join("clusters/eu/dc1");
    let out = env
        .kube_dc()
        .current_dir(&deep)
        .args(["-v", "bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let fleet = env.fleet.canonicalize().unwrap();
    assert!(
        stderr(&out).contains(&format!("fleet: {}", fleet.display())),
        "{}",
        stderr(&out)
    );

    let out = env
        .kube_dc()
        .current_dir(&env.home)
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no fleet repo found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nested_names_traversal_and_suggestions() {
    let env = TestEnv::new();
    let out = status(&env, &["eu/dc1"]);
    assert_eq!(out.status.code(), Some(1), "eu/dc1 exists but has no file");
    assert!(
        stderr(&out).contains("cluster eu/dc1 has no break-glass kubeconfig"),
        "{}",
        stderr(&out)
    );

    let out = status(&env, &["../x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid cluster name \"../x\""),
        "{}",
        stderr(&out)
    );

    let out = status(&env, &["eu/dc2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean eu/dc1?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_teaches_the_command_tree() {
    let out = assert_cmd::Command::new(support::kube_dc_bin())
        .args(["bootstrap", "break-glass", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("status"), "{text}");
    let out = assert_cmd::Command::new(support::kube_dc_bin())
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Exit codes: 0 success, 1 the operation failed, 2 usage"),
        "{text}"
    );
}

#[test]
fn a_relative_age_key_path_is_taken_from_where_the_user_is() {
    let env = TestEnv::new();
    // sops runs in the fleet root; the key path must still mean the user's directory.
    let out = env
        .kube_dc()
        .current_dir(env.dir.path())
        .env("SOPS_AGE_KEY_FILE", "age-key.txt")
        .args([
            "--repo",
            "fleet",
            "bootstrap",
            "break-glass",
            "status",
            "alpha",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("decrypts:       ok"));
}
