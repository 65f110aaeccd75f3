//! `rotate --via break-glass` against a real control plane: a rotation that needs nothing
//! but the fleet and the age key, and that a re-run finishes after a kill -9 at any step.
//! The tests share one control plane and run one at a time (`serial()`).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Instant;

use support::control_plane::ControlPlane;
use support::{TestEnv, serial, shared_control_plane, show, text};

const BG_USER: &str = "system:serviceaccount:kube-system:break-glass";
const STAND_IN_USER: &str = "system:serviceaccount:kube-system:break-glass-next";
const FILE: &str = "clusters/beta/break-glass-kubeconfig.enc.yaml";
const SELF_ROTATE: [&str; 6] = [
    "bootstrap",
    "break-glass",
    "rotate",
    "beta",
    "--via",
    "break-glass",
];

fn kubectl(cp: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Output {
    cp.kubectl(kubeconfig).args(args).output().unwrap()
}

/// Adopts beta with the control plane's admin login: the starting point.
fn adopt(env: &TestEnv, cp: &ControlPlane) {
    let kc = cp.admin_kubeconfig().to_str().unwrap();
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "adopt", "beta"])
        .args(["--kubeconfig", kc, "--server", cp.server_url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
}

/// The self-rotation, with no admin login anywhere: HOME has no ~/.kube and the
/// environment no KUBECONFIG.
fn self_rotate(env: &TestEnv) -> Output {
    assert!(!env.home.join(".kube").exists());
    env.kube_dc().args(SELF_ROTATE).output().unwrap()
}

/// The stand-in's objects still on the cluster, as `kind/name` lines.
fn stand_in_objects(cp: &ControlPlane) -> String {
    let out = kubectl(
        cp,
        cp.admin_kubeconfig(),
        &[
            "get",
            "-n",
            "kube-system",
            "serviceaccount/break-glass-next",
            "secret/break-glass-next-token",
            "clusterrolebinding/break-glass-next",
            "--ignore-not-found",
            "-o",
            "name",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    text(&out.stdout)
}

fn token_in(kubeconfig: &Path) -> String {
    let yaml = std::fs::read_to_string(kubeconfig).unwrap();
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in the kubeconfig")
        .to_string()
}

/// The file holds a working credential, of break-glass or of the stand-in. Besides
/// kubectl (which a revoked token may still pass for 10 s, from the apiserver's cache),
/// its token must be the one its account's Secret holds now. Returns the user.
fn assert_file_works(env: &TestEnv, cp: &ControlPlane, name: &str, context: &str) -> String {
    let kubeconfig = env.decrypt_to_file("beta", name);
    let who = cp.whoami(&kubeconfig);
    let secret = match text(&who.stdout).as_str() {
        BG_USER => "break-glass-token",
        STAND_IN_USER => "break-glass-next-token",
        _ => panic!("{context}: the file does not work: {}", show(&who)),
    };
    assert!(
        token_in(&kubeconfig) == cp.secret_token("kube-system", secret),
        "{context}: the file's token is not the one Secret {secret} holds"
    );
    text(&who.stdout)
}

/// What a finished rotation leaves: the file works as break-glass with cluster-admin, is
/// committed, and the stand-in is gone.
fn assert_rotated(env: &TestEnv, cp: &ControlPlane, name: &str) -> PathBuf {
    let new = env.decrypt_to_file("beta", name);
    let who = cp.whoami(&new);
    assert_eq!(text(&who.stdout), BG_USER, "{}", show(&who));
    let can = kubectl(cp, &new, &["auth", "can-i", "*", "*"]);
    assert_eq!(text(&can.stdout).trim(), "yes", "{}", show(&can));
    assert_eq!(stand_in_objects(cp), "", "the stand-in account is left");
    assert_eq!(env.git(&["status", "--porcelain", "--", FILE]), "");
    new
}

#[test]
fn self_rotation_needs_only_the_age_key_and_revokes_the_old_token() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt(&env, cp);
    let old = env.decrypt_to_file("beta", "old.kubeconfig");
    assert_eq!(text(&cp.whoami(&old).stdout), BG_USER);
    let before = env.git(&["rev-parse", "HEAD"]);

    let started = Instant::now();
    let out = self_rotate(&env);
    eprintln!("self-rotation took {:?}", started.elapsed());
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    assert!(
        text(&out.stdout).contains(&format!("rotate beta: wrote {FILE}")),
        "{}",
        show(&out)
    );
    let err = text(&out.stderr);
    for step in 1..=7 {
        assert!(
            err.contains(&format!("step {step}/7: ")),
            "no step {step}: {err}"
        );
    }
    assert!(!err.contains("resuming"), "{err}");

    let new = assert_rotated(&env, cp, "new.kubeconfig");
    assert_eq!(
        env.git(&["rev-list", "--count", &format!("{}..HEAD", before.trim())])
            .trim(),
        "1"
    );
    assert_eq!(
        env.git(&["show", "--name-only", "--format=%s", "HEAD"]),
        format!("beta: rotate break-glass token after recovery\n\n{FILE}\n")
    );
    let (old_token, new_token) = (token_in(&old), token_in(&new));
    assert_ne!(old_token, new_token);
    for token in [&old_token, &new_token] {
        assert!(!text(&out.stdout).contains(token.as_str()) && !err.contains(token.as_str()));
    }
    cp.assert_rejected(&old);
}

/// Starts a self-rotation and SIGKILLs it as soon as it announces step `k`; returns its
/// stderr up to there.
fn kill_at_step(env: &TestEnv, k: usize) -> String {
    let mut child = std::process::Command::new(support::kube_dc_bin())
        .env_clear()
        .envs(env.base_env())
        .env("SOPS_AGE_KEY_FILE", &env.age_key)
        .current_dir(&env.fleet)
        .args(SELF_ROTATE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let marker = format!("step {k}/7: ");
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains(&marker) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return seen;
        }
    }
    let status = child.wait().unwrap();
    panic!("step {k} was never announced ({status}):\n{seen}");
}

#[test]
fn a_self_rotation_killed_at_any_step_is_finished_by_running_it_again() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    adopt(&env, cp);
    let mut replaced = Vec::new();
    for k in 1..=7 {
        let old = env.decrypt_to_file("beta", &format!("before-{k}.kubeconfig"));
        let seen = kill_at_step(&env, k);

        let context = format!("killed at step {k} after:\n{seen}");
        let user = assert_file_works(&env, cp, &format!("killed-at-{k}.kubeconfig"), &context);

        let out = self_rotate(&env);
        assert!(
            out.status.success(),
            "re-run after a kill at step {k}: {}\n{}",
            show(&out),
            cp.log_tail()
        );
        // Step 4 is announced after the stand-in's credential is written: a re-run resumes.
        let resumed = text(&out.stderr).contains("resuming an interrupted self-rotation");
        assert_eq!(resumed, user == STAND_IN_USER, "step {k}: {}", show(&out));
        if k == 4 {
            assert!(resumed, "{}", show(&out));
        }
        assert_rotated(&env, cp, &format!("after-{k}.kubeconfig"));
        replaced.push(old);
    }
    for kubeconfig in &replaced {
        cp.assert_rejected(kubeconfig);
    }
}

#[test]
fn admin_login_flags_are_refused_and_dry_run_changes_nothing() {
    let env = TestEnv::new().with_git();
    for extra in [
        ["--kube-context", "admin"].as_slice(),
        &["--kubeconfig", "/nonexistent"],
        &["--no-verify"],
    ] {
        let out = env
            .kube_dc()
            .args(SELF_ROTATE)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(
            text(&out.stderr).contains(&format!("{} does not go with --via break-glass", extra[0])),
            "{}",
            show(&out)
        );
    }
    let out = env
        .kube_dc()
        .args(SELF_ROTATE)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let plan = text(&out.stdout);
    for line in [
        "dry run: rotate beta --via break-glass (nothing will be changed)",
        "step 1/7: ",
        "name: break-glass-next-token",
        "kind: ClusterRoleBinding",
        "step 7/7: ",
    ] {
        assert!(plan.contains(line), "plan lacks {line:?}:\n{plan}");
    }
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}
