//! Committing one file with the `git` CLI, leaving every other change where it was.

use super::cli::said;
use super::history::commit_info;
use super::{CommitOutcome, PathState, Repo, git_error, shell_quote};
use crate::error::{Error, Result};

impl Repo {
    /// Commits the fleet-relative file `rel`, and only it, with `message`.
    ///
    /// `git commit --only -- <file>` builds the commit from `HEAD` plus the file's work
    /// tree content, so other staged and unstaged changes are neither committed nor lost.
    /// A new file is first marked with `git add --intent-to-add` (no content staged), so a
    /// rejected commit leaves the index as it was apart from that mark.
    pub fn commit_only(&self, rel: &str, message: &str) -> Result<CommitOutcome> {
        let path = self.repo_path(rel);
        match self.path_states(&[rel.to_string()])?[rel] {
            PathState::Clean => return Ok(CommitOutcome::Unchanged),
            PathState::Missing => {
                return Err(Error::failed(format!(
                    "cannot commit {rel}: the file does not exist"
                )));
            }
            PathState::Untracked => self.run_git(rel, &["add", "--intent-to-add", "--", &path])?,
            PathState::Modified | PathState::Staged => {}
        }
        self.run_git(
            rel,
            &["commit", "--quiet", "--only", "-m", message, "--", &path],
        )?;
        let head = self
            .repo
            .refname_to_id("HEAD")
            .map_err(|e| git_error("reading the new commit", e))?;
        let info =
            commit_info(&self.repo, head).map_err(|e| git_error("reading the new commit", e))?;
        Ok(CommitOutcome::Committed(info))
    }

    /// Runs a step of the commit; a failure says the file is written but not committed.
    fn run_git(&self, rel: &str, args: &[&str]) -> Result<()> {
        let out = self.git.run(&self.workdir, args)?;
        if out.status.success() {
            return Ok(());
        }
        let here = shell_quote(&self.workdir.to_string_lossy());
        let path = shell_quote(&self.repo_path(rel));
        Err(Error::failed(format!(
            "`git {}` failed (a pre-commit hook may have rejected it): {rel} is written but NOT committed\ngit said:\n{}",
            args[0],
            said(&out)
        ))
        .with_hint(format!(
            "fix what git reported, then commit the file yourself: git -C {here} add -- {path} && git -C {here} commit -- {path}"
        )))
    }
}
