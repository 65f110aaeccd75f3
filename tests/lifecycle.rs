//! adopt, use and rotate against a real kube-apiserver and kube-controller-manager, with
//! the real sops, age and kubectl. The tests share one control plane and run one at a
//! time (`serial()`): the break-glass objects have fixed names.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::control_plane::ControlPlane;
use support::full_disk;
use support::running::Running;
use support::{
    BG_USER, TestEnv, TokenControllerStopped, bg, files_under, serial, shared_control_plane, show,
    text,
};

fn admin<'a>(cp: &'a ControlPlane, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = args.to_vec();
    full.extend([
        "--kubeconfig",
        cp.admin_kubeconfig().to_str().unwrap(),
        "--server",
        cp.server_url(),
    ]);
    full
}

fn kubectl(cp: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Output {
    cp.kubectl(kubeconfig).args(args).output().unwrap()
}

/// The token the cluster holds now (for leak checks; never printed).
fn cluster_token(cp: &ControlPlane) -> String {
    cp.secret_token("kube-system", "break-glass-token")
}

fn secret_uid(cp: &ControlPlane) -> Option<String> {
    cp.secret_field("kube-system", "break-glass-token", "{.metadata.uid}")
}

/// The User-Agents of the requests the break-glass ServiceAccount made, from the
/// apiserver's audit log.
fn break_glass_user_agents(cp: &ControlPlane) -> Vec<String> {
    let log = std::fs::read_to_string(cp.dir().join("logs/audit.log")).unwrap();
    let mut agents: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["user"]["username"] == BG_USER)
        .filter_map(|event| Some(event["userAgent"].as_str()?.to_string()))
        .collect();
    agents.dedup();
    agents
}

fn adopt_ok(env: &TestEnv, cp: &ControlPlane, cluster: &str) -> Output {
    let out = bg(env, cp, &admin(cp, &["adopt", cluster]));
    assert!(
        out.status.success(),
        "adopt {cluster} failed:\n{}\n{}",
        show(&out),
        cp.log_tail()
    );
    out
}

#[test]
fn adopt_writes_a_kubeconfig_that_kubectl_uses_as_cluster_admin_and_readopt_keeps_the_token() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    let started = Instant::now();
    let out = adopt_ok(&env, cp, "beta");
    eprintln!("adopt took {:?}", started.elapsed());
    assert!(
        text(&out.stdout)
            .contains("adopt beta: wrote clusters/beta/break-glass-kubeconfig.enc.yaml"),
        "{}",
        show(&out)
    );

    // Committed alone, with the runbook's message, through the git CLI.
    assert_eq!(
        env.git(&["log", "-1", "--format=%s"]).trim(),
        "beta: adopt break-glass kubeconfig"
    );
    assert_eq!(
        env.git(&["show", "--name-only", "--format=", "HEAD"])
            .trim(),
        "clusters/beta/break-glass-kubeconfig.enc.yaml"
    );
    assert!(text(&out.stderr).contains("not pushed"), "{}", show(&out));

    // Decrypted by the real sops, used by the real kubectl.
    let kubeconfig = env.break_glass_login(cp, "beta", "beta.kubeconfig");
    let can = kubectl(cp, &kubeconfig, &["auth", "can-i", "*", "*"]);
    assert_eq!(text(&can.stdout).trim(), "yes", "{}", show(&can));
    for object in ["serviceaccount/break-glass", "secret/break-glass-token"] {
        let label = kubectl(
            cp,
            cp.admin_kubeconfig(),
            &[
                "get",
                "-n",
                "kube-system",
                object,
                "-o",
                "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
            ],
        );
        assert_eq!(text(&label.stdout), "kube-dc", "{object}: {}", show(&label));
    }

    // kube-dc's own calls with the break-glass token (the verification) are told from a
    // person's in the audit log by their User-Agent.
    let agents = break_glass_user_agents(cp);
    assert!(
        !agents.is_empty(),
        "no break-glass request in the audit log"
    );
    let ours = format!("kube-dc/{} (", env!("CARGO_PKG_VERSION"));
    assert!(agents.iter().any(|a| a.starts_with(&ours)), "{agents:?}");
    assert!(
        agents.iter().any(|a| a.starts_with("kubectl/")),
        "{agents:?}"
    );

    let uid = secret_uid(cp);
    let token = cluster_token(cp);
    let file = std::fs::read(env.break_glass_file("beta")).unwrap();
    let head = env.git(&["rev-parse", "HEAD"]);
    // Nothing changed: the file is left as it is and nothing is committed.
    let out = adopt_ok(&env, cp, "beta");
    assert!(
        text(&out.stdout).contains("adopt beta: already up to date"),
        "{}",
        show(&out)
    );
    assert_eq!(secret_uid(cp), uid, "re-adopt replaced the Secret");
    assert_eq!(std::fs::read(env.break_glass_file("beta")).unwrap(), file);
    assert_eq!(env.git(&["rev-parse", "HEAD"]), head, "re-adopt committed");
    // Another server is a change: written and committed, with the same token.
    let other = cp.server_url().replace("127.0.0.1", "localhost");
    let kubeconfig = cp.admin_kubeconfig().to_str().unwrap();
    let args = [
        "adopt",
        "beta",
        "--kubeconfig",
        kubeconfig,
        "--server",
        &other,
    ];
    let out = bg(&env, cp, &args);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("adopt beta: wrote"),
        "{}",
        show(&out)
    );
    assert_ne!(env.git(&["rev-parse", "HEAD"]), head, "not committed");
    let again = env.decrypt_to_file("beta", "beta-again.kubeconfig");
    let again = std::fs::read_to_string(again).unwrap();
    assert!(
        again.contains(&token),
        "re-adopt did not keep the current token"
    );
}

