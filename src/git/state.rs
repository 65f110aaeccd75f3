//! Read-only questions about the work tree and the branch, answered with git2.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::repo::{Repo, git_error};
use crate::error::Result;

/// A file's state between the work tree, the index and `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathState {
    /// Identical in the work tree, the index and `HEAD`.
    Clean,
    /// The work tree differs from the index (staged or not).
    Modified,
    /// The index differs from `HEAD`; the work tree matches the index.
    Staged,
    /// Not in the index (new, or ignored).
    Untracked,
    /// Not in the work tree.
    Missing,
}

/// What `HEAD` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A new repository without commits.
    Unborn,
    /// Not on a branch; holds the short commit id.
    Detached(String),
    Branch {
        name: String,
        tracking: Option<Tracking>,
    },
}

/// A branch's upstream and the commits that are on the branch but not on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    pub remote: String,
    /// The branch's name on the remote (from `branch.<name>.merge`).
    pub remote_branch: String,
    /// Full ids of the commits not on the upstream.
    pub ahead: HashSet<String>,
    pub behind: usize,
}

impl Repo {
    /// The state of each fleet-relative path, from one `git status` over `clusters/`.
    pub fn path_states(&self, rels: &[String]) -> Result<HashMap<String, PathState>> {
        let flags = self.status_flags()?;
        let index = self
            .repo
            .index()
            .map_err(|e| git_error("reading the index", e))?;
        let states = rels
            .iter()
            .map(|rel| {
                let path = self.repo_path(rel);
                let state = if !self.workdir.join(&path).is_file() {
                    PathState::Missing
                } else {
                    match flags.get(&path) {
                        Some(status) => classify(*status),
                        None if index.get_path(Path::new(&path), 0).is_some() => PathState::Clean,
                        None => PathState::Untracked,
                    }
                };
                (rel.clone(), state)
            })
            .collect();
        Ok(states)
    }

    /// Every changed path under the fleet's `clusters/`, keyed by repo path.
    fn status_flags(&self) -> Result<HashMap<String, git2::Status>> {
        let mut opts = git2::StatusOptions::new();
        opts.pathspec(self.repo_path(&format!("{}/", crate::fleet::CLUSTERS_DIR)))
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| git_error("git status", e))?;
        Ok(statuses
            .iter()
            .filter_map(|entry| Some((entry.path().ok()?.to_string(), entry.status())))
            .collect())
    }

    pub fn head(&self) -> Result<Head> {
        let head = match self.repo.head() {
            Ok(head) => head,
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => return Ok(Head::Unborn),
            Err(e) => return Err(git_error("reading HEAD", e)),
        };
        let Some(name) = head.shorthand().ok().filter(|_| head.is_branch()) else {
            let id = head.target().map(|oid| oid.to_string()[..7].to_string());
            return Ok(Head::Detached(id.unwrap_or_default()));
        };
        Ok(Head::Branch {
            name: name.to_string(),
            tracking: self.tracking(&head)?,
        })
    }

    /// `None` when the branch has no upstream, or it was never fetched.
    fn tracking(&self, head: &git2::Reference) -> Result<Option<Tracking>> {
        let refname = head.name().unwrap_or_default();
        let (Ok(remote), Ok(merge)) = (
            self.repo.branch_upstream_remote(refname),
            self.repo.branch_upstream_merge(refname),
        ) else {
            return Ok(None);
        };
        let Ok(upstream) = git2::Branch::wrap(head.clone()).upstream() else {
            return Ok(None);
        };
        let (Some(local), Some(remote_tip)) = (head.target(), upstream.get().target()) else {
            return Ok(None);
        };
        let mut walk = self.repo.revwalk().map_err(|e| git_error("revwalk", e))?;
        walk.push(local).map_err(|e| git_error("revwalk", e))?;
        walk.hide(remote_tip).map_err(|e| git_error("revwalk", e))?;
        let ahead = walk
            .map(|oid| oid.map(|o| o.to_string()))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(|e| git_error("listing unpushed commits", e))?;
        let (_, behind) = self
            .repo
            .graph_ahead_behind(local, remote_tip)
            .map_err(|e| git_error("comparing with the upstream", e))?;
        let merge = merge.as_str().unwrap_or_default();
        Ok(Some(Tracking {
            remote: remote.as_str().unwrap_or_default().to_string(),
            remote_branch: merge
                .strip_prefix("refs/heads/")
                .unwrap_or(merge)
                .to_string(),
            ahead,
            behind,
        }))
    }

    /// The only remote, if there is exactly one: what to suggest for `push -u`.
    pub(super) fn sole_remote(&self) -> Option<String> {
        let remotes = self.repo.remotes().ok()?;
        match remotes.len() {
            1 => remotes.get(0).ok().flatten().map(String::from),
            _ => None,
        }
    }
}

fn classify(status: git2::Status) -> PathState {
    use git2::Status as S;
    if status.intersects(
        S::WT_MODIFIED | S::WT_DELETED | S::WT_TYPECHANGE | S::WT_RENAMED | S::CONFLICTED,
    ) {
        PathState::Modified
    } else if status.contains(S::WT_NEW) || status.contains(S::IGNORED) {
        PathState::Untracked
    } else if status.intersects(
        S::INDEX_NEW
            | S::INDEX_MODIFIED
            | S::INDEX_DELETED
            | S::INDEX_RENAMED
            | S::INDEX_TYPECHANGE,
    ) {
        PathState::Staged
    } else {
        PathState::Clean
    }
}
