//! Faults at every step of adopt, rotate and self-rotation, against a real control plane:
//! the network to the apiserver cut, reset or stalled (through tests/support/fault_proxy,
//! a mock because no real network fails on cue), sops killed mid-encrypt, and another
//! git holding index.lock at commit time. After each: the file is absent, old or new and
//! complete; what kube-dc said is true; `status --live` reports the real state; the one
//! command kube-dc names recovers. The tests share the control plane (`serial()`).

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

use support::control_plane::ControlPlane;
use support::fault_proxy::{Fault, FaultProxy};
use support::running::Running;
use support::{TestEnv, serial, shared_control_plane, show, text};

const FILE: &str = "clusters/beta/break-glass-kubeconfig.enc.yaml";

fn proxy(cp: &ControlPlane) -> &'static FaultProxy {
    static PROXY: OnceLock<FaultProxy> = OnceLock::new();
    PROXY.get_or_init(|| FaultProxy::start(cp.server_url()))
}

/// The admin kubeconfig, through the proxy.
fn proxied_admin(env: &TestEnv, cp: &ControlPlane) -> PathBuf {
    let admin = std::fs::read_to_string(cp.admin_kubeconfig()).unwrap();
    let path = env.dir.path().join("proxied-admin.kubeconfig");
    std::fs::write(&path, admin.replace(cp.server_url(), &proxy(cp).url())).unwrap();
    path
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Adopt,
    Rotate,
    SelfRotate,
}

impl Run {
    fn args(self, env: &TestEnv, cp: &ControlPlane) -> Vec<String> {
        let admin = proxied_admin(env, cp).to_str().unwrap().to_string();
        let mut args: Vec<String> = ["bootstrap", "break-glass"].map(String::from).to_vec();
        let tail: Vec<String> = match self {
            Run::Adopt => vec!["adopt".into(), "beta".into()],
            Run::Rotate => vec!["rotate".into(), "beta".into()],
            Run::SelfRotate => ["rotate", "beta", "--via", "break-glass"]
                .map(String::from)
                .to_vec(),
        };
        args.extend(tail);
        if self != Run::SelfRotate {
            args.extend([
                "--kubeconfig".into(),
                admin,
                "--server".into(),
                proxy(cp).url(),
            ]);
        }
        args
    }
}

fn kube_dc(env: &TestEnv, args: &[String]) -> Output {
    env.kube_dc().args(args).output().unwrap()
}

/// The documented recovery for what `run` leaves behind: adopt for an admin login (it
/// re-reads the current Secret), the same self-rotation again for --via break-glass.
fn recover(env: &TestEnv, cp: &ControlPlane, run: Run) -> Output {
    let recovery = match run {
        Run::SelfRotate => Run::SelfRotate,
        _ => Run::Adopt,
    };
    let mut args = recovery.args(env, cp);
    // Patient with the token controller: under the suite's load it once took over 30 s to
    // fill the re-created Secret after a cut revocation.
    args.extend(["--timeout", "120s"].map(String::from));
    kube_dc(env, &args)
}

/// The break-glass ServiceAccount and token Secret as the cluster has them, without the
/// token: for the message of a failed recovery.
fn token_objects(cp: &ControlPlane) -> String {
    let out = cp
        .kubectl(cp.admin_kubeconfig())
        .args(["get", "-n", "kube-system", "serviceaccount/break-glass", "secret/break-glass-token"])
        .args(["-o", "jsonpath={range .items[*]}{.kind} uid={.metadata.uid} deleting={.metadata.deletionTimestamp} annotations={.metadata.annotations}{\"\\n\"}{end}"])
        .output()
        .unwrap();
    show(&out)
}

fn secret_token(cp: &ControlPlane, secret: &str) -> Option<String> {
    cp.secret_field("kube-system", secret, "{.data.token}")
        .filter(|t| !t.is_empty())
        .map(|_| cp.secret_token("kube-system", secret))
}

/// The file is complete and holds a token the cluster has: break-glass's, or (after an
/// interrupted self-rotation) the stand-in's. `None` when it holds neither.
fn file_state(env: &TestEnv, cp: &ControlPlane) -> Option<&'static str> {
    let file = std::fs::read(env.fleet.join(FILE)).expect("the break-glass file is gone");
    let token = env.token_in_ciphertext(&file);
    let leftovers: Vec<String> = support::files_under(&env.fleet.join("clusters/beta"))
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    if secret_token(cp, "break-glass-token").is_some_and(|t| t == token) {
        return Some("break-glass");
    }
    if secret_token(cp, "break-glass-next-token").is_some_and(|t| t == token) {
        return Some("stand-in");
    }
    None
}