#[test]
fn rotate_revokes_the_old_token_keeps_the_server_and_the_new_token_works() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    // eu/dc1 has no KUBE_API_EXTERNAL_URL: the URL given at adopt must survive rotate.
    let localhost = cp.server_url().replace("127.0.0.1", "localhost");
    let kc = cp.admin_kubeconfig().to_str().unwrap();
    let out = bg(
        &env,
        cp,
        &[
            "adopt",
            "eu/dc1",
            "--kubeconfig",
            kc,
            "--server",
            &localhost,
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let old = env.break_glass_login(cp, "eu/dc1", "old.kubeconfig");
    let old_uid = secret_uid(cp);

    let out = bg(&env, cp, &["rotate", "eu/dc1", "--kubeconfig", kc]);
    assert!(out.status.success(), "{}", show(&out));
    assert_ne!(secret_uid(cp), old_uid, "rotate kept the old Secret");

    cp.assert_rejected(&old);

    let new = env.break_glass_login(cp, "eu/dc1", "new.kubeconfig");
    let new_text = std::fs::read_to_string(&new).unwrap();
    assert!(
        new_text.contains(&format!("server: {localhost}")),
        "server changed:\n{}",
        new_text
            .lines()
            .filter(|l| l.contains("server"))
            .collect::<String>()
    );
}

#[test]
fn use_runs_one_command_as_break_glass_and_propagates_its_exit_code() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let out = bg(
        &env,
        cp,
        &[
            "use",
            "beta",
            "--reason",
            "test",
            "--",
            "kubectl",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), BG_USER);
    let banner = text(&out.stderr);
    for line in [
        "BREAK-GLASS ACTIVE",
        "cluster:  beta",
        &format!("server:   {}", cp.server_url()),
        "identity: ServiceAccount/break-glass (cluster-admin)",
        "NOT your email",
        "kube-dc bootstrap break-glass rotate beta",
    ] {
        assert!(banner.contains(line), "banner lacks {line:?}:\n{banner}");
    }
    assert!(!banner.contains('\x1b'), "colour with NO_COLOR set");

    // The bare form, the session variables, and the exit code.
    let script = "test \"$KUBE_DC_BREAK_GLASS\" = 1 && test \"$KUBE_DC_BREAK_GLASS_CLUSTER\" = beta && test -f \"$KUBECONFIG\" && stat -c %a \"$KUBECONFIG\" \"$(dirname \"$KUBECONFIG\")\" && exit 7";
    let out = bg(
        &env,
        cp,
        &["beta", "--reason", "test", "--", "sh", "-c", script],
    );
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    assert_eq!(text(&out.stdout), "600\n700\n");
    let sessions = env.home.join(".kube-dc/break-glass");
    assert_eq!(
        std::fs::read_dir(&sessions).unwrap().count(),
        0,
        "session file left behind"
    );
}

/// Stops the token controller while `f` runs.
fn with_token_controller_stopped<T>(cp: &ControlPlane, f: impl FnOnce() -> T) -> T {
    let _stopped = TokenControllerStopped::new(cp);
    f()
}

