//! Pushing the branch to its upstream with the `git` CLI: never by default, never forced.

use std::io::{BufRead, IsTerminal, Write};

use super::cli::said;
use super::repo::Repo;
use super::state::Head;
use crate::error::{Error, Result};
use crate::shell::quote;

/// What to do with new commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushPolicy {
    /// `--push`.
    Push,
    /// Interactive without `--push`: ask, default no.
    Ask,
    /// Not interactive: print the command to run.
    Skip,
}

impl PushPolicy {
    pub fn new(push_flag: bool, interactive: bool) -> PushPolicy {
        match (push_flag, interactive) {
            (true, _) => PushPolicy::Push,
            (false, true) => PushPolicy::Ask,
            (false, false) => PushPolicy::Skip,
        }
    }

    /// Interactive when both stdin (for the answer) and stderr (for the question) are terminals.
    pub fn from_flag(push_flag: bool) -> PushPolicy {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        PushPolicy::new(push_flag, interactive)
    }
}

/// The current branch, where it pushes to, and how many commits would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPlan {
    pub branch: String,
    pub remote: String,
    pub remote_branch: String,
    /// Commits on the branch that the upstream does not have.
    pub commits: usize,
    /// Commits on the upstream that the branch does not have: the push would be rejected.
    pub behind: usize,
    workdir: String,
}

impl PushPlan {
    /// What to type to push by hand.
    pub fn command(&self) -> String {
        format!(
            "git -C {} push {} {}",
            quote(&self.workdir),
            quote(&self.remote),
            quote(&self.refspec())
        )
    }

    pub fn question(&self) -> String {
        format!(
            "Push {} commit(s) to {}/{}? [y/N] ",
            self.commits, self.remote, self.remote_branch
        )
    }

    pub fn target(&self) -> String {
        format!("{}/{}", self.remote, self.remote_branch)
    }

    fn refspec(&self) -> String {
        if self.branch == self.remote_branch {
            self.branch.clone()
        } else {
            format!("{}:refs/heads/{}", self.branch, self.remote_branch)
        }
    }
}

impl Repo {
    /// Where the current branch would push. Errors (detached HEAD, no upstream) say that
    /// the commits exist locally and what to run.
    pub fn push_plan(&self) -> Result<PushPlan> {
        let workdir = self.workdir.to_string_lossy().into_owned();
        let here = quote(&workdir);
        match self.head()? {
            Head::Unborn => Err(Error::failed("nothing to push: the repository has no commits yet")),
            Head::Detached(id) => Err(Error::failed(format!(
                "not pushed: HEAD is detached (at {id}), so the commit exists locally but on no branch"
            ))
            .with_hint(format!(
                "put it on a branch and push that, e.g. `git -C {here} switch -c <branch>` then `git -C {here} push -u origin <branch>`"
            ))),
            Head::Branch { name, tracking: None } => {
                let remote = self
                    .sole_remote()
                    .map_or_else(|| "<remote>".to_string(), |r| quote(&r));
                Err(Error::failed(format!(
                    "not pushed: branch {name} has no upstream; the commit exists locally"
                ))
                .with_hint(format!("push it and set the upstream: git -C {here} push -u {remote} {}", quote(&name))))
            }
            Head::Branch { name, tracking: Some(t) } => Ok(PushPlan {
                branch: name,
                remote: t.remote,
                remote_branch: t.remote_branch,
                commits: t.ahead.len(),
                behind: t.behind,
                workdir,
            }),
        }
    }

    /// Pushes (fast-forward only: never `--force`).
    pub fn push(&self, plan: &PushPlan) -> Result<()> {
        match self.try_push(plan)? {
            None => Ok(()),
            Some(said) => Err(rejected(plan, &said)),
        }
    }

    /// Pushes; `Some(what git said)` when the remote refused a non-fast-forward.
    pub fn try_push(&self, plan: &PushPlan) -> Result<Option<String>> {
        let refspec = plan.refspec();
        let out = self.git.run(
            &self.workdir,
            &["push", "--porcelain", &plan.remote, &refspec],
        )?;
        if out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        // Also a push that lost a race inside the remote: it moved while we pushed.
        let moved = [
            "[rejected]",
            "non-fast-forward",
            "fetch first",
            "cannot lock ref",
        ];
        if moved.iter().any(|m| text.contains(m)) {
            return Ok(Some(said(&out)));
        }
        Err(Error::failed(format!(
            "git push to {} failed; your commit(s) exist locally\ngit said:\n{}",
            plan.target(),
            said(&out)
        ))
        .with_hint(format!("fix the cause above, then run: {}", plan.command())))
    }
}

/// A non-fast-forward rejection that kube-dc did not (or could not) integrate.
pub(super) fn rejected(plan: &PushPlan, said: &str) -> Error {
    let here = quote(&plan.workdir);
    Error::failed(format!(
        "push to {} was rejected (non-fast-forward): the remote has commits this clone does not; your commit(s) exist locally and nothing was forced\ngit said:\n{said}",
        plan.target(),
    ))
    .with_hint(format!(
        "integrate the remote's commits, then push: git -C {here} pull --rebase && {}",
        plan.command()
    ))
}

/// Asks a yes/no question; anything but `y`/`yes` (or end of input) is no.
pub(super) fn confirm(question: &str, input: &mut dyn BufRead, err: &mut dyn Write) -> bool {
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_defaults_to_no() {
        for (input, expected) in [
            ("y\n", true),
            ("YES\n", true),
            ("\n", false),
            ("n\n", false),
            ("", false),
            ("sure\n", false),
        ] {
            let mut err = Vec::new();
            let answer = confirm(
                "Push 1 commit(s) to origin/main? [y/N] ",
                &mut input.as_bytes(),
                &mut err,
            );
            assert_eq!(answer, expected, "{input:?}");
            assert_eq!(
                String::from_utf8(err).unwrap(),
                "Push 1 commit(s) to origin/main? [y/N] "
            );
        }
    }

    #[test]
    fn policy_and_command() {
        assert_eq!(PushPolicy::new(true, false), PushPolicy::Push);
        assert_eq!(PushPolicy::new(false, true), PushPolicy::Ask);
        assert_eq!(PushPolicy::new(false, false), PushPolicy::Skip);
        let plan = PushPlan {
            branch: "main".into(),
            remote: "origin".into(),
            remote_branch: "trunk".into(),
            commits: 2,
            behind: 0,
            workdir: "/srv/my fleet".into(),
        };
        assert_eq!(
            plan.command(),
            "git -C '/srv/my fleet' push origin main:refs/heads/trunk"
        );
        assert_eq!(plan.question(), "Push 2 commit(s) to origin/trunk? [y/N] ");
    }
}
