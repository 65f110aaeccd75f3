//! CI's sample of the soak test (`bench/soak.sh N`): a few runs of adopt, rotate,
//! self-rotation and batch self-rotation killed with SIGKILL at random moments, each
//! followed by its one recovery command, on a control plane of the script's own.

mod support;

use std::process::Command;

#[test]
fn a_few_kill_9_trials_leave_no_partial_or_plaintext_file_and_one_command_recovers_each() {
    let path = std::env::var("PATH").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let out = Command::new(support::repo_root().join("bench/soak.sh"))
        .arg("4")
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("KUBE_DC_BIN", support::kube_dc_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert!(
        support::text(&out.stdout).contains(
            "soak: trials 4, partial files 0, plaintext files left 0, runs one command could not recover 0"
        ),
        "{}",
        support::show(&out)
    );
}