/// `rotate beta`, started with the token controller stopped so that it waits after
/// revoking the token; returned once its stderr says so.
fn rotation_waiting_after_revoke(env: &TestEnv, cp: &ControlPlane) -> Running {
    let mut cmd = env.kube_dc_process();
    cmd.args([
        "bootstrap",
        "break-glass",
        "rotate",
        "beta",
        "--timeout",
        "60s",
    ])
    .args(admin(cp, &["--no-commit"]));
    let rotation = Running::start(cmd);
    rotation.wait_for("waiting for the token controller");
    assert!(rotation.said().contains("the old token is revoked"));
    rotation
}

#[test]
fn ctrl_c_after_the_revocation_finishes_the_rotation() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let old_token = cluster_token(cp);
    let stopped = TokenControllerStopped::new(cp);
    let rotation = rotation_waiting_after_revoke(&env, cp);
    rotation.signal("-INT");
    rotation.wait_for("finishing the rotation");
    std::thread::sleep(Duration::from_millis(300));
    drop(stopped);
    let (code, err) = rotation.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Press Ctrl-C again to abort"), "{err}");
    env.break_glass_login(cp, "beta", "rotated.kubeconfig");
    assert_ne!(cluster_token(cp), old_token, "not rotated");
}

#[test]
fn a_second_ctrl_c_after_the_revocation_prints_the_recovery() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let before = std::fs::read(env.break_glass_file("beta")).unwrap();
    let (code, err) = with_token_controller_stopped(cp, || {
        let rotation = rotation_waiting_after_revoke(&env, cp);
        rotation.signal("-INT");
        rotation.wait_for("finishing the rotation");
        rotation.signal("-INT");
        rotation.finish()
    });
    assert_eq!(code, Some(1), "never exit 130 silently: {err}");
    assert!(err.contains("abandoned (Ctrl-C twice)"), "{err}");
    assert!(err.contains("ALREADY REVOKED"), "{err}");
    assert!(
        err.contains("recover with:\n  kube-dc bootstrap break-glass adopt beta"),
        "{err}"
    );
    unchanged_and_recoverable(&env, cp, &before);
}

/// Ctrl-C while rotate is still checking (nothing revoked) stops it at once, as always.
#[test]
fn ctrl_c_before_the_revocation_stops_at_once() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let uid = secret_uid(cp);
    // A --server that accepts connections and never answers: the check before the
    // revocation waits there.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("https://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in silent.incoming() {
            held.push(connection);
        }
    });
    let kc = cp.admin_kubeconfig().to_str().unwrap();
    let mut cmd = env.kube_dc_process();
    cmd.args([
        "bootstrap",
        "break-glass",
        "rotate",
        "beta",
        "--kubeconfig",
        kc,
    ])
    .args(["--server", &server, "--no-commit"]);
    let rotation = Running::start(cmd);
    rotation.wait_for(&format!("verifying the kubeconfig against {server}"));
    let started = Instant::now();
    rotation.signal("-INT");
    let (code, err) = rotation.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    assert!(!err.contains("ALREADY REVOKED"), "{err}");
    assert_eq!(secret_uid(cp), uid, "revoked although interrupted before");
}

#[test]
fn rotate_checks_the_target_file_before_revoking() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let uid = secret_uid(cp);
    let kubeconfig = env.decrypt_to_file("beta", "current.kubeconfig");
    let file = env.break_glass_file("beta");
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let out = bg(&env, cp, &admin(cp, &["rotate", "beta", "--no-commit"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("rotate stopped before revoking anything"),
        "{err}"
    );
    assert!(err.contains("is not a regular file"), "{err}");
    assert!(!err.contains("ALREADY REVOKED"), "{err}");
    assert_eq!(
        secret_uid(cp),
        uid,
        "revoked although the file cannot be written"
    );
    assert_eq!(text(&cp.whoami(&kubeconfig).stdout), BG_USER);
}

#[test]
fn rotate_failing_after_the_revocation_says_so_and_how_to_recover() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let before = std::fs::read(env.break_glass_file("beta")).unwrap();
    let kc = cp.admin_kubeconfig().to_str().unwrap();
    let out = with_token_controller_stopped(cp, || {
        bg(
            &env,
            cp,
            &[
                "rotate",
                "beta",
                "--kubeconfig",
                kc,
                "--server",
                cp.server_url(),
                "--timeout",
                "3s",
            ],
        )
    });
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("was not filled with a token within 3s"),
        "{err}"
    );
    assert!(err.contains("ALREADY REVOKED"), "{err}");
    let recovery = format!(
        "kube-dc bootstrap break-glass adopt beta --kubeconfig {kc} --server {}",
        cp.server_url()
    );
    assert!(err.contains(&recovery), "{err}");
    unchanged_and_recoverable(&env, cp, &before);
}

