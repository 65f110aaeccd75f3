//! Helpers die with kube-dc (issue 10): when kube-dc is killed with SIGKILL (the OOM
//! killer, a CI job's timeout, `kill -9`) while a helper it started runs, the helper must
//! not live on. The helpers here are mocks that record their pid and then sleep: a real
//! sops or credential plugin cannot be made to hang on demand.

use std::time::{Duration, Instant};

use crate::harness::{self, Scene};
use crate::inputs::bg;
use crate::secrets::{LIVE_WITH_PLUGIN, V1, fake_sops, with_plugin};

const PID_FILE: &str = "home/helper.pid";
/// The helper's whole body: it records its pid and becomes a long sleep (same pid).
const RECORD_AND_HANG: &str = "echo $$ > \"$HOME/helper.pid\"; exec sleep 300";
const GONE_WITHIN: Duration = Duration::from_secs(2);

/// The pid the helper wrote, once it has (at most 20 s).
fn helper_pid(scene: &Scene) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(scene.path(PID_FILE)).unwrap_or_default();
        if let Ok(pid) = text.trim().parse() {
            return pid;
        }
        assert!(Instant::now() < deadline, "the helper never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Alive, and not a zombie waiting to be reaped (a zombie runs nothing).
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Starts kube-dc with `args` in a scene prepared by `setup` (which makes kube-dc start a
/// helper with [`RECORD_AND_HANG`]), kills kube-dc with SIGKILL once the helper runs, and
/// says whether the helper was still running [`GONE_WITHIN`] later.
fn outlives_kube_dc(setup: impl Fn(&mut Scene), args: &[&str]) -> Result<(), String> {
    let (scene, mut kube_dc) = harness::start(setup, &bg(args));
    let helper = helper_pid(&scene);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(kube_dc.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    kube_dc.wait().unwrap();
    let killed_at = Instant::now();
    while running(helper) && killed_at.elapsed() < GONE_WITHIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    let outlived = running(helper);
    // Never leave it behind, whatever the verdict.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper),
        nix::sys::signal::Signal::SIGKILL,
    );
    match outlived {
        true => Err(format!(
            "{args:?}: the helper (pid {helper}) still ran {GONE_WITHIN:?} after kube-dc was killed"
        )),
        false => Ok(()),
    }
}

/// A `sops` that answers `--version` like sops 3.11 and hangs otherwise.
fn hanging_sops(s: &mut Scene) {
    fake_sops(s, RECORD_AND_HANG);
}

/// An admin kubeconfig whose user's exec credential plugin hangs.
fn hanging_plugin(s: &mut Scene) {
    with_plugin(s, RECORD_AND_HANG, V1);
}

/// A `SOPS_AGE_KEY_CMD` that hangs (the in-process reader runs it).
fn hanging_key_command(s: &mut Scene) {
    let command = s.script("home/key-command", RECORD_AND_HANG);
    s.unset("SOPS_AGE_KEY_FILE");
    s.var("SOPS_AGE_KEY_CMD", command.to_string_lossy());
}

/// The fleet's `on_use` command hangs (`use` runs it at the start of the session).
fn hanging_on_use(s: &mut Scene) {
    s.write(
        "fleet/.kube-dc.yaml",
        format!("on_use: '{RECORD_AND_HANG}'\n"),
    );
}

const USE_ALPHA: [&str; 6] = ["use", "alpha", "--reason", "test", "--", "true"];

#[test]
fn helpers_die_when_kube_dc_is_killed() {
    let failures: Vec<String> = [
        outlives_kube_dc(hanging_sops, &["status", "alpha"]),
        outlives_kube_dc(hanging_sops, &["status", "--all"]),
        outlives_kube_dc(hanging_sops, &USE_ALPHA),
        outlives_kube_dc(hanging_on_use, &USE_ALPHA),
        outlives_kube_dc(hanging_plugin, &LIVE_WITH_PLUGIN),
        outlives_kube_dc(hanging_key_command, &["status", "alpha"]),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
