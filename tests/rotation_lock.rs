//! One rotation per cluster at a time: the Lease `break-glass-rotation` that adopt, rotate
//! and self-rotation hold, against a real control plane, from several clones of one fleet.
//! The tests share one control plane and run one at a time (`serial()`).

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use support::control_plane::ControlPlane;
use support::remote::Remote;
use support::running::Running;
use support::{TestEnv, TokenControllerStopped, serial, shared_control_plane, show, text};

const FILE: &str = "clusters/beta/break-glass-kubeconfig.enc.yaml";

/// `kube-dc bootstrap break-glass <args>` in `fleet` with the control plane's admin login.
fn bg_cmd(env: &TestEnv, cp: &ControlPlane, fleet: &Path, args: &[&str]) -> Command {
    let mut cmd = env.kube_dc_process();
    cmd.current_dir(fleet)
        .args(["bootstrap", "break-glass"])
        .args(args)
        .args(["--kubeconfig", cp.admin_kubeconfig().to_str().unwrap()]);
    cmd
}

fn bg(env: &TestEnv, cp: &ControlPlane, args: &[&str]) -> Output {
    bg_cmd(env, cp, &env.fleet, args).output().unwrap()
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Output {
    cp.kubectl(cp.admin_kubeconfig())
        .args(args)
        .output()
        .unwrap()
}

/// Removes the break-glass objects and any lock, so a test starts from a clean cluster.
fn adopt(env: &TestEnv, cp: &ControlPlane) {
    let out = bg(env, cp, &["adopt", "beta", "--server", cp.server_url()]);
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
}

/// The lock's holder as the cluster has it; `None` when there is no Lease.
fn lock_holder(cp: &ControlPlane) -> Option<String> {
    let out = kubectl(
        cp,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "break-glass-rotation",
            "-o=jsonpath={.spec.holderIdentity}",
        ],
    );
    out.status.success().then(|| text(&out.stdout))
}

fn cluster_token(cp: &ControlPlane) -> String {
    cp.secret_token("kube-system", "break-glass-token")
}

