//! What adopt and rotate do after writing a file: commit it, then push (or say how).

use std::io::Write;

use chrono::Utc;

use std::collections::BTreeMap;

use super::cli::GitCli;
use super::message::{Change, MessageTemplate, combined_message};
use super::push::{PushPlan, PushPolicy, confirm, rejected};
use super::repo::{CommitOutcome, Repo};
use super::sync::{Keep, Overlap};
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::fleet_settings::{self, FleetSettings};
use crate::ui::Ui;

/// What to do with a written file (the push is the [`PushPolicy`]'s).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The commit message template; `None`: `commit_message` in the fleet's
    /// `.kube-dc.yaml`, else the action's default.
    pub message: Option<String>,
    /// Write the file only: no commit (and so no push).
    pub no_commit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed {
        commits: usize,
        target: String,
    },
    /// The upstream already has every commit.
    UpToDate,
    /// Not pushed (no `--push`, answered no, `--no-commit`, or nowhere to push); the
    /// reason and the command to run went to stderr.
    NotPushed,
}

/// Commits written files and pushes them, as the flags say.
pub struct Recorder {
    /// `None` with `--no-commit`.
    repo: Option<Repo>,
    /// `None`: each action's default.
    template: Option<MessageTemplate>,
    policy: PushPolicy,
}

impl Recorder {
    /// Checks everything that can be checked before a file is written: the template and
    /// that the fleet is in a Git work tree.
    pub fn new(
        fleet: &Fleet,
        args: &CommitOptions,
        git: GitCli,
        policy: PushPolicy,
    ) -> Result<Recorder> {
        if args.no_commit {
            return Ok(Recorder {
                repo: None,
                template: None,
                policy,
            });
        }
        let template = match &args.message {
            Some(text) => Some(MessageTemplate::parse(text, "--message")?),
            None => FleetSettings::load(fleet.root())?
                .commit_message
                .map(|text| {
                    MessageTemplate::parse(
                        &text,
                        &format!("commit_message in {}", fleet_settings::FILE_NAME),
                    )
                })
                .transpose()?,
        };
        let repo = Repo::discover(fleet.root())?.with_git(git);
        Ok(Recorder {
            repo: Some(repo),
            template,
            policy,
        })
    }

    /// Commits only `change.rel`; reports the commit on stderr.
    pub fn commit(&self, change: &Change, ui: &mut Ui) -> Result<CommitOutcome> {
        let template = self.template.clone().unwrap_or_else(|| {
            MessageTemplate::default_for(change.action, change.incident.is_some())
        });
        let message = template.render(change, Utc::now());
        self.commit_files(&[change.rel], &message, ui)
    }

    /// Commits all the changes' files, and only them, as one commit (`--single-commit`).
    pub fn commit_together(&self, changes: &[Change], ui: &mut Ui) -> Result<CommitOutcome> {
        let rels: Vec<&str> = changes.iter().map(|c| c.rel).collect();
        let message = combined_message(changes, self.template.as_ref(), Utc::now());
        self.commit_files(&rels, &message, ui)
    }

    fn commit_files(&self, rels: &[&str], message: &str, ui: &mut Ui) -> Result<CommitOutcome> {
        let files = rels.join(", ");
        let Some(repo) = &self.repo else {
            let _ = writeln!(ui.err, "{files} written, not committed (--no-commit)");
            return Ok(CommitOutcome::Skipped);
        };
        let outcome = repo.commit_paths(rels, message)?;
        match &outcome {
            CommitOutcome::Committed(c) => {
                let _ = writeln!(ui.err, "committed {} {}", c.short_id, c.subject);
            }
            CommitOutcome::Unchanged => {
                let _ = writeln!(ui.err, "{files} unchanged: nothing to commit");
            }
            CommitOutcome::Skipped => {}
        }
        Ok(outcome)
    }

