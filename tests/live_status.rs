//! `status --live` against a real control plane: what the apiserver records after adopt
//! and `use`, a Secret deleted out of band, a rotation that never reached the fleet file,
//! an unreachable cluster and one without an admin context. Each test puts its clusters'
//! break-glass objects in namespaces of their own (BREAK_GLASS_NAMESPACE), so no test
//! sees another's objects; they still run one at a time (`serial()`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::control_plane::ControlPlane;
use support::{TestEnv, bg, serial, shared_control_plane, show, text};

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Output {
    let out = cp
        .kubectl(cp.admin_kubeconfig())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", show(&out));
    out
}

/// Gives each cluster its own namespace (created now) and the control plane's URL, and
/// commits that.
fn place(env: &TestEnv, cp: &ControlPlane, clusters: &[(&str, &str)]) {
    for (name, namespace) in clusters {
        let config = env
            .fleet
            .join("clusters")
            .join(name)
            .join("cluster-config.env");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\nBREAK_GLASS_NAMESPACE={namespace}\nKUBE_API_EXTERNAL_URL={}\n",
            cp.server_url()
        ));
        std::fs::write(&config, text).unwrap();
        kubectl(cp, &["create", "namespace", namespace]);
    }
    env.git(&["commit", "-qam", "clusters on the test control plane"]);
}

/// A kubeconfig whose current context and `alpha-admin` (alpha's KUBE_CONTEXT in the
/// fixture) log in to the control plane as admin, and `beta-admin` points at a closed port.
fn admins(env: &TestEnv, cp: &ControlPlane) -> PathBuf {
    let path = env.dir.path().join("admins.kubeconfig");
    std::fs::copy(cp.admin_kubeconfig(), &path).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = |args: &[&str]| {
        let out = cp.kubectl(&path).arg("config").args(args).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        text(&out.stdout)
    };
    let field = |f: &str| {
        config(&[
            "view",
            "--minify",
            "-o",
            &format!("jsonpath={{.contexts[0].context.{f}}}"),
        ])
    };
    let (cluster, user) = (field("cluster"), field("user"));
    config(&["set-cluster", "dead", &format!("--server=https://{closed}")]);
    config(&[
        "set-context",
        "alpha-admin",
        "--cluster",
        &cluster,
        "--user",
        &user,
    ]);
    config(&[
        "set-context",
        "beta-admin",
        "--cluster",
        "dead",
        "--user",
        &user,
    ]);
    path
}

