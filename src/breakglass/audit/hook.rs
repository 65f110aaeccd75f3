//! `on_use:` in the fleet's `.kube-dc.yaml`: a command the team runs at the start of every
//! session (page someone, post to chat), via `sh -c` in the fleet root with
//! `KUBE_DC_CLUSTER`, `KUBE_DC_PERSON`, `KUBE_DC_REASON` and `KUBE_DC_SERVER` set. It never
//! gets the token: no kubeconfig is passed, and `KUBECONFIG` and the age key variables are
//! removed from its environment. Bounded in time (killed with its process group) and never
//! blocking: its failure is reported and the session goes on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::session::Session;
use crate::redact;
use crate::subprocess::{self, Ended, Limits};

pub const DEADLINE: Duration = Duration::from_secs(10);
const LIMITS: Limits = Limits {
    stdout: 0,
    stderr: 4096,
};
/// Variables that could hand the hook a credential or the key to decrypt one.
const WITHHELD: [&str; 5] = [
    "KUBECONFIG",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
];

/// Runs `command`; `Err` says why it failed, redacted and bounded, for the banner.
pub async fn run(
    command: &str,
    fleet_root: &Path,
    session: &Session,
    server: &str,
) -> Result<(), String> {
    let mut cmd = Command::new("sh");
    subprocess::dies_with_us(cmd.as_std_mut());
    cmd.arg("-c")
        .arg(command)
        .current_dir(fleet_root)
        .env("KUBE_DC_CLUSTER", &session.cluster)
        .env(
            "KUBE_DC_PERSON",
            format!("{} ({}@{})", session.who, session.user, session.host),
        )
        .env("KUBE_DC_REASON", &session.reason)
        .env("KUBE_DC_SERVER", server)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in WITHHELD {
        cmd.env_remove(name);
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
    match subprocess::collect(child, None, LIMITS, DEADLINE).await {
        Err(e) => Err(format!("waiting for it: {e}")),
        Ok(Ended::TimedOut { .. }) => Err(format!(
            "still running after {}s: killed",
            DEADLINE.as_secs()
        )),
        Ok(Ended::Finished(done)) if done.status.success() => Ok(()),
        Ok(Ended::Finished(done)) => Err(format!(
            "it failed ({}); it said:\n{}",
            done.status,
            redact::block(&done.stderr)
        )),
    }
}