/// After a rotation that stopped past the revocation: beta's file is as `before`, and
/// the recovery the error prints (adopt) gives a working credential.
fn unchanged_and_recoverable(env: &TestEnv, cp: &ControlPlane, before: &[u8]) {
    assert_eq!(
        std::fs::read(env.break_glass_file("beta")).unwrap(),
        before,
        "file changed by a rotate that stopped"
    );
    adopt_ok(env, cp, "beta");
    env.break_glass_login(cp, "beta", "recovered.kubeconfig");
}

#[test]
fn rotate_replaces_a_token_revoked_out_of_band() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let old = env.decrypt_to_file("beta", "old.kubeconfig");
    // Marked invalid the way the apiserver's legacy-token clean-up does: the Secret stays,
    // its token is rejected.
    let out = kubectl(
        cp,
        cp.admin_kubeconfig(),
        &[
            "label",
            "secret",
            "-n",
            "kube-system",
            "break-glass-token",
            "kubernetes.io/legacy-token-invalid-since=2026-01-01",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    cp.assert_rejected(&old);
    let out = bg(&env, cp, &admin(cp, &["rotate", "beta"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("already rejects the current token"),
        "{}",
        show(&out)
    );
    env.break_glass_login(cp, "beta", "new.kubeconfig");
}

#[test]
fn rotate_to_an_unreachable_server_stops_before_revoking() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let uid = secret_uid(cp);
    let kc = cp.admin_kubeconfig().to_str().unwrap();
    let out = bg(
        &env,
        cp,
        &[
            "rotate",
            "beta",
            "--kubeconfig",
            kc,
            "--server",
            "https://127.0.0.1:1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("rotate stopped before revoking anything")
            && err.contains("cannot reach the apiserver"),
        "{err}"
    );
    assert!(!err.contains("ALREADY REVOKED"), "{err}");
    assert_eq!(secret_uid(cp), uid, "the token was revoked anyway");
}

#[test]
fn rotate_refuses_to_revoke_the_credential_it_runs_with() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let uid = secret_uid(cp);

    let out = env
        .kube_dc()
        .env("KUBE_DC_BREAK_GLASS", "1")
        .env("KUBE_DC_BREAK_GLASS_CLUSTER", "beta")
        .args(["bootstrap", "break-glass"])
        .args(admin(cp, &["rotate", "beta"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("from inside its own break-glass session"),
        "{}",
        show(&out)
    );

    let own = env.decrypt_to_file("beta", "own.kubeconfig");
    let out = bg(
        &env,
        cp,
        &["rotate", "beta", "--kubeconfig", own.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "authenticates as {BG_USER}, the very token rotate would revoke"
        )),
        "{}",
        show(&out)
    );
    assert_eq!(secret_uid(cp), uid, "the token was revoked anyway");
}

#[test]
fn forbidden_user_gets_one_clear_error_and_nothing_is_written() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let out = bg(
        &env,
        cp,
        &[
            "adopt",
            "beta",
            "--kubeconfig",
            cp.nobody_kubeconfig().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("forbidden") && err.contains("must be a cluster admin"),
        "{err}"
    );
    assert!(!env.break_glass_file("beta").exists());
}

/// A kubeconfig like the admin one but pointing at `server`.
fn kubeconfig_for(env: &TestEnv, cp: &ControlPlane, server: &str) -> std::path::PathBuf {
    let admin = std::fs::read_to_string(cp.admin_kubeconfig()).unwrap();
    let path = env.dir.path().join("elsewhere.kubeconfig");
    std::fs::write(&path, admin.replace(cp.server_url(), server)).unwrap();
    path
}

#[test]
fn unreachable_apiserver_fails_within_the_timeouts() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    // Nothing listens: connection refused, at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kc = kubeconfig_for(&env, cp, &format!("https://{closed}"));
    let started = Instant::now();
    let out = bg(
        &env,
        cp,
        &["adopt", "beta", "--kubeconfig", kc.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("cannot reach the apiserver"),
        "{}",
        show(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // Accepts TCP but never answers: the call deadline ends it instead of a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kc = kubeconfig_for(
        &env,
        cp,
        &format!("https://{}", silent.local_addr().unwrap()),
    );
    let started = Instant::now();
    let out = bg(
        &env,
        cp,
        &["adopt", "beta", "--kubeconfig", kc.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "took {:?}",
        started.elapsed()
    );
    assert!(!env.break_glass_file("beta").exists());
}

#[test]
fn stopped_token_controller_times_out_with_a_message_naming_it() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    let out = with_token_controller_stopped(cp, || {
        bg(&env, cp, &admin(cp, &["adopt", "beta", "--timeout", "3s"]))
    });
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("was not filled with a token within 3s")
            && err.contains("token controller of kube-controller-manager"),
        "{err}"
    );
    assert!(!env.break_glass_file("beta").exists());
}

/// The token controller deletes a token Secret it takes for orphaned, as when its cache
/// still holds the ServiceAccount that a revocation cut short had deleted. That race
/// cannot be produced on cue, so the test deletes the Secret in the controller's place,
/// while the controller is paused: adopt applies the Secret again instead of waiting for
/// a Secret that nothing will create, and gets its token once the controller runs.
#[test]
fn a_token_secret_deleted_while_adopt_waits_is_applied_again() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    let paused = TokenControllerStopped::new(cp);
    let mut cmd = env.kube_dc_process();
    cmd.args(["bootstrap", "break-glass"])
        .args(admin(cp, &["adopt", "beta", "--timeout", "60s"]));
    let adopt = Running::start(cmd);
    adopt.wait_for("waiting for the token controller");
    let applied = secret_uid(cp).expect("adopt applied the token Secret");
    let out = kubectl(
        cp,
        cp.admin_kubeconfig(),
        &["delete", "secret", "-n", "kube-system", "break-glass-token"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let again = support::poll("the Secret applied again", Duration::from_secs(10), || {
        secret_uid(cp).filter(|uid| *uid != applied)
    });
    drop(paused);
    let (code, err) = adopt.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(secret_uid(cp), Some(again));
    env.break_glass_login(cp, "beta", "kubeconfig-check.yaml");
}

#[test]
fn no_matching_sops_rule_fails_before_the_cluster_is_touched() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    std::fs::write(env.fleet.join(".sops.yaml"), "creation_rules:\n  - path_regex: ^nothing-matches$\n    age: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n").unwrap();
    let out = bg(&env, cp, &admin(cp, &["adopt", "beta"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("no .sops.yaml creation rule matches")
            && err.contains("nothing was changed on cluster beta"),
        "{err}"
    );
    let sa = kubectl(
        cp,
        cp.admin_kubeconfig(),
        &["get", "serviceaccount", "-n", "kube-system", "break-glass"],
    );
    assert!(
        !sa.status.success(),
        "the ServiceAccount was created: {}",
        show(&sa)
    );
}

#[test]
fn use_without_an_age_key_fails_clearly_and_leaves_no_file() {
    let env = TestEnv::new().with_git();
    let out = env
        .kube_dc()
        .env_remove("SOPS_AGE_KEY_FILE")
        .args(crate::support::USE_ALPHA)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("no usable age key"),
        "{}",
        show(&out)
    );
    let sessions = env.home.join(".kube-dc/break-glass");
    assert!(!sessions.exists() || std::fs::read_dir(&sessions).unwrap().count() == 0);
}

/// Every process's argv, polled while `f` runs.
fn watching_argv<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                        seen.insert(text(&cmdline).replace('\0', " "));
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen.into_iter().collect()
        })
    };
    let result = f();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (result, watcher.join().unwrap())
}