fn adopt(env: &TestEnv, cp: &ControlPlane, kubeconfig: &Path, cluster: &str, extra: &[&str]) {
    let mut args = vec![
        "adopt",
        cluster,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = bg(env, cp, &args);
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
}

/// A fleet whose alpha is adopted on the control plane, its objects in `namespace`, and
/// the admin kubeconfig from [`admins`].
fn alpha_adopted_in(cp: &ControlPlane, namespace: &str) -> (TestEnv, PathBuf) {
    let env = TestEnv::new().with_git();
    place(&env, cp, &[("alpha", namespace)]);
    let kc = admins(&env, cp);
    adopt(&env, cp, &kc, "alpha", &[]);
    (env, kc)
}

/// `status <cluster> --live`, with the cluster's admin context from [`admins`].
fn live(
    env: &TestEnv,
    cp: &ControlPlane,
    kubeconfig: &Path,
    cluster: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "status",
        cluster,
        "--live",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bg(env, cp, &args)
}

fn live_json(env: &TestEnv, cp: &ControlPlane, kubeconfig: &Path, cluster: &str) -> Value {
    let out = live(env, cp, kubeconfig, cluster, &["-o", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    report["live"].clone()
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"))
        .parse()
        .unwrap()
}

/// The label and the file's time have one-second precision: a use in the same second as
/// the encryption could not be told from adopt's own check.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1_100));
}

fn assert_check_fails_with(
    env: &TestEnv,
    cp: &ControlPlane,
    kubeconfig: &Path,
    cluster: &str,
    label: &str,
) {
    let out = live(env, cp, kubeconfig, cluster, &["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stdout).contains(label), "{}", show(&out));
}

#[test]
fn a_use_after_the_file_was_written_shows_with_its_date() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    place(&env, cp, &[("alpha", "live-used")]);
    let kc = admins(&env, cp);
    // --no-verify: no check by adopt, so the token has not authenticated yet.
    adopt(&env, cp, &kc, "alpha", &["--no-verify"]);
    let fresh = live_json(&env, cp, &kc, "alpha");
    assert_eq!(fresh["state"], "unused_since_rotation", "{fresh:#}");
    assert_eq!(fresh["last_used"], Value::Null, "{fresh:#}");
    assert_eq!(fresh["token_matches"], true, "{fresh:#}");
    assert_eq!(fresh["service_account_exists"], true);
    assert_eq!(fresh["secret_exists"], true);
    let out = live(&env, cp, &kc, "alpha", &["--check"]);
    assert!(out.status.success(), "{}", show(&out));

    next_second();
    let out = bg(
        &env,
        cp,
        &[
            "use", "alpha", "--reason", "test", "--", "kubectl", "get", "ns",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let used = live_json(&env, cp, &kc, "alpha");
    assert_eq!(used["state"], "used_since_rotation", "{used:#}");
    assert_eq!(used["last_used"], today().as_str(), "{used:#}");
    assert!(
        time(&used["last_used_recorded_at"]) > time(&used["file_written_at"]),
        "{used:#}"
    );
    assert_check_fails_with(&env, cp, &kc, "alpha", "used since last rotation");
}

/// adopt verifies the new token against the cluster before it encrypts the file, which the
/// apiserver records as today's use; adopt then clears the label, so that a real use later
/// the same day (the apiserver writes one date a day) still shows.
#[test]
fn adopts_own_check_is_forgotten_so_a_use_the_same_day_shows() {
    let _serial = serial();
    let cp = shared_control_plane();
    let (env, kc) = alpha_adopted_in(cp, "live-checked");
    let checked = live_json(&env, cp, &kc, "alpha");
    assert_eq!(checked["state"], "unused_since_rotation", "{checked:#}");
    assert!(checked["last_used"].is_null(), "{checked:#}");

    // The apiserver caches a successful token review for 10 s and records uses only on
    // a cache miss: the check's cache entry must expire first.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let out = bg(
        &env,
        cp,
        &[
            "use", "alpha", "--reason", "test", "--", "kubectl", "get", "ns",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let after = live_json(&env, cp, &kc, "alpha");
    assert_eq!(after["state"], "used_since_rotation", "{after:#}");
    assert_eq!(after["last_used"], today().as_str(), "{after:#}");
}

#[test]
fn a_secret_deleted_out_of_band_is_revoked() {
    let _serial = serial();
    let cp = shared_control_plane();
    let (env, kc) = alpha_adopted_in(cp, "live-revoked");
    kubectl(
        cp,
        &[
            "delete",
            "secret",
            "-n",
            "live-revoked",
            "break-glass-token",
            "--wait",
        ],
    );
    let revoked = live_json(&env, cp, &kc, "alpha");
    assert_eq!(revoked["state"], "revoked", "{revoked:#}");
    assert_eq!(revoked["secret_exists"], false, "{revoked:#}");
    assert_eq!(revoked["service_account_exists"], true, "{revoked:#}");
    assert_eq!(revoked["token_matches"], Value::Null, "{revoked:#}");
    assert_check_fails_with(&env, cp, &kc, "alpha", "revoked");
}

/// A login that may read the break-glass objects but not Leases gets its report, and the
/// report says it cannot tell whether a rotation is under way (not "no lock").
#[test]
fn a_login_that_cannot_read_the_rotation_lock_is_told_so() {
    let _serial = serial();
    let cp = shared_control_plane();
    let (env, _) = alpha_adopted_in(cp, "live-no-lease");
    let namespace = ["-n", "live-no-lease"];
    let role = ["create", "role", "objects", "--verb=get"];
    kubectl(
        cp,
        &[
            &role[..],
            &["--resource=serviceaccounts,secrets"],
            &namespace,
        ]
        .concat(),
    );
    let binding = [
        "create",
        "rolebinding",
        "objects",
        "--role=objects",
        "--user=nobody",
    ];
    kubectl(cp, &[&binding[..], &namespace].concat());
    let nobody = cp.nobody_kubeconfig().to_str().unwrap();
    let out = bg(
        &env,
        cp,
        &[
            "status",
            "alpha",
            "--live",
            "--kubeconfig",
            nobody,
            "--kube-context",
            "nobody@kube-dc-test",
            "-o",
            "json",
        ],
    );
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let live = &report["live"];
    assert_eq!(live["state"], "unused_since_rotation", "{live:#}");
    assert_eq!(live["rotation_lock"], Value::Null, "{live:#}");
    let message = live["message"].as_str().unwrap();
    assert!(
        message.contains("whether a rotation is under way is unknown")
            && message.contains("forbidden"),
        "{message}"
    );
}

/// A rotation whose file never reached the fleet: the cluster holds a token the file lacks.
#[test]
fn a_rotation_that_was_not_committed_leaves_the_file_stale() {
    let _serial = serial();
    let cp = shared_control_plane();
    let (env, kc) = alpha_adopted_in(cp, "live-stale");
    let before = live_json(&env, cp, &kc, "alpha");
    let file = "clusters/alpha/break-glass-kubeconfig.enc.yaml";
    let out = bg(
        &env,
        cp,
        &[
            "rotate",
            "alpha",
            "--no-commit",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    env.git(&["checkout", "--", file]);
    assert_eq!(env.git(&["status", "--porcelain"]), "");

    let stale = live_json(&env, cp, &kc, "alpha");
    assert_eq!(stale["state"], "stale", "{stale:#}");
    assert_eq!(stale["token_matches"], false, "{stale:#}");
    assert_eq!(
        stale["file_token_sha256_prefix"],
        before["file_token_sha256_prefix"]
    );
    assert_ne!(
        stale["cluster_token_sha256_prefix"],
        stale["file_token_sha256_prefix"]
    );
    assert_ne!(stale["secret_uid"], before["secret_uid"]);
    assert_check_fails_with(&env, cp, &kc, "alpha", "stale");
}

fn set_config(env: &TestEnv, cluster: &str, line: &str) {
    let path = env
        .fleet
        .join("clusters")
        .join(cluster)
        .join("cluster-config.env");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&path, text).unwrap();
}

fn row<'a>(report: &'a Value, cluster: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap_or_else(|| panic!("no {cluster} in {report:#}"))
}

#[test]
fn all_reports_each_cluster_as_a_row_even_when_unreachable_and_documents_its_fields() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let clusters = [
        ("alpha", "live-a"),
        ("beta", "live-b"),
        ("eu/dc1", "live-c"),
    ];
    place(&env, cp, &clusters);
    let kubeconfig = admins(&env, cp);
    for (name, _) in clusters {
        adopt(&env, cp, &kubeconfig, name, &[]);
    }
    // beta was adopted with the current context; from now on its admin context is dead.
    set_config(&env, "beta", "KUBE_CONTEXT=beta-admin");
    env.git(&["commit", "-qam", "beta's admin context"]);
    let report_of = |extra: &[&str]| {
        let mut args = vec!["status", "--all", "--live", "--kubeconfig"];
        args.push(kubeconfig.to_str().unwrap());
        args.extend_from_slice(extra);
        bg(&env, cp, &args)
    };

    let out = report_of(&["-o", "json"]);
    assert!(
        out.status.success(),
        "one bad cluster is a row: {}",
        show(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["live"], true);
    assert_eq!(
        row(&report, "alpha")["live"]["state"],
        "unused_since_rotation"
    );
    assert_eq!(row(&report, "alpha")["live"]["context"], "alpha-admin");
    let beta = &row(&report, "beta")["live"];
    assert_eq!(beta["state"], "unreachable", "{beta:#}");
    assert!(
        beta["message"].as_str().unwrap().contains("cannot reach"),
        "{beta:#}"
    );
    let dc1 = &row(&report, "eu/dc1")["live"];
    assert_eq!(dc1["state"], "no_admin_context", "{dc1:#}");
    assert_eq!(dc1["context"], Value::Null);
    assert_eq!(report["summary"]["with_problems"], 2, "{report:#}");
    assert_documented(&row(&report, "alpha")["live"]);

    let out = report_of(&["--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let table = text(&out.stdout);
    assert!(table.contains("LIVE"), "{table}");
    for expected in ["unused since rotation", "unreachable", "no admin context"] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    assert_no_token_in(cp, &[&out], "live-a");
}

fn assert_documented(live: &Value) {
    let docs = std::fs::read_to_string(support::repo_root().join("docs/json-output.md")).unwrap();
    let mut keys: Vec<&str> = live
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    let mut want = vec![
        "state",
        "message",
        "context",
        "service_account_exists",
        "secret_exists",
        "secret_uid",
        "token_matches",
        "file_token_sha256_prefix",
        "cluster_token_sha256_prefix",
        "last_used",
        "last_used_recorded_at",
        "invalid_since",
        "file_written_at",
        "last_session",
        "rotation_lock",
    ];
    want.sort();
    assert_eq!(keys, want);
    for key in want {
        assert!(
            docs.contains(&format!("`{key}`")),
            "{key} is not in docs/json-output.md"
        );
    }
    for state in [
        "unused_since_rotation",
        "used_since_rotation",
        "stale",
        "revoked",
        "unreachable",
        "no_admin_context",
    ] {
        assert!(
            docs.contains(&format!("`{state}`")),
            "{state} is not documented"
        );
    }
}

/// Neither the token nor its full digest appears in the report.
fn assert_no_token_in(cp: &ControlPlane, outs: &[&Output], namespace: &str) {
    let token = cp.secret_token(namespace, "break-glass-token");
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    for out in outs {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(&token), "token printed");
        assert!(
            !all.contains(&digest[..16]),
            "digest printed beyond its prefix"
        );
    }
}