/// `status --live` (admin login, not through the proxy) says whether the file's token is
/// the cluster's.
fn live_says_matching(env: &TestEnv, cp: &ControlPlane) -> Option<bool> {
    let out = env
        .kube_dc()
        .args([
            "bootstrap",
            "break-glass",
            "status",
            "beta",
            "--live",
            "-o",
            "json",
        ])
        .args(["--kubeconfig", cp.admin_kubeconfig().to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    report["live"]["token_matches"].as_bool()
}

/// Runs `run`, puts `fault` on the network when it announces `step`, and checks what is
/// left, what it said, status --live and the recovery.
fn trial(env: &TestEnv, cp: &ControlPlane, run: Run, step: &str, fault: Fault) {
    let inject = || proxy(cp).set(fault);
    trial_with(env, cp, run, step, &format!("{fault:?}"), inject, || {
        proxy(cp).set(Fault::Pass)
    });
}

/// Runs `run`, calls `inject` when it announces `step` and `restore` once it has ended,
/// then checks what is left, what it said, status --live and the recovery. Its exit code.
fn trial_with(
    env: &TestEnv,
    cp: &ControlPlane,
    run: Run,
    step: &str,
    fault: &str,
    inject: impl FnOnce(),
    restore: impl FnOnce(),
) -> Option<i32> {
    let context = format!("{run:?} with {fault} at {step:?}");
    if run == Run::Adopt {
        outdate_the_file(env, cp);
    }
    let mut cmd = env.kube_dc_process();
    cmd.args(run.args(env, cp));
    let running = Running::start(cmd);
    running.wait_for(step);
    inject();
    let (code, said) = running.finish();
    restore();

    let state = file_state(env, cp);
    match (code, state) {
        (Some(0), Some("break-glass")) => {}
        (Some(0), other) => panic!("{context}: succeeded, but the file holds {other:?}:\n{said}"),
        (Some(1), Some(_)) => assert!(
            !said.contains("ALREADY REVOKED"),
            "{context}: says revoked, but the file works:\n{said}"
        ),
        (Some(1), None) => {
            // After a confirmed revocation, or one sent and not confirmed.
            let told: &[&str] = match run {
                Run::SelfRotate => &["re-run to finish"],
                _ => &["ALREADY REVOKED", "may or may not be revoked"],
            };
            assert!(
                told.iter().any(|t| said.contains(t)),
                "{context}: the file's token is dead and kube-dc did not say so:\n{said}"
            );
        }
        _ => panic!("{context}: exit {code:?}:\n{said}"),
    }
    let status = kube_dc(
        env,
        &["bootstrap", "break-glass", "status", "beta"].map(String::from),
    );
    assert!(
        status.status.success(),
        "{context}: status: {}",
        show(&status)
    );
    if run != Run::SelfRotate {
        assert_eq!(
            live_says_matching(env, cp) == Some(true),
            state == Some("break-glass"),
            "{context}: status --live disagrees with the cluster"
        );
    }
    let out = recover(env, cp, run);
    assert!(
        out.status.success(),
        "{context}: the recovery failed: {}\nrun said:\n{said}\nthe cluster: {}",
        show(&out),
        token_objects(cp)
    );
    assert_eq!(
        file_state(env, cp),
        Some("break-glass"),
        "{context}: not recovered"
    );
    code
}

/// Re-adopts with the apiserver's direct URL, so that the file differs from what the
/// trial's adopt (through the proxy URL) writes: adopt leaves an up-to-date file alone, and
/// must reach each of its steps. The token stays the cluster's: no token controller needed.
fn outdate_the_file(env: &TestEnv, cp: &ControlPlane) {
    let args = Run::Adopt.args(env, cp);
    let direct: Vec<String> = args
        .iter()
        .map(|a| a.replace(&proxy(cp).url(), cp.server_url()))
        .collect();
    let out = kube_dc(env, &direct);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(file_state(env, cp), Some("break-glass"));
}

fn adopted(cp: &ControlPlane) -> TestEnv {
    let env = TestEnv::new().with_git();
    let out = kube_dc(&env, &Run::Adopt.args(&env, cp));
    assert!(out.status.success(), "{}", show(&out));
    env
}

const ADOPT_STEPS: [&str; 5] = [
    "using context",
    "applying ServiceAccount",
    "waiting for the token controller",
    "verifying the kubeconfig",
    "encrypting to",
];
const ROTATE_STEPS: [&str; 5] = [
    "using context",
    "verifying the kubeconfig",
    "deleting the token Secret",
    "waiting for the token controller",
    "encrypting to",
];
const SELF_STEPS: [&str; 5] = ["step 2/7", "step 3/7", "step 4/7", "step 5/7", "step 6/7"];

#[test]
fn the_network_cut_or_reset_at_every_step() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    for fault in [Fault::Cut, Fault::Reset] {
        for (run, steps) in [
            (Run::Adopt, ADOPT_STEPS),
            (Run::Rotate, ROTATE_STEPS),
            (Run::SelfRotate, SELF_STEPS),
        ] {
            for step in steps {
                trial(&env, cp, run, step, fault);
            }
        }
    }
}

/// The apiserver killed and started again while a rotation waits for its new token (the
/// old one revoked): the rotation waits it out and finishes. At the other steps the run
/// fails or finishes, and what it leaves is checked and recovered like any fault.
#[test]
fn the_apiserver_killed_and_restarted_mid_rotation() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    let restart = || cp.restart_apiserver(|| std::thread::sleep(std::time::Duration::from_secs(1)));
    let waiting = "waiting for the token controller";
    let code = trial_with(
        &env,
        cp,
        Run::Rotate,
        waiting,
        "apiserver restart",
        restart,
        || {},
    );
    assert_eq!(code, Some(0), "the rotation did not wait out the restart");
    for (run, step) in [
        (Run::Rotate, "deleting the token Secret"),
        (Run::SelfRotate, "step 4/7"),
        (Run::Adopt, "applying ServiceAccount"),
    ] {
        trial_with(&env, cp, run, step, "apiserver restart", restart, || {});
    }
}

