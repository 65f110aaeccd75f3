//! Batch rotation against one real control plane. The clusters of the fixture share it,
//! each with its own namespace (BREAK_GLASS_NAMESPACE) so their objects do not collide;
//! one cluster's context points at a port where nothing listens.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::control_plane::ControlPlane;
use support::many_clusters::create_namespace;
use support::running::Running;
use support::{TestEnv, TokenControllerStopped, serial, shared_control_plane, show, text};

/// A kubeconfig with an admin context per cluster, `<cluster>-admin`; `dead` clusters'
/// contexts point at a closed port.
fn multi_kubeconfig(env: &TestEnv, cp: &ControlPlane, live: &[&str], dead: &[&str]) -> PathBuf {
    let admin = std::fs::read_to_string(cp.admin_kubeconfig()).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = env.dir.path().join("fleet-admins.kubeconfig");
    std::fs::copy(cp.admin_kubeconfig(), &path).unwrap();
    let kubectl = |args: &[&str]| {
        let out = cp.kubectl(&path).args(args).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
    };
    let user = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("user: "))
        .unwrap()
        .to_string();
    let cluster = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster: "))
        .unwrap()
        .to_string();
    kubectl(&[
        "config",
        "set-cluster",
        "dead",
        &format!("--server=https://{closed}"),
    ]);
    for name in live {
        kubectl(&[
            "config",
            "set-context",
            &format!("{name}-admin"),
            "--cluster",
            &cluster,
            "--user",
            &user,
        ]);
    }
    for name in dead {
        kubectl(&[
            "config",
            "set-context",
            &format!("{name}-admin"),
            "--cluster",
            "dead",
            "--user",
            &user,
        ]);
    }
    path
}

/// Gives each cluster its own namespace on the control plane and its URL; commits it.
fn prepare_fleet(env: &TestEnv, cp: &ControlPlane, clusters: &[&str]) {
    for name in clusters {
        let namespace = format!("bg-{}", name.replace('/', "-"));
        let config = env
            .fleet
            .join("clusters")
            .join(name)
            .join("cluster-config.env");
        let mut settings = std::fs::read_to_string(&config).unwrap();
        settings.push_str(&format!(
            "\nBREAK_GLASS_NAMESPACE={namespace}\nKUBE_API_EXTERNAL_URL={}\n",
            cp.server_url()
        ));
        std::fs::write(&config, settings).unwrap();
        create_namespace(cp, &namespace);
    }
    env.git(&["commit", "-qam", "clusters on the test control plane"]);
}

/// Places `clusters` on the control plane (own namespaces, an admin context each) and
/// adopts them; returns the kubeconfig with their admin contexts.
fn adopted_on_control_plane(env: &TestEnv, cp: &ControlPlane, clusters: &[&str]) -> PathBuf {
    prepare_fleet(env, cp, clusters);
    let kubeconfig = multi_kubeconfig(env, cp, clusters, &[]);
    for name in clusters {
        let context = format!("{name}-admin");
        let out = kube_dc(
            env,
            cp,
            &kubeconfig,
            &["adopt", name, "--kube-context", &context],
        );
        assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    }
    kubeconfig
}