/// Waits (at most 30 s) until one of `runs` says `text`; returns its index.
fn first_to_say(runs: &[Running], said: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = runs.iter().position(|r| r.said().contains(said)) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "nobody said {said:?}:\n{}",
            runs.iter()
                .map(Running::said)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A clean cluster with beta adopted from a new fleet; the guard serialises the tests.
fn adopted() -> (MutexGuard<'static, ()>, &'static ControlPlane, TestEnv) {
    let serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    let env = TestEnv::new().with_git();
    adopt(&env, cp);
    (serial, cp, env)
}

#[test]
fn two_rotations_of_one_cluster_from_two_clones_one_rotates_the_other_names_the_holder() {
    let (_serial, cp, env) = adopted();
    let remote = Remote::of(&env);
    env.git(&["push", "-q", "origin", "main"]);
    let clones = [remote.clone(&env, "ann"), remote.clone(&env, "bob")];
    let before = std::fs::read(clones[0].join(FILE)).unwrap();

    // The token controller is stopped, so whoever takes the lock first holds it while it
    // waits for its new token: the other one is certain to meet it.
    let stopped = TokenControllerStopped::new(cp);
    let rotate = [
        "rotate",
        "beta",
        "--server",
        cp.server_url(),
        "--push",
        "--timeout",
        "60s",
    ];
    let runs: Vec<Running> = clones
        .iter()
        .map(|clone| Running::start(bg_cmd(&env, cp, clone, &rotate)))
        .collect();
    let loser = first_to_say(&runs, "another rotation is running");
    let winner = 1 - loser;
    runs[winner].wait_for("waiting for the token controller");
    drop(stopped);
    let winner_pid = runs[winner].pid();
    let mut results: Vec<(Option<i32>, String)> = runs.into_iter().map(Running::finish).collect();
    let (lost, won) = (results.remove(loser), results.remove(0));

    assert_eq!(won.0, Some(0), "{}", won.1);
    assert_eq!(lost.0, Some(1), "{}", lost.1);
    assert!(
        lost.1.contains("Lease kube-system/break-glass-rotation")
            && lost.1.contains(&format!("pid {winner_pid}, rotate)"))
            && lost.1.contains(" since "),
        "the refusal names the holder and since when:\n{}",
        lost.1
    );
    assert!(lost.1.contains("nothing was changed"), "{}", lost.1);
    // The loser's clone is untouched; the remote holds the token the cluster has now.
    assert_eq!(std::fs::read(clones[loser].join(FILE)).unwrap(), before);
    let landed = env.token_in_ciphertext(&remote.show(&env, FILE));
    assert!(
        landed == cluster_token(cp),
        "the remote's file does not hold the live token"
    );
    assert_ne!(env.token_in_ciphertext(&before), landed, "not rotated");
    assert_eq!(lock_holder(cp), None, "the lock was not released");
}

#[test]
fn a_lock_left_by_a_killed_run_is_shown_and_the_next_run_takes_it_over() {
    let (_serial, cp, env) = adopted();
    let stopped = TokenControllerStopped::new(cp);
    let rotate = [
        "rotate",
        "beta",
        "--server",
        cp.server_url(),
        "--timeout",
        "60s",
    ];
    let run = Running::start(bg_cmd(&env, cp, &env.fleet, &rotate));
    run.wait_for("waiting for the token controller");
    let pid = run.pid();
    run.signal("-KILL");
    let _ = run.finish();
    drop(stopped);

    let holder = lock_holder(cp).expect("the killed run's lock is still there");
    assert!(holder.contains(&format!("pid {pid}, rotate)")), "{holder}");
    let out = bg(&env, cp, &["status", "beta", "--live"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rotation lock:") && stdout.contains(&format!("held by {holder}")),
        "status --live shows the held lock:\n{}",
        show(&out)
    );

    // The documented recovery after a rotation died past its revocation: adopt re-reads
    // the current Secret. The dead process's lock does not hold it up.
    let started = Instant::now();
    let out = bg(&env, cp, &["adopt", "beta", "--server", cp.server_url()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the lock to expire"
    );
    assert!(
        text(&out.stderr).contains("taking over the rotation lock")
            && text(&out.stderr).contains("its process on this machine is gone"),
        "{}",
        show(&out)
    );
    let file = std::fs::read(env.break_glass_file("beta")).unwrap();
    assert!(
        env.token_in_ciphertext(&file) == cluster_token(cp),
        "the file does not hold the live token"
    );
    assert_eq!(lock_holder(cp), None, "the lock was not released");
}

/// A Lease as another machine's kube-dc would hold it, last renewed `age` ago.
fn foreign_lock(cp: &ControlPlane, age: Duration) {
    let renewed = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap();
    let stamp = renewed.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let record = r#"{"who":"Ann <ann@example.test>","user":"ann","host":"elsewhere","command":"rotate","process":"4242.1","machine":"elsewhere/boot/pid:[1]"}"#;
    let manifest = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: break-glass-rotation\n  namespace: kube-system\n  annotations:\n    kube-dc.io/rotation-holder: '{record}'\nspec:\n  holderIdentity: Ann <ann@example.test> (ann@elsewhere, pid 4242, rotate) #1\n  leaseDurationSeconds: 30\n  acquireTime: {stamp}\n  renewTime: {stamp}\n"
    );
    let path = cp.dir().join("foreign-lease.yaml");
    std::fs::write(&path, manifest).unwrap();
    let out = kubectl(cp, &["apply", "-f", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn another_machines_lock_refuses_until_it_expires_and_wait_lock_waits_for_it() {
    let (_serial, cp, env) = adopted();
    let (file, token) = (
        std::fs::read(env.break_glass_file("beta")).unwrap(),
        cluster_token(cp),
    );
    foreign_lock(cp, Duration::from_secs(22));

    let rotate = ["rotate", "beta", "--server", cp.server_url()];
    let out = bg(&env, cp, &rotate);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("held by Ann <ann@example.test> (ann@elsewhere, pid 4242, rotate)"),
        "{err}"
    );
    assert!(err.contains("--wait-lock"), "{err}");
    let self_rotate = ["rotate", "beta", "--via", "break-glass"];
    let out = env
        .kube_dc()
        .current_dir(&env.fleet)
        .args(["bootstrap", "break-glass"])
        .args(self_rotate)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("held by Ann <ann@example.test>"),
        "{}",
        show(&out)
    );
    assert_eq!(
        std::fs::read(env.break_glass_file("beta")).unwrap(),
        file,
        "changed while refused"
    );
    assert!(cluster_token(cp) == token, "rotated while refused");

    let started = Instant::now();
    let mut waiting = rotate.to_vec();
    waiting.push("--wait-lock=60s");
    let out = bg(&env, cp, &waiting);
    assert!(out.status.success(), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("waiting for the rotation lock"), "{err}");
    assert!(
        err.contains("taking over the rotation lock") && err.contains("it expired"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    assert!(cluster_token(cp) != token, "not rotated");
    assert_eq!(lock_holder(cp), None, "the lock was not released");
}

#[test]
fn sigterm_or_ctrl_c_before_any_revocation_releases_the_lock() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        cp.remove_break_glass_objects();
        let stopped = TokenControllerStopped::new(cp);
        let adopt = [
            "adopt",
            "beta",
            "--server",
            cp.server_url(),
            "--timeout",
            "60s",
        ];
        let run = Running::start(bg_cmd(&env, cp, &env.fleet, &adopt));
        run.wait_for("waiting for the token controller");
        assert!(lock_holder(cp).is_some_and(|h| h.contains(&format!("pid {}, adopt)", run.pid()))));
        run.signal(signal);
        let (exit, err) = run.finish();
        drop(stopped);
        assert_eq!(exit, Some(code), "{signal}: {err}");
        assert_eq!(
            lock_holder(cp),
            None,
            "{signal}: the lock was left behind:\n{err}"
        );
        assert!(!env.break_glass_file("beta").exists(), "{signal}: {err}");
    }
}
