//! Ctrl-C (and SIGTERM, what a cancelled CI job gets) and panics during `adopt` and
//! `rotate`. While no token is revoked without its replacement written, a signal stops
//! the run at once, releasing the rotation locks it holds. Once a rotation has revoked
//! a token, the first is answered with "finishing the rotation" and the second abandons
//! it with the command that recovers; a panic there becomes such an error too.
//! The fleet file must never be left holding a dead token without the user being told.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cluster::lease::Releaser;
use crate::error::{Error, Result};

/// How long an exit on a signal waits for the rotation locks to be released; a lock
/// left behind expires by itself.
const RELEASE_ON_EXIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Handed to every rotation of one run; `Interrupts::default()` leaves Ctrl-C alone.
#[derive(Clone, Default)]
pub struct Interrupts {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    state: Mutex<State>,
    presses: watch::Sender<u32>,
}

#[derive(Default)]
struct State {
    /// Rotations between their revocation and the written replacement. The listener's
    /// decision to exit and a rotation's start are serialised by this lock, so no
    /// revocation can begin behind an exit.
    revoking: usize,
    /// Errors of rotations that ended with their token revoked, printed again on exit.
    stranded: Vec<String>,
    /// Rotation locks to release when a signal ends the run.
    locks: Vec<Releaser>,
}

impl Interrupts {
    /// Catches Ctrl-C (SIGINT) and SIGTERM from now on, for the rest of the process.
    pub fn catch() -> Result<Interrupts> {
        let on = |kind| {
            signal(kind).map_err(|e| Error::failed(format!("cannot catch Ctrl-C/SIGTERM: {e}")))
        };
        let (mut sigint, mut sigterm) =
            (on(SignalKind::interrupt())?, on(SignalKind::terminate())?);
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            presses: watch::channel(0).0,
        });
        let listener = shared.clone();
        tokio::spawn(async move {
            loop {
                let (name, code) = tokio::select! {
                    Some(()) = sigint.recv() => ("Ctrl-C", 130),
                    Some(()) = sigterm.recv() => ("SIGTERM", 143),
                    else => return,
                };
                if let Some((text, locks)) = listener.pressed(name) {
                    let releases = futures::future::join_all(locks.iter().map(Releaser::release));
                    let _ = tokio::time::timeout(RELEASE_ON_EXIT, releases).await;
                    crate::ui::to_stderr(&text);
                    std::process::exit(code);
                }
            }
        });
        Ok(Interrupts {
            shared: Some(shared),
        })
    }

    /// Releases `lock` if a signal ends the run before its holder does.
    pub fn release_on_exit(&self, lock: Releaser) {
        if let Some(shared) = &self.shared {
            let mut state = shared.lock();
            state.locks.retain(|l| !l.is_released());
            state.locks.push(lock);
        }
    }

    /// Runs `work`, the part of one rotation of `cluster` from its revocation on. Refuses
    /// to start after a Ctrl-C. `stranded` turns an error (a second Ctrl-C, a panic, a
    /// failed step) into one that says the token is revoked and how to recover.
    pub async fn after_revoking<T>(
        &self,
        cluster: &str,
        work: impl Future<Output = Result<T>>,
        stranded: impl FnOnce(Error) -> Error,
    ) -> Result<T> {
        let _guard = self.enter(cluster)?;
        let abandoned = async {
            match &self.shared {
                Some(shared) => {
                    let mut presses = shared.presses.subscribe();
                    let _ = presses.wait_for(|n| *n >= 2).await;
                }
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            result = catch_panic(work) => result,
            () = abandoned => Err(Error::failed(format!(
                "rotation of {cluster} abandoned (Ctrl-C twice)"
            ))),
        };
        result.map_err(|e| {
            let e = stranded(e);
            if let Some(shared) = &self.shared {
                shared.lock().stranded.push(e.to_string());
            }
            e
        })
    }

    fn enter(&self, cluster: &str) -> Result<Option<Revoking>> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let mut state = shared.lock();
        if *shared.presses.borrow() > 0 {
            return Err(Error::failed(format!(
                "interrupted (Ctrl-C) before revoking anything on {cluster}: its token is unchanged"
            )));
        }
        state.revoking += 1;
        Ok(Some(Revoking(shared.clone())))
    }
}

/// Counts one rotation as past its revocation while it lives.
struct Revoking(Arc<Shared>);

impl Drop for Revoking {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.revoking = state.revoking.saturating_sub(1);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A signal: while nothing is revoked, returns what to print and the locks to release
    /// before exiting; otherwise the first says the rotations are being finished.
    fn pressed(&self, name: &str) -> Option<(String, Vec<Releaser>)> {
        let state = self.lock();
        // Counted before deciding: no rotation starts revoking after a signal.
        self.presses.send_modify(|n| *n += 1);
        if state.revoking == 0 {
            let mut text = format!("kube-dc: interrupted ({name})\n");
            for error in &state.stranded {
                text += &format!("{error}\n");
            }
            return Some((text, state.locks.clone()));
        }
        if *self.presses.borrow() == 1 {
            crate::ui::to_stderr(&format!(
                "kube-dc: {name}: a break-glass token is already revoked and its replacement not yet written: finishing the rotation. Press Ctrl-C again to abort (the command that recovers will be printed).\n"
            ));
        }
        None
    }
}

/// Runs `work`; a panic in it becomes an error (the panic message has already been
/// printed by the panic hook).
pub async fn catch_panic<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(Error::failed(format!(
                "internal error (a bug in kube-dc): {}",
                panic_text(panic.as_ref())
            )))
        })
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    crate::input::quoted(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stranded(e: Error) -> Error {
        Error::failed(format!(
            "{}: ALREADY REVOKED, recover with: adopt",
            e.message()
        ))
    }

    #[tokio::test]
    async fn a_panic_after_the_revocation_still_says_how_to_recover() {
        let work = async {
            if std::env::var_os("KUBE_DC_NEVER_SET_X").is_none() {
                panic!("boom");
            }
            Ok(())
        };
        let err = Interrupts::default()
            .after_revoking("alpha", work, stranded)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("internal error"), "{err}");
        assert!(err.contains("\"boom\""), "{err}");
        assert!(err.contains("ALREADY REVOKED, recover with"), "{err}");
    }

    #[tokio::test]
    async fn errors_after_the_revocation_are_remembered_for_an_exit() {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            presses: watch::channel(0).0,
        });
        let interrupts = Interrupts {
            shared: Some(shared.clone()),
        };
        let failed = interrupts
            .after_revoking(
                "alpha",
                async { Err::<(), _>(Error::failed("x")) },
                stranded,
            )
            .await;
        assert!(failed.is_err());
        let state = shared.lock();
        assert_eq!(state.revoking, 0);
        assert_eq!(state.stranded, ["x: ALREADY REVOKED, recover with: adopt"]);
    }

    #[tokio::test]
    async fn no_revocation_starts_after_a_ctrl_c() {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            presses: watch::channel(1).0,
        });
        let interrupts = Interrupts {
            shared: Some(shared),
        };
        let err = interrupts
            .after_revoking("alpha", async { Ok(()) }, stranded)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("interrupted (Ctrl-C) before revoking anything on alpha"),
            "{err}"
        );
    }
}
