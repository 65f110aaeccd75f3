//! Output of a program we run but do not trust to behave (sops, a credential plugin):
//! collected under a deadline and a size cap, so a hanging or chatty child costs bounded
//! time and memory. The child is killed when the deadline passes, and when kube-dc dies
//! ([`dies_with_us`]).

use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use zeroize::Zeroizing;

/// Makes the child that `cmd` spawns get SIGKILL when kube-dc dies, even by SIGKILL (a
/// deadline kills nothing then): a helper (sops, a credential plugin, git, a key command)
/// has no use once its answer has nowhere to go, and an orphaned `sops decrypt` of a
/// hostile file was seen running for half an hour.
///
/// The kernel sends the signal when the *thread* that forked the child ends, not the
/// process. Helpers are spawned from the main thread, from tokio's worker threads (they
/// live as long as the runtime, which is dropped only at the end of `main`, after every
/// child was waited for or killed on drop) or from a `std` thread that waits for the child
/// before it ends (`Command::output`, the key command's loop). None is spawned from
/// tokio's blocking pool, whose threads end after being idle (there is no
/// `spawn_blocking` in this crate): keep it so, or a helper is killed mid-answer.
///
/// Not for the shell or command that `use` starts: that is the user's session, which
/// outlives a killed kube-dc (the next run's sweep keeps its kubeconfig until it ends).
pub fn dies_with_us(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls
    // are allowed: prctl(2) and getppid(2) are plain system calls, and the error is built
    // from a number (no allocation).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // kube-dc died between fork and prctl: the signal will never come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Bytes kept of each stream; the rest is read and dropped so the child never blocks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub stdout: usize,
    pub stderr: usize,
}

pub struct Finished {
    pub status: ExitStatus,
    /// May hold plaintext: zeroed when dropped.
    pub stdout: Zeroizing<Vec<u8>>,
    /// The child printed more than [`Limits::stdout`].
    pub stdout_cut: bool,
    pub stderr: Vec<u8>,
}

pub enum Ended {
    Finished(Finished),
    /// Killed at the deadline; what it had said on stderr by then.
    TimedOut {
        stderr: Vec<u8>,
    },
}

/// Feeds `stdin` (then closes it), reads both streams and waits, all within `deadline`.
/// The child must have been spawned with piped stdout and stderr (and stdin if given).
pub async fn collect(
    mut child: Child,
    stdin: Option<&[u8]>,
    limits: Limits,
    deadline: Duration,
) -> std::io::Result<Ended> {
    let mut stdout = Zeroizing::new(Vec::new());
    let mut stderr = Vec::new();
    let (out_pipe, err_pipe, in_pipe) =
        (child.stdout.take(), child.stderr.take(), child.stdin.take());
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(input)) = (in_pipe, stdin) {
                // A write error means the child exited early; its stderr says why.
                let _ = pipe.write_all(input).await;
            }
        };
        let (_, out, err) = tokio::join!(
            feed,
            read_capped(out_pipe, limits.stdout, &mut stdout),
            read_capped(err_pipe, limits.stderr, &mut stderr)
        );
        let stdout_cut = out?;
        err?;
        child.wait().await.map(|status| (status, stdout_cut))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok((status, stdout_cut))) => Ok(Ended::Finished(Finished {
            status,
            stdout,
            stdout_cut,
            stderr,
        })),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            kill(&mut child).await;
            Ok(Ended::TimedOut { stderr })
        }
    }
}

/// Reads `pipe` to its end, keeping at most `cap` bytes; true when some were dropped.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let Some(mut pipe) = pipe else {
        return Ok(false);
    };
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let mut cut = false;
    loop {
        let n = pipe.read(&mut chunk[..]).await?;
        if n == 0 {
            return Ok(cut);
        }
        let keep = n.min(cap.saturating_sub(buf.len()));
        cut |= keep < n;
        buf.extend_from_slice(chunk.get(..keep).unwrap_or_default());
    }
}

/// Kills the child, and its process group when it leads one (a plugin's own children
/// would otherwise keep running, and keep our pipes open).
async fn kill(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let pid = nix::unistd::Pid::from_raw(pid);
        if nix::unistd::getpgid(Some(pid)) == Ok(pid) {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use tokio::process::Command;

    fn sh(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    const SMALL: Limits = Limits {
        stdout: 10,
        stderr: 5,
    };

    #[tokio::test]
    async fn output_is_capped_and_stdin_fed() {
        let child = sh("cat; echo errors-and-more >&2; head -c 1000000 /dev/zero; exit 3");
        let Ended::Finished(done) = collect(child, Some(b"hello"), SMALL, Duration::from_secs(10))
            .await
            .unwrap()
        else {
            panic!("timed out")
        };
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(&done.stdout[..5], b"hello");
        assert_eq!(done.stdout.len(), 10);
        assert!(done.stdout_cut);
        assert_eq!(done.stderr, b"error");
    }

    #[tokio::test]
    async fn a_hanging_child_and_its_children_are_killed_at_the_deadline() {
        let started = std::time::Instant::now();
        let child = sh("echo waiting >&2; sleep 30 & sleep 30; wait");
        let ended = collect(child, None, SMALL, Duration::from_millis(500))
            .await
            .unwrap();
        let Ended::TimedOut { stderr } = ended else {
            panic!("finished")
        };
        assert_eq!(stderr, b"waiti");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
