//! The fleet's Git repository: opening it, and what its callers share (commit facts,
//! errors, shell quoting for printed commands).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::cli::GitCli;
use crate::error::{Error, Result};

/// The Git repository that holds a fleet.
pub struct Repo {
    pub(super) repo: git2::Repository,
    pub(super) workdir: PathBuf,
    /// The fleet root relative to the work tree: `""` or `"some/dir/"`.
    pub(super) prefix: String,
    pub(super) git: GitCli,
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
    pub(super) fn repo_path(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    pub(super) fn fleet_path<'a>(&self, repo_path: &'a str) -> Option<&'a str> {
        repo_path.strip_prefix(&self.prefix)
    }
}

pub(super) fn git_error(what: &str, e: git2::Error) -> Error {
    Error::failed(format!("{what}: {}", e.message()))
}