fn kube_dc(env: &TestEnv, cp: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Output {
    env.kube_dc_with_kubectl(cp)
        .args(["bootstrap", "break-glass"])
        .args(args)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn one_unreachable_cluster_fails_alone_and_the_others_are_rotated_and_committed() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    prepare_fleet(&env, cp, &["alpha", "beta", "eu/dc1"]);
    let kubeconfig = multi_kubeconfig(&env, cp, &["alpha", "beta"], &["eu/dc1"]);
    for name in ["alpha", "beta"] {
        let out = kube_dc(
            &env,
            cp,
            &kubeconfig,
            &["adopt", name, "--kube-context", &format!("{name}-admin")],
        );
        assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    }
    let before = env.git(&["rev-parse", "HEAD"]);

    let out = kube_dc(
        &env,
        cp,
        &kubeconfig,
        &[
            "rotate",
            "*",
            "eu/*",
            "--kube-context",
            "{cluster}-admin",
            "--jobs",
            "3",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(summary["ok"], 2, "{summary:#}");
    assert_eq!(summary["failed"], 1, "{summary:#}");
    let rows = summary["clusters"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "eu/dc1"]);
    for row in &rows[..2] {
        assert_eq!(row["result"], "ok", "{row:#}");
        assert_eq!(row["server"], cp.server_url());
        assert_eq!(row["secret_uid"].as_str().unwrap().len(), 36);
    }
    assert_eq!(rows[2]["result"], "failed");
    assert!(
        rows[2]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the apiserver"),
        "{:#}",
        rows[2]
    );

    // One commit per rotated cluster, nothing for the failed one, nothing else changed.
    let log = env.git(&["log", "--format=%s", &format!("{}..HEAD", before.trim())]);
    let mut subjects: Vec<&str> = log.lines().collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "alpha: rotate break-glass token after recovery",
            "beta: rotate break-glass token after recovery"
        ]
    );
    assert!(!env.break_glass_file("eu/dc1").exists());
    assert_eq!(env.git(&["status", "--porcelain"]), "");

    // Each rotated kubeconfig works as its own namespace's account.
    for name in ["alpha", "beta"] {
        let file = env.decrypt_to_file(name, &format!("{name}.kubeconfig"));
        let who = cp.whoami(&file);
        assert_eq!(
            text(&who.stdout),
            format!("system:serviceaccount:bg-{name}:break-glass"),
            "{}",
            show(&who)
        );
    }
}

#[test]
fn clusters_without_an_admin_context_are_reported_not_guessed() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    // beta and eu/dc1 have no KUBE_CONTEXT; the kubeconfig's current context would work
    // for the control plane, but a batch must not assume it is every cluster's.
    let out = kube_dc(
        &env,
        cp,
        cp.admin_kubeconfig(),
        &["rotate", "beta", "eu/dc1", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("beta: would be skipped: no admin context for beta"),
        "{stdout}"
    );
    assert!(
        stdout.contains("eu/dc1: would be skipped: no admin context for eu/dc1"),
        "{stdout}"
    );
}

