//! A `use` session: the decrypted kubeconfig in a private file, a child process with it,
//! and the signal handling that removes the file whatever happens.
//!
//! The kubeconfig is written to `~/.kube-dc/break-glass/` (0600 in a 0700 directory, never
//! under /tmp; see [`files`]), and removed when the session ends: on exit, on
//! SIGINT/SIGTERM/SIGHUP (forwarded to the child), and, when kube-dc itself was killed
//! with SIGKILL, by the first kube-dc run after both kube-dc and its child are gone.

mod files;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

pub use files::{SessionFile, Sweep, open_for_use, sweep_stale};

use crate::error::{Context as _, Error, Result};
use crate::fleet::Cluster;

/// Set in the environment of a `use` session, with the cluster's name.
pub const SESSION_ENV: &str = "KUBE_DC_BREAK_GLASS";
pub const SESSION_CLUSTER_ENV: &str = "KUBE_DC_BREAK_GLASS_CLUSTER";

/// How long a child gets to exit after a forwarded signal before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(5);

/// SIGINT, SIGTERM and SIGHUP, caught from before the session file exists.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        let on = |kind| {
            signal(kind).map_err(|e| Error::failed(format!("installing a signal handler: {e}")))
        };
        Ok(Signals {
            interrupt: on(SignalKind::interrupt())?,
            terminate: on(SignalKind::terminate())?,
            hangup: on(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::SIGINT,
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.hangup.recv() => Signal::SIGHUP,
        }
    }
}

/// Runs `command` (else `$SHELL`) with the session file as its kubeconfig; the exit code
/// to leave with is the child's own.
pub async fn run_child(
    cluster: &Cluster,
    file: &SessionFile,
    command: &[String],
    mut signals: Signals,
) -> Result<u8> {
    let (program, args) = match command.split_first() {
        Some((program, args)) => (program.clone(), args.to_vec()),
        None => (
            std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            Vec::new(),
        ),
    };
    let record = file.child_record_writer()?;
    // Not `subprocess::dies_with_us`: this is the user's session, not a helper of ours.
    let mut command = Command::new(&program);
    command
        .args(&args)
        .env("KUBECONFIG", file.path())
        .env(SESSION_ENV, "1")
        .env(SESSION_CLUSTER_ENV, cluster.name().as_str());
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: `record_self` makes only such system calls and
    // allocates nothing (see its documentation).
    unsafe {
        command.pre_exec(move || {
            record.record_self();
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::failed(format!("cannot start {program}: {e}")))?;
    let received = tokio::select! {
        status = child.wait() => return Ok(exit_code(status.context(|| format!("waiting for {program}"))?)),
        received = signals.next() => received,
    };
    // Remove the credential first: a SIGKILL may follow the signal at any moment.
    file.wipe();
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), received);
    }
    if tokio::time::timeout(CHILD_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    Ok(128 + received as u8)
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128 + sig as u8,
        _ => 1,
    }
}
