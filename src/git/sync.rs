//! When a push meets other pushes: the remote moved on while we rotated (other
//! maintainers, or the other shards of a CI matrix pushing to the same branch). We fetch,
//! replay our own unpushed commits onto the remote's branch and push again, a bounded
//! number of times, never forcing. A file that both sides changed is never merged line by
//! line (half of one sops file and half of another decrypts to nothing): the caller says
//! which whole version must land, and the other side's commit stays in the history.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use super::cli::said;
use super::push::PushPlan;
use super::repo::{Repo, git_error};
use crate::error::{Error, Result};
use crate::shell::quote;

/// Which whole version of a file both sides changed must be the branch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Ours: our commit lands on top of the remote's.
    Local,
    /// The remote's: our commit of that file is dropped (it stays in the reflog).
    Remote,
}

/// A file changed by our unpushed commits and by the remote's new ones.
pub struct Overlap {
    /// Fleet-relative path.
    pub rel: String,
    pub local: Vec<u8>,
    pub remote: Vec<u8>,
    /// The remote's latest commit of the file, `<short id> <subject> (<author>)`.
    pub remote_commit: String,
}

impl Repo {
    /// Fetches the branch `plan` pushes to.
    pub fn fetch(&self, plan: &PushPlan) -> Result<()> {
        let refspec = format!(
            "+refs/heads/{0}:refs/remotes/{1}/{0}",
            plan.remote_branch, plan.remote
        );
        let out = self
            .git
            .run(&self.workdir, &["fetch", "--quiet", &plan.remote, &refspec])?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::failed(format!(
            "fetching {} failed; your commit(s) exist locally and nothing was pushed\ngit said:\n{}",
            plan.target(),
            said(&out)
        ))
        .with_hint(format!("fix the cause above, then run: {}", plan.command())))
    }

    /// The files both our unpushed commits and the remote's new ones changed, with both
    /// versions.
    pub fn overlaps(&self, plan: &PushPlan) -> Result<Vec<Overlap>> {
        let upstream = upstream_ref(plan);
        let ours = self.changed(&format!("{upstream}...HEAD"))?;
        let theirs = self.changed(&format!("HEAD...{upstream}"))?;
        ours.intersection(&theirs)
            .map(|path| {
                let rel = self.fleet_path(path).unwrap_or(path).to_string();
                Ok(Overlap {
                    local: self.file_at("HEAD", path)?.unwrap_or_default(),
                    remote: self.file_at(&upstream, path)?.unwrap_or_default(),
                    remote_commit: self.last_commit_of(&upstream, path)?,
                    rel,
                })
            })
            .collect()
    }

    /// Repo paths changed in `range` (`a...b`: since the merge base).
    fn changed(&self, range: &str) -> Result<BTreeSet<String>> {
        Ok(self.diff_names(&[range, "--"])?.into_iter().collect())
    }

    /// `git diff --name-only -z <args>`.
    fn diff_names(&self, args: &[&str]) -> Result<Vec<String>> {
        let mut full = vec!["diff", "--name-only", "-z"];
        full.extend_from_slice(args);
        let out = self.git.run(&self.workdir, &full)?;
        if !out.status.success() {
            return Err(Error::failed(format!(
                "git {} failed\ngit said:\n{}",
                full.join(" "),
                said(&out)
            )));
        }
        Ok(out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    fn file_at(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let what = format!("reading {path} at {rev}");
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| git_error(&what, e))?;
        let tree = commit.tree().map_err(|e| git_error(&what, e))?;
        let Ok(entry) = tree.get_path(std::path::Path::new(path)) else {
            return Ok(None);
        };
        let blob = entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_blob())
            .map_err(|e| git_error(&what, e))?;
        Ok(Some(blob.content().to_vec()))
    }

    fn last_commit_of(&self, rev: &str, path: &str) -> Result<String> {
        let out = self.git.run(
            &self.workdir,
            &["log", "-1", "--format=%h %s (%an)", rev, "--", path],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Replays our unpushed commits onto the fetched upstream, each file in `keep` taken
    /// whole from the side it names; returns the ids of our commits that became empty and
    /// were dropped. On anything else that stops the replay, it is undone and an error
    /// says so: the branch is then as before.
    pub fn replay_onto_upstream(
        &self,
        plan: &PushPlan,
        keep: &BTreeMap<String, Keep>,
    ) -> Result<Vec<String>> {
        let attributes = tempfile::NamedTempFile::new()
            .map_err(|e| Error::failed(format!("a temporary attributes file: {e}")))?;
        // No line merges of break-glass files: a conflict is resolved whole, below.
        writeln!(
            attributes.as_file(),
            "*{} merge=binary",
            crate::fleet::BREAK_GLASS_FILE
        )
        .map_err(|e| Error::failed(format!("a temporary attributes file: {e}")))?;
        let attributes_config = format!("core.attributesFile={}", attributes.path().display());
        let rebase = |args: &[&str]| {
            let mut full = vec!["-c", &attributes_config, "-c", "core.editor=true", "rebase"];
            full.extend_from_slice(args);
            self.git.run(&self.workdir, &full)
        };
        let upstream = upstream_ref(plan);
        let mut out = rebase(&["--autostash", "--quiet", &upstream])?;
        let mut dropped = Vec::new();
        while !out.status.success() {
            let conflicted = self.conflicted()?;
            if conflicted.is_empty() {
                return Err(self.abandon(plan, &said(&out)));
            }
            for path in &conflicted {
                let rel = self.fleet_path(path).unwrap_or(path);
                // During a rebase, --ours is the upstream side, --theirs our replayed commit.
                let side = match keep.get(rel) {
                    Some(Keep::Local) => "--theirs",
                    Some(Keep::Remote) => "--ours",
                    None => {
                        let why = format!("{rel} was changed on both sides");
                        return Err(self.abandon(plan, &why));
                    }
                };
                self.git_ok(&["checkout", side, "--", path])?;
                self.git_ok(&["add", "--", path])?;
            }
            out = if self.nothing_staged()? {
                dropped.push(self.rev("REBASE_HEAD")?);
                rebase(&["--skip"])?
            } else {
                rebase(&["--continue"])?
            };
        }
        Ok(dropped)
    }

    fn conflicted(&self) -> Result<Vec<String>> {
        self.diff_names(&["--diff-filter=U"])
    }

    fn nothing_staged(&self) -> Result<bool> {
        let out = self
            .git
            .run(&self.workdir, &["diff", "--cached", "--quiet"])?;
        Ok(out.status.success())
    }

    fn rev(&self, name: &str) -> Result<String> {
        let out = self
            .git
            .run(&self.workdir, &["rev-parse", "--short", name])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn git_ok(&self, args: &[&str]) -> Result<()> {
        let out = self.git.run(&self.workdir, args)?;
        match out.status.success() {
            true => Ok(()),
            false => Err(Error::failed(format!(
                "git {} failed during the replay\ngit said:\n{}",
                args.join(" "),
                said(&out)
            ))),
        }
    }

    /// Aborts a replay that cannot finish: the branch goes back to our commits.
    fn abandon(&self, plan: &PushPlan, why: &str) -> Error {
        let _ = self.git.run(&self.workdir, &["rebase", "--abort"]);
        let here = quote(&self.workdir.to_string_lossy());
        Error::failed(format!(
            "push to {} was rejected (non-fast-forward) and replaying your commit(s) onto the remote's could not finish ({why}); it was undone: your commit(s) exist locally and nothing was forced",
            plan.target()
        ))
        .with_hint(format!(
            "integrate the remote's commits, then push: git -C {here} pull --rebase && {}",
            plan.command()
        ))
    }
}

fn upstream_ref(plan: &PushPlan) -> String {
    format!("refs/remotes/{}/{}", plan.remote, plan.remote_branch)
}
