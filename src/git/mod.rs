//! The fleet repo as a Git repository.
//!
//! Reading (the state of a file, the last commit that touched it, how far the branch is
//! ahead of its upstream) goes through git2. Writing (commit, push) runs the `git` CLI,
//! so the user's hooks (our pre-commit hook included), signing (`commit.gpgsign`,
//! `gpg.format=ssh`), identity and credentials apply exactly as for a hand-made commit:
//! libgit2 honours none of them.
//!
//! All paths in this API are relative to the **fleet root** and `/`-separated, as
//! [`Cluster::break_glass_rel`](crate::fleet::Cluster::break_glass_rel) returns them; the
//! fleet root may be a subdirectory of the work tree.
//!
//! # For commands that write a break-glass file (adopt, rotate)
//!
//! ```ignore
//! #[derive(clap::Args)]
//! pub struct AdoptArgs {
//!     // ...
//!     #[command(flatten)]
//!     pub git: git::CommitArgs, // --message TEMPLATE, --no-commit, --push
//! }
//!
//! // Before contacting the cluster: rejects a bad template or a fleet outside Git.
//! let recorder = args.git.recorder(&fleet)?;
//! breakglass::seal(&sops, &cluster, &credential).await?;
//! let change = git::Change {
//!     cluster: cluster.name(),
//!     action: git::Action::Adopt,
//!     server: &credential.server,
//!     rel: &cluster.break_glass_rel(),
//! };
//! recorder.commit(&change, ui)?; // one commit per cluster, only that file
//! recorder.push(ui)?;            // once, after the last commit
//! ```
//!
//! [`Recorder::commit`] commits only the file (other staged and unstaged changes stay as
//! they were); a rejecting hook is an error that says the file is written but not
//! committed. The message comes from `--message`, else `commit_message` in the fleet's
//! `.kube-dc.yaml`, else the action's default; placeholders: `{cluster}`, `{action}`,
//! `{server}`, `{date}`. [`Recorder::push`] pushes with `--push`, asks on a terminal, and
//! otherwise prints the exact command; it never forces. Both block: they run `git`.
//!
//! The lower level, for other callers: [`Repo::discover`], [`Repo::commit_paths`],
//! [`Repo::push_plan`], [`Repo::push`], [`Repo::path_states`], [`Repo::last_commits`],
//! [`Repo::head`].

mod cli;
mod commit;
mod history;
mod message;
mod push;
mod record;
mod state;
mod sync;
mod tree_paths;

use std::path::{Path, PathBuf};

pub(crate) use tree_paths::TreePaths;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};

pub use cli::GitCli;
pub use message::{Action, Change, MessageTemplate, combined_message};
pub use push::{PushPlan, PushPolicy};
pub use record::{CommitArgs, PUSH_ATTEMPTS, PushOutcome, Recorder, Resolve};
pub use state::{Head, PathState, Tracking};
pub use sync::{Keep, Overlap};

/// The Git repository that holds a fleet.
pub struct Repo {
    repo: git2::Repository,
    workdir: PathBuf,
    /// The fleet root relative to the work tree: `""` or `"some/dir/"`.
    prefix: String,
    git: GitCli,
}

/// A commit, as `status` and [`Repo::commit_paths`] report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub short_id: String,
    pub author: String,
    pub email: String,
    /// Author date: it survives rebases, so it stays close to when the token was minted.
    pub date: DateTime<Utc>,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed(CommitInfo),
    /// The file already matched `HEAD`: there was nothing to commit.
    Unchanged,
    /// `--no-commit`: the file was written only.
    Skipped,
}

impl Repo {
    /// The repository whose work tree contains `fleet_root`; writes use the `git` on PATH
    /// with the user's environment.
    pub fn discover(fleet_root: &Path) -> Result<Repo> {
        let repo = git2::Repository::discover(fleet_root).map_err(|e| {
            Error::usage(format!(
                "the fleet {} is not in a Git repository: {}",
                fleet_root.display(),
                e.message()
            ))
            .with_hint("run `git init` in the fleet root, or pass --no-commit")
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| {
                Error::usage(format!("{} is a bare Git repository", fleet_root.display()))
            })?
            .canonicalize()
            .map_err(|e| Error::failed(format!("work tree of {}: {e}", fleet_root.display())))?;
        let root = fleet_root
            .canonicalize()
            .map_err(|e| Error::failed(format!("{}: {e}", fleet_root.display())))?;
        let prefix = match root.strip_prefix(&workdir) {
            Ok(p) if p.as_os_str().is_empty() => String::new(),
            Ok(p) => format!("{}/", p.to_string_lossy()),
            Err(_) => {
                return Err(Error::usage(format!(
                    "the fleet {} is outside the work tree {} of its Git repository",
                    root.display(),
                    workdir.display()
                )));
            }
        };
        Ok(Repo {
            repo,
            workdir,
            prefix,
            git: GitCli::system(),
        })
    }

    /// Runs writes through `git` instead of the default (tests pass a hermetic one).
    pub fn with_git(mut self, git: GitCli) -> Repo {
        self.git = git;
        self
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Fleet-relative path → path relative to the work tree, as Git stores it.
    fn repo_path(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    fn fleet_path<'a>(&self, repo_path: &'a str) -> Option<&'a str> {
        repo_path.strip_prefix(&self.prefix)
    }
}

fn git_error(what: &str, e: git2::Error) -> Error {
    Error::failed(format!("{what}: {}", e.message()))
}

/// Quotes `s` for a POSIX shell when it needs it, so printed commands can be pasted.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=@+,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/srv/fleet"), "/srv/fleet");
        assert_eq!(shell_quote("my fleet"), "'my fleet'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
