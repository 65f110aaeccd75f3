//! `use <cluster>`: a shell (or one command) with the decrypted break-glass kubeconfig.
//!
//! The kubeconfig is written to `~/.kube-dc/break-glass/kubeconfig-<pid>-*.yaml` (0600 in
//! a 0700 directory, never under /tmp), and removed when the session ends: on exit, on
//! SIGINT/SIGTERM/SIGHUP (forwarded to the child), and, when kube-dc itself was killed
//! with SIGKILL, by the next kube-dc run, which sweeps files whose owner process is gone.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use super::lifecycle::{SESSION_CLUSTER_ENV, SESSION_ENV};
use crate::cluster::Identity;
use crate::error::{Context as _, Error, Result};
use crate::fleet::{Cluster, Fleet};
use crate::kubeconfig;
use crate::sops::Sops;
use crate::ui::{Style, Ui};

const SESSION_DIR: &str = ".kube-dc/break-glass";
const FILE_PREFIX: &str = "kubeconfig-";
/// How long a child gets to exit after a forwarded signal before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct UseArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    pub cluster: String,
    /// Run this command instead of an interactive $SHELL (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs the session and returns the exit code to leave with: the child's own.
pub async fn run(fleet: &Fleet, args: &UseArgs, ui: &mut Ui) -> Result<u8> {
    let cluster = fleet.cluster(&args.cluster)?;
    let sops = Sops::locate(fleet.root()).await?;
    let rel = cluster.break_glass_rel();
    let plaintext = super::decrypt(&sops, &cluster).await?;
    let server = kubeconfig::parse(&plaintext, &rel)?.server;
    let dir = session_dir(ui)?;
    let file = SessionFile::create(&dir, &plaintext)?;
    banner(&cluster, &server, ui.err_style, &mut ui.err)?;
    let code = run_child(&cluster, &file, &args.command).await;
    drop(file);
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

/// `~/.kube-dc/break-glass`, 0700 and ours; a looser mode is repaired, a foreign owner
/// or a symlink refused.
fn session_dir(ui: &mut Ui) -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::usage("HOME is not set: cannot place the session kubeconfig"))?;
    let dir = PathBuf::from(home).join(SESSION_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .context(|| format!("creating {}", dir.display()))?;
    let meta = std::fs::symlink_metadata(&dir).context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(Error::failed(format!(
            "refusing to use {}: it is not a directory owned by you",
            dir.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .context(|| format!("chmod 700 {}", dir.display()))?;
        ui.warn(&format!(
            "{} was mode {:o}; repaired to 700",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(dir)
}

/// The decrypted kubeconfig on disk for the session's length; overwritten and removed
/// when dropped (normal exit, error or panic unwinding).
struct SessionFile {
    path: PathBuf,
    len: usize,
}

impl SessionFile {
    fn create(dir: &Path, content: &[u8]) -> Result<SessionFile> {
        let prefix = format!("{FILE_PREFIX}{}-", std::process::id());
        let mut temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".yaml")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .context(|| format!("creating the session kubeconfig in {}", dir.display()))?;
        let session = SessionFile {
            path: temp.path().to_path_buf(),
            len: content.len(),
        };
        let file = temp.as_file_mut();
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .context(|| format!("writing {}", session.path.display()))?;
        // From here on SessionFile owns the removal.
        temp.into_temp_path()
            .keep()
            .context(|| "keeping the session file".into())?;
        Ok(session)
    }
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        wipe(&self.path, self.len);
    }
}

/// Overwrites then unlinks (best effort: filesystems may keep old blocks).
fn wipe(path: &Path, len: usize) {
    if let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file
            .write_all(&vec![0u8; len])
            .and_then(|()| file.sync_all());
    }
    let _ = std::fs::remove_file(path);
}

/// Removes session files whose kube-dc process no longer exists (killed with SIGKILL, or
/// the machine lost power). Returns how many were removed.
pub fn sweep_stale(home: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(home.join(SESSION_DIR)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| owner_pid(&e.file_name().to_string_lossy()).is_some_and(|pid| !is_alive(pid)))
        .filter(|e| {
            let len = e.metadata().map(|m| m.len() as usize).unwrap_or(0);
            wipe(&e.path(), len);
            !e.path().exists()
        })
        .count()
}

fn owner_pid(file_name: &str) -> Option<i32> {
    let rest = file_name.strip_prefix(FILE_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

fn is_alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but is someone else's.
    !matches!(
        kill(Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

async fn run_child(cluster: &Cluster, file: &SessionFile, command: &[String]) -> Result<u8> {
    let (program, args) = match command.split_first() {
        Some((program, args)) => (program.clone(), args.to_vec()),
        None => (
            std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            Vec::new(),
        ),
    };
    let mut child = Command::new(&program)
        .args(&args)
        .env("KUBECONFIG", &file.path)
        .env(SESSION_ENV, "1")
        .env(SESSION_CLUSTER_ENV, cluster.name().as_str())
        .spawn()
        .map_err(|e| Error::failed(format!("cannot start {program}: {e}")))?;
    let mut signals = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(|kind| signal(kind).expect("installing a signal handler"));
    let [sigint, sigterm, sighup] = &mut signals;
    let received = tokio::select! {
        status = child.wait() => return Ok(exit_code(status.context(|| format!("waiting for {program}"))?)),
        _ = sigint.recv() => Signal::SIGINT,
        _ = sigterm.recv() => Signal::SIGTERM,
        _ = sighup.recv() => Signal::SIGHUP,
    };
    // Remove the credential first: a SIGKILL may follow the signal at any moment.
    wipe(&file.path, file.len);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_from_file_name() {
        assert_eq!(owner_pid("kubeconfig-4242-a1B2c3.yaml"), Some(4242));
        assert_eq!(owner_pid("other-4242.yaml"), None);
        assert_eq!(owner_pid("kubeconfig-x-1.yaml"), None);
    }

    #[test]
    fn sweep_removes_only_files_of_dead_processes() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(SESSION_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let mine = dir.join(format!("kubeconfig-{}-x.yaml", std::process::id()));
        let stale = dir.join(format!("kubeconfig-{dead_pid}-y.yaml"));
        let unrelated = dir.join("notes.txt");
        for f in [&mine, &stale, &unrelated] {
            std::fs::write(f, "x").unwrap();
        }
        assert_eq!(sweep_stale(home.path()), 1);
        assert!(mine.exists() && unrelated.exists() && !stale.exists());
    }
}
