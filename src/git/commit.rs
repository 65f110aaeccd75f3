//! Committing files with the `git` CLI, leaving every other change where it was.

use super::cli::said;
use super::history::commit_info;
use super::repo::{CommitOutcome, Repo, git_error};
use super::state::PathState;
use crate::error::{Error, Result};
use crate::shell::quote;

impl Repo {
    /// Commits the fleet-relative files `rels`, and only them, with `message`.
    ///
    /// `git commit --only -- <files>` builds the commit from `HEAD` plus the files' work
    /// tree content, so other staged and unstaged changes are neither committed nor lost.
    /// A new file is first marked with `git add --intent-to-add` (no content staged), so a
    /// rejected commit leaves the index as it was apart from that mark.
    pub fn commit_paths(&self, rels: &[&str], message: &str) -> Result<CommitOutcome> {
        let owned: Vec<String> = rels.iter().map(|r| r.to_string()).collect();
        let states = self.path_states(&owned)?;
        let mut paths = Vec::new();
        for rel in rels {
            let path = self.repo_path(rel);
            match states.get(*rel).copied().unwrap_or(PathState::Missing) {
                PathState::Clean => continue,
                PathState::Missing => {
                    return Err(Error::failed(format!(
                        "cannot commit {rel}: the file does not exist"
                    )));
                }
                PathState::Untracked => {
                    self.run_git(&[rel], &["add", "--intent-to-add", "--", &path])?
                }
                PathState::Modified | PathState::Staged => {}
            }
            paths.push(path);
        }
        if paths.is_empty() {
            return Ok(CommitOutcome::Unchanged);
        }
        let mut args = vec!["commit", "--quiet", "--only", "-m", message, "--"];
        args.extend(paths.iter().map(String::as_str));
        self.run_git(rels, &args)?;
        let head = self
            .repo
            .refname_to_id("HEAD")
            .map_err(|e| git_error("reading the new commit", e))?;
        let info =
            commit_info(&self.repo, head).map_err(|e| git_error("reading the new commit", e))?;
        Ok(CommitOutcome::Committed(info))
    }

    /// Runs a step of the commit; a failure says the files are written but not committed.
    fn run_git(&self, rels: &[&str], args: &[&str]) -> Result<()> {
        let out = self.git.run(&self.workdir, args)?;
        if out.status.success() {
            return Ok(());
        }
        let here = quote(&self.workdir.to_string_lossy());
        let paths: Vec<String> = rels.iter().map(|r| quote(&self.repo_path(r))).collect();
        let paths = paths.join(" ");
        Err(Error::failed(format!(
            "`git {}` failed (a pre-commit hook may have rejected it): {} {} written but NOT committed\ngit said:\n{}",
            args.first().unwrap_or(&"commit"),
            rels.join(", "),
            if rels.len() == 1 { "is" } else { "are" },
            said(&out)
        ))
        .with_hint(format!(
            "fix what git reported, then commit the files yourself: git -C {here} add -- {paths} && git -C {here} commit -- {paths}"
        )))
    }
}