#[test]
fn selection_errors_are_usage_errors() {
    let env = TestEnv::new().with_git();
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "rotate", "us/*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("\"us/*\" matches no cluster"),
        "{}",
        show(&out)
    );
    let out = env
        .kube_dc()
        .args([
            "bootstrap",
            "break-glass",
            "rotate",
            "alpha",
            "beta",
            "--server",
            "https://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn a_shard_must_be_i_of_n_and_an_empty_one_rotates_nothing() {
    let env = TestEnv::new().with_git();
    let rotate = |shard: &str| {
        env.kube_dc()
            .args([
                "bootstrap",
                "break-glass",
                "rotate",
                "--all",
                "--shard",
                shard,
            ])
            .output()
            .unwrap()
    };
    for bad in ["0/4", "5/4", "1/0", "2", "x/4"] {
        let out = rotate(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", show(&out));
        assert!(
            text(&out.stderr).contains("expected I/N"),
            "{bad}: {}",
            show(&out)
        );
    }
    // The fixture's only adopted cluster, alpha, hashes to shard 4 of 4.
    let out = rotate("1/4");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("shard 1/4 holds none of the 1 selected cluster(s)"),
        "{}",
        show(&out)
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn dry_run_of_a_batch_plans_every_cluster_and_changes_nothing() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let kubeconfig = multi_kubeconfig(&env, cp, &["alpha", "beta"], &[]);
    let out = kube_dc(
        &env,
        cp,
        &kubeconfig,
        &[
            "rotate",
            "alpha",
            "beta",
            "--kube-context",
            "{cluster}-admin",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("dry run: rotate alpha") && stdout.contains("dry run: rotate beta"),
        "{stdout}"
    );
    assert!(
        stdout.contains("connect with context \"beta-admin\""),
        "{stdout}"
    );
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn self_rotation_of_several_clusters_needs_only_the_age_key() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopted_on_control_plane(&env, cp, &["alpha", "beta"]);
    let before = env.git(&["rev-parse", "HEAD"]);
    // No --kubeconfig, no ~/.kube/config: the break-glass files are the only logins.
    let out = env
        .kube_dc_with_kubectl(cp)
        .args([
            "bootstrap",
            "break-glass",
            "rotate",
            "*",
            "--via",
            "break-glass",
            "--jobs",
            "2",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], 2, "{summary:#}");
    let log = env.git(&["log", "--format=%s", &format!("{}..HEAD", before.trim())]);
    assert_eq!(log.lines().count(), 2, "{log}");
    for name in ["alpha", "beta"] {
        let file = env.decrypt_to_file(name, &format!("{name}-self.kubeconfig"));
        let who = cp.whoami(&file);
        assert_eq!(
            text(&who.stdout),
            format!("system:serviceaccount:bg-{name}:break-glass"),
            "{}",
            show(&who)
        );
        let stand_in = cp
            .kubectl(cp.admin_kubeconfig())
            .args([
                "get",
                "serviceaccount",
                "-n",
                &format!("bg-{name}"),
                "break-glass-next",
            ])
            .output()
            .unwrap();
        assert!(
            !stand_in.status.success(),
            "the stand-in account was left in bg-{name}"
        );
    }
}

#[test]
fn single_commit_lists_the_clusters_and_names_the_incident() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let kubeconfig = adopted_on_control_plane(&env, cp, &["alpha", "beta"]);
    let before = env.git(&["rev-parse", "HEAD"]);
    let args = [
        "rotate",
        "alpha",
        "beta",
        "--kube-context",
        "{cluster}-admin",
        "--single-commit",
        "--incident",
        "INC-7",
    ];
    let out = kube_dc(&env, cp, &kubeconfig, &args);
    assert!(out.status.success(), "{}", show(&out));
    let log = env.git(&["log", "--format=%s", &format!("{}..HEAD", before.trim())]);
    assert_eq!(
        log.trim(),
        "rotate break-glass kubeconfigs of 2 clusters after incident INC-7"
    );
    let body = env.git(&["log", "-1", "--format=%b"]);
    let server = cp.server_url();
    assert_eq!(body.trim(), format!("- alpha: {server}\n- beta: {server}"));
    let files = env.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        files.trim(),
        "clusters/alpha/break-glass-kubeconfig.enc.yaml\nclusters/beta/break-glass-kubeconfig.enc.yaml"
    );
}

/// Ctrl-C while several clusters wait after their revocation: every one of them is
/// finished and committed, none is stranded.
#[test]
fn ctrl_c_during_a_batch_finishes_the_revoked_rotations() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let kubeconfig = adopted_on_control_plane(&env, cp, &["alpha", "beta"]);
    let before = env.git(&["rev-parse", "HEAD"]);
    let stopped = TokenControllerStopped::new(cp);
    let mut cmd = env.kube_dc_process();
    cmd.args(["bootstrap", "break-glass", "rotate", "--all", "--jobs", "2"])
        .args(["--kube-context", "{cluster}-admin", "--timeout", "60s"])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let batch = Running::start(cmd);
    batch.wait_for("[alpha] waiting for the token controller");
    batch.wait_for("[beta] waiting for the token controller");
    batch.signal("-INT");
    batch.wait_for("finishing the rotation");
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(stopped);
    let (code, err) = batch.finish();
    assert_eq!(code, Some(0), "{err}");
    let log = env.git(&["log", "--format=%s", &format!("{}..HEAD", before.trim())]);
    assert_eq!(log.lines().count(), 2, "{log}\n{err}");
    for name in ["alpha", "beta"] {
        let file = env.decrypt_to_file(name, &format!("{name}.kubeconfig"));
        let who = text(&cp.whoami(&file).stdout);
        assert!(who.ends_with(":break-glass"), "{name}: {who}");
    }
}

/// A script asking for JSON gets JSON, however many clusters `--all` finds: here one.
#[test]
fn rotate_all_output_json_of_a_one_cluster_fleet_prints_the_json_summary() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new();
    std::fs::remove_file(env.break_glass_file("alpha")).unwrap();
    let env = env.with_git();
    let kubeconfig = adopted_on_control_plane(&env, cp, &["beta"]);
    let args = [
        "rotate",
        "--all",
        "--kube-context",
        "{cluster}-admin",
        "--output",
        "json",
    ];
    let out = kube_dc(&env, cp, &kubeconfig, &args);
    assert!(out.status.success(), "{}", show(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", show(&out)));
    assert_eq!(summary["ok"], 1, "{summary}");
    assert_eq!(summary["clusters"][0]["cluster"], "beta", "{summary}");
    assert_eq!(summary["clusters"][0]["result"], "ok", "{summary}");
}