#[test]
fn an_apiserver_that_stops_answering_mid_rotation() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    trial(
        &env,
        cp,
        Run::Rotate,
        "waiting for the token controller",
        Fault::Stall,
    );
    trial(&env, cp, Run::SelfRotate, "step 5/7", Fault::Stall);
}

/// A sops that is SIGKILLed while it encrypts a real token (the trial encryption before
/// the cluster is touched passes): the real sops can not be killed at that point on cue.
/// kube-dc runs `sops --config <file> encrypt ...`.
fn sops_killed_mid_encrypt(env: &TestEnv) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.dir.path().join("sops-killed");
    let script = format!(
        "#!/bin/bash\nif [ \"$3\" = encrypt ]; then\n  input=$(cat)\n  case \"$input\" in\n    *preflight.invalid*) exec '{0}' \"$@\" <<<\"$input\" ;;\n  esac\n  kill -9 $$\nfi\nexec '{0}' \"$@\"\n",
        env.sops.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn sops_killed_mid_encrypt_leaves_the_old_file_and_says_how_to_recover() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    let before = std::fs::read(env.fleet.join(FILE)).unwrap();
    let out = env
        .kube_dc()
        .env("KUBE_DC_SOPS", sops_killed_mid_encrypt(&env))
        .args(Run::Rotate.args(&env, cp))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("ALREADY REVOKED"), "{err}");
    assert!(
        err.contains("kube-dc bootstrap break-glass adopt beta"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.fleet.join(FILE)).unwrap(),
        before,
        "the file changed"
    );
    assert_eq!(file_state(&env, cp), None, "the old token still works");
    assert_ne!(live_says_matching(&env, cp), Some(true));
    let out = recover(&env, cp, Run::Rotate);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(file_state(&env, cp), Some("break-glass"));
}

#[test]
fn index_lock_held_at_commit_time_leaves_the_new_file_uncommitted_and_says_what_to_run() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    let lock = env.fleet.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let out = kube_dc(&env, &Run::Rotate.args(&env, cp));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("index.lock"), "{err}");
    assert!(
        err.contains(&format!("{FILE} is written but NOT committed")),
        "{err}"
    );
    // The rotation itself is done: the file holds the live token.
    assert_eq!(file_state(&env, cp), Some("break-glass"));
    assert_eq!(live_says_matching(&env, cp), Some(true));
    assert_eq!(
        env.git(&["status", "--porcelain"]).trim(),
        format!("M {FILE}")
    );

    // Once the other git is done, the command kube-dc printed commits the file.
    std::fs::remove_file(&lock).unwrap();
    let command = err
        .lines()
        .find_map(|l| {
            l.split_once("commit the files yourself: ")
                .map(|(_, c)| c.to_string())
        })
        .unwrap_or_else(|| panic!("no command in:\n{err}"));
    let out = std::process::Command::new("bash")
        .args(["-c", &command])
        .env_clear()
        .envs(env.base_env())
        .env(
            "GIT_EDITOR",
            "f() { echo 'beta: rotate break-glass token' > \"$1\"; }; f",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}: {}", show(&out));
    assert_eq!(env.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_paused_token_controller_after_the_revocation_says_so_and_adopt_recovers() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp);
    let mut args = Run::Rotate.args(&env, cp);
    args.extend(["--timeout", "3s"].map(String::from));
    let out = {
        let _paused = support::TokenControllerStopped::new(cp);
        kube_dc(&env, &args)
    };
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("kube-controller-manager") && err.contains("ALREADY REVOKED"),
        "{err}"
    );
    assert_eq!(file_state(&env, cp), None, "the old token still works");
    assert_ne!(live_says_matching(&env, cp), Some(true));
    let out = recover(&env, cp, Run::Rotate);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(file_state(&env, cp), Some("break-glass"));
}