#[test]
fn tokens_never_appear_in_output_or_process_arguments() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let (outputs, argv) = watching_argv(|| {
        let mut outputs = vec![adopt_ok(&env, cp, "beta")];
        let first = cluster_token(cp);
        outputs.push(bg(
            &env,
            cp,
            &[
                "use", "beta", "--reason", "test", "--", "kubectl", "get", "ns",
            ],
        ));
        outputs.push(bg(&env, cp, &admin(cp, &["rotate", "beta", "-v"])));
        (outputs, first)
    });
    let (outputs, first) = outputs;
    let second = cluster_token(cp);
    assert_ne!(first, second);
    for token in [&first, &second] {
        for out in &outputs {
            assert!(out.status.success(), "{}", show(out));
            assert!(
                !text(&out.stdout).contains(token.as_str())
                    && !text(&out.stderr).contains(token.as_str()),
                "token in output"
            );
        }
        assert!(
            argv.iter().all(|a| !a.contains(token.as_str())),
            "token in a process argument"
        );
    }
    assert!(
        argv.len() > 10,
        "the argv watcher saw too little: {}",
        argv.len()
    );
}

/// A tiny deterministic generator: the seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_during_adopt_or_rotate_leaves_absent_old_or_new_never_partial() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let before: Vec<String> = files_under(&env.fleet);
    let kc = cp.admin_kubeconfig().to_str().unwrap().to_string();
    let bin = support::kube_dc_bin();
    for trial in 0..20 {
        let action = if trial % 2 == 0 { "adopt" } else { "rotate" };
        let mut child = std::process::Command::new(&bin)
            .env_clear()
            .envs(env.base_env())
            .env("SOPS_AGE_KEY_FILE", &env.age_key)
            .current_dir(&env.fleet)
            .args([
                "bootstrap",
                "break-glass",
                action,
                "beta",
                "--kubeconfig",
                &kc,
                "--server",
                cp.server_url(),
                "--no-commit",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let file = env.break_glass_file("beta");
        if file.exists() {
            let out = env
                .sops_cmd()
                .args(["decrypt", "clusters/beta/break-glass-kubeconfig.enc.yaml"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "trial {trial} ({action}): the file is not a complete sops file: {}",
                text(&out.stderr)
            );
            assert!(text(&out.stdout).contains("kind: Config"), "trial {trial}");
        }
        for extra in files_under(&env.fleet)
            .iter()
            .filter(|f| !before.contains(f))
        {
            let content = std::fs::read_to_string(env.fleet.join(extra)).unwrap_or_default();
            let is_break_glass = extra == "clusters/beta/break-glass-kubeconfig.enc.yaml";
            let is_ciphertext_temp = extra
                .starts_with("clusters/beta/.break-glass-kubeconfig.enc.yaml.")
                && !content.contains("kind: Config");
            assert!(
                is_break_glass || is_ciphertext_temp,
                "trial {trial} ({action}): unexpected file {extra} in the fleet"
            );
        }
    }
}

/// Re-adopt onto a full disk (a real one: a filled tmpfs over the cluster's directory):
/// the message names the file and says the disk is full, the old file stays as it was,
/// and no temp file is left.
#[test]
fn adopt_on_a_full_disk_keeps_the_old_file_whole() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let old = std::fs::read(env.break_glass_file("beta")).unwrap();
    // A new token, so that adopt has to write (it leaves a file holding the current one).
    cp.remove_break_glass_objects();
    let run = on_a_full_disk(&env, cp, "beta", &["adopt", "beta", "--no-commit"]);
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    let err = text(&run.out.stderr);
    assert!(err.contains("break-glass-kubeconfig.enc.yaml"), "{err}");
    assert!(err.contains("the disk is full"), "{err}");
    assert_eq!(run.after, run.before, "a file was left or removed");
    assert_eq!(run.break_glass_file, old, "the old file changed");
}

/// Rotate onto a full disk (the same filled tmpfs) stops before revoking: the running
/// token is never revoked for a file that cannot be written, and nothing is left behind.
#[test]
fn rotate_on_a_full_disk_stops_before_revoking() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    adopt_ok(&env, cp, "beta");
    let uid = secret_uid(cp);
    let run = on_a_full_disk(&env, cp, "beta", &["rotate", "beta", "--no-commit"]);
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    let err = text(&run.out.stderr);
    assert!(
        err.contains("rotate stopped before revoking anything") && err.contains("the disk is full"),
        "{err}"
    );
    assert_eq!(run.after, run.before, "a file was left or removed");
    assert_eq!(secret_uid(cp), uid, "the token was revoked anyway");
}

/// What a command run on a full disk left: its output, the cluster directory's listing
/// before and after, and the break-glass file as the run left it.
struct FullDiskRun {
    out: Output,
    before: Vec<String>,
    after: Vec<String>,
    break_glass_file: Vec<u8>,
}

/// Runs `args` (admin login added) with `cluster`'s directory on a full disk holding its
/// current files.
fn on_a_full_disk(env: &TestEnv, cp: &ControlPlane, cluster: &str, args: &[&str]) -> FullDiskRun {
    let dir = env.fleet.join("clusters").join(cluster);
    let files = contents_of(&dir);
    full_disk::private_mount_namespace();
    full_disk::mount_full_tmpfs(&dir, &files);
    let before = files_under(&dir);
    let out = bg(env, cp, &admin(cp, args));
    let after = files_under(&dir);
    let break_glass_file = std::fs::read(env.break_glass_file(cluster)).unwrap();
    full_disk::unmount(&dir);
    FullDiskRun {
        out,
        before,
        after,
        break_glass_file,
    }
}

/// Each file in `dir`: its name and content.
fn contents_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}