    /// Pushes the branch as the policy says. Without `--push`, having nowhere to push
    /// (detached HEAD, no upstream) is a warning; with it, an error. A remote that moved
    /// on is an error here; [`Recorder::push_resolving`] integrates it.
    pub fn push(&self, ui: &mut Ui) -> Result<PushOutcome> {
        self.push_resolving(ui, &mut |overlaps, _| {
            let files: Vec<&str> = overlaps.iter().map(|o| o.rel.as_str()).collect();
            Err(Error::failed(format!(
                "{} changed on both sides",
                files.join(", ")
            )))
        })
    }

    /// [`Recorder::push`], and when the remote has moved on: fetch, replay our commits onto
    /// it and push again, at most [`PUSH_ATTEMPTS`] times, never forcing. `resolve` says,
    /// for the files both sides changed, whose whole version lands.
    pub fn push_resolving(&self, ui: &mut Ui, resolve: Resolve<'_>) -> Result<PushOutcome> {
        let Some(repo) = &self.repo else {
            return Ok(PushOutcome::NotPushed);
        };
        let mut plan = match repo.push_plan() {
            Ok(plan) => plan,
            Err(e) if self.policy == PushPolicy::Push => return Err(e),
            Err(e) => {
                ui.warn(&e.to_string());
                return Ok(PushOutcome::NotPushed);
            }
        };
        if plan.commits == 0 {
            return Ok(PushOutcome::UpToDate);
        }
        let go = match self.policy {
            PushPolicy::Push => true,
            PushPolicy::Ask => confirm(&plan.question(), &mut std::io::stdin().lock(), &mut ui.err),
            PushPolicy::Skip => false,
        };
        if !go {
            let _ = writeln!(
                ui.err,
                "not pushed: {} commit(s) on {} are not on {}; to push, run:\n  {}",
                plan.commits,
                plan.branch,
                plan.target(),
                plan.command()
            );
            return Ok(PushOutcome::NotPushed);
        }
        for attempt in 1..=PUSH_ATTEMPTS {
            let Some(said) = repo.try_push(&plan)? else {
                let _ = writeln!(
                    ui.err,
                    "pushed {} commit(s) to {}",
                    plan.commits,
                    plan.target()
                );
                return Ok(PushOutcome::Pushed {
                    commits: plan.commits,
                    target: plan.target(),
                });
            };
            if attempt == PUSH_ATTEMPTS {
                return Err(rejected(
                    &plan,
                    &format!(
                        "{said}\n(gave up after {PUSH_ATTEMPTS} attempts: the remote kept moving)"
                    ),
                ));
            }
            plan = integrate(repo, &plan, ui, resolve)?;
            if plan.commits == 0 {
                return Ok(PushOutcome::UpToDate);
            }
        }
        Err(rejected(&plan, "the remote kept moving"))
    }
}

/// How many times a push is tried when the remote keeps moving.
pub const PUSH_ATTEMPTS: usize = 5;

/// Decides, for files both our commits and the remote's changed, whose version lands.
pub type Resolve<'a> = &'a mut dyn FnMut(&[Overlap], &mut Ui) -> Result<BTreeMap<String, Keep>>;

/// Fetches, replays our commits onto the remote's and says what happened; the new plan.
fn integrate(repo: &Repo, plan: &PushPlan, ui: &mut Ui, resolve: Resolve<'_>) -> Result<PushPlan> {
    repo.fetch(plan)?;
    let overlaps = repo.overlaps(plan)?;
    let keep = match overlaps.is_empty() {
        true => BTreeMap::new(),
        false => resolve(&overlaps, ui)?,
    };
    let dropped = repo.replay_onto_upstream(plan, &keep)?;
    let _ = writeln!(
        ui.err,
        "{} had new commits: replayed ours on top of them (nothing forced)",
        plan.target()
    );
    if !dropped.is_empty() {
        let _ = writeln!(
            ui.err,
            "dropped our commit(s) {} (superseded by the remote's; still in the reflog)",
            dropped.join(", ")
        );
    }
    repo.push_plan()
}
