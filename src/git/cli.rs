//! The `git` command line, for the operations that must honour the user's configuration.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};
use crate::redact;

#[derive(Debug, Clone)]
pub struct GitCli {
    program: PathBuf,
    /// `Some`: run with exactly these variables instead of the inherited environment.
    env: Option<Vec<(OsString, OsString)>>,
}

impl GitCli {
    /// `git` from PATH with the user's environment (config, ssh-agent, credential helpers).
    pub fn system() -> GitCli {
        GitCli {
            program: PathBuf::from("git"),
            env: None,
        }
    }

    /// `git` with only the given variables, for hermetic tests.
    pub fn isolated(
        vars: impl IntoIterator<Item = (impl Into<OsString>, impl Into<OsString>)>,
    ) -> GitCli {
        GitCli {
            program: PathBuf::from("git"),
            env: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// Runs `git -C <workdir> <args>`, capturing its output; the caller judges the exit status.
    pub(super) fn run(&self, workdir: &Path, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(&self.program);
        crate::subprocess::dies_with_us(&mut cmd);
        cmd.arg("-C").arg(workdir).args(args).stdin(Stdio::null());
        match &self.env {
            Some(vars) => {
                cmd.env_clear().envs(vars.iter().map(|(k, v)| (k, v)));
            }
            None => {
                // Inside a hook these point at another repository or a temporary index.
                cmd.env_remove("GIT_DIR")
                    .env_remove("GIT_WORK_TREE")
                    .env_remove("GIT_INDEX_FILE");
            }
        }
        if !std::io::stderr().is_terminal() {
            // Nobody could answer a credential prompt: fail instead of hanging.
            cmd.env("GIT_TERMINAL_PROMPT", "0");
        }
        cmd.output().map_err(|e| {
            Error::failed(format!("cannot run {}: {e}", self.program.display()))
                .with_hint("install Git, or put it on PATH")
        })
    }
}

/// Git's stderr and stdout (hooks write to either), redacted, bounded and indented for an
/// error message: a hook or credential helper may print anything.
pub(super) fn said(out: &Output) -> String {
    redact::block(&[&out.stderr[..], &out.stdout[..]].join(&b'\n'))
}
