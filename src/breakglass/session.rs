//! `use <cluster>`: a shell (or one command) with the decrypted break-glass kubeconfig.
//!
//! The kubeconfig is written to `~/.kube-dc/break-glass/` (0600 in a 0700 directory, never
//! under /tmp; see [`files`]), and removed when the session ends: on exit, on
//! SIGINT/SIGTERM/SIGHUP (forwarded to the child), and, when kube-dc itself was killed
//! with SIGKILL, by the first kube-dc run after both kube-dc and its child are gone.

mod files;

use std::io::Write;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use files::SessionFile;
pub use files::{ProcessId, Sweep, sweep_stale};

use super::audit::{self, Audit};
use super::lifecycle::{SESSION_CLUSTER_ENV, SESSION_ENV};
use crate::cluster::Identity;
use crate::error::{Context as _, Error, Result};
use crate::fleet::{Cluster, Fleet};
use crate::kubeconfig;
use crate::sops::Sops;
use crate::ui::{Style, Ui};

/// How long a child gets to exit after a forwarded signal before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct UseArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::completion::cluster_names())]
    pub cluster: String,
    /// Why the glass is broken: an incident id or a sentence (one line, at most 200
    /// characters). Recorded in the cluster, the local journal and the next rotation's
    /// commit. Asked for on a terminal when missing; required otherwise.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Run this command instead of an interactive $SHELL (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs the session and returns the exit code to leave with: the child's own.
pub async fn run(fleet: &Fleet, args: &UseArgs, ui: &mut Ui) -> Result<u8> {
    let cluster = fleet.cluster(&args.cluster)?;
    let reason = audit::reason::obtain(args.reason.as_deref(), &mut ui.err)?;
    // In-process decryption: a bastion without sops can still open the file.
    let sops = Sops::for_reading(fleet.root())?;
    let rel = cluster.break_glass_rel();
    let plaintext = super::decrypt(&sops, &cluster).await?;
    let credential = kubeconfig::parse(&plaintext, &rel)?;
    let server = credential.server.clone();
    let dir = files::open_for_use(&mut |w| ui.warn(w))?;
    // Before the file exists: from here on a signal is handled (the file removed), never
    // the default exit that would leave it behind.
    let signals = Signals::install()?;
    let file = SessionFile::create(dir, &plaintext)?;
    banner(&cluster, &server, ui.err_style, &mut ui.err)?;
    let audit = Audit::start(fleet, &cluster, &credential, reason).await;
    let _ = writeln!(ui.err, "{}", audit.notes.join("\n"));
    let code = run_child(&cluster, &file, &args.command, signals).await;
    drop(file);
    let exit = code.as_ref().map_or(1, |c| *c);
    for warning in audit.end(&cluster, &credential, exit).await {
        ui.warn(&warning);
    }
    let rotate = format!("kube-dc bootstrap break-glass rotate {}", cluster.name());
    let _ = writeln!(
        ui.err,
        "{} break-glass session on {} ended; the kubeconfig was removed. Rotate the token now:\n  {rotate}",
        ui.err_style.bold("kube-dc:"),
        cluster.name()
    );
    code
}

fn banner(cluster: &Cluster, server: &str, style: Style, err: &mut dyn Write) -> Result<()> {
    let id = Identity::for_config(&cluster.config()?);
    let text = format!(
        "{}\ncluster:  {}\nserver:   {server}\nidentity: ServiceAccount/{} (cluster-admin)\naudit:    apiserver logs will record {}, NOT your email\nafter:    kube-dc bootstrap break-glass rotate {}\n",
        style.red_bold("  BREAK-GLASS ACTIVE  "),
        cluster.name(),
        id.service_account,
        id.username(),
        cluster.name()
    );
    let _ = err.write_all(text.as_bytes());
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP, caught from before the session file exists.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
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

async fn run_child(
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
