//! After adopt or rotate wrote files: commit them (only them), then push once, as the git
//! flags say. A rotation's commit lists the `use` sessions it closes, which are then
//! marked reviewed in the journal so that no later commit repeats them.

use super::landing;
use super::target::{Outcome, Target};
use crate::breakglass::audit::journal::Journal;
use crate::error::Result;
use crate::fleet::Cluster;
use crate::git::{self, Action, CommitOutcome, Recorder};
use crate::sops::Sops;
use crate::ui::Ui;

/// How the written files go into Git.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commits<'a> {
    /// One commit for all the files instead of one per cluster.
    pub together: bool,
    pub incident: Option<&'a str>,
}

/// Commits the written files (only them), then pushes once, as the git flags say.
pub fn record(
    recorder: &Recorder,
    sops: &Sops,
    action: Action,
    done: &[(&Target, &Outcome)],
    commits: Commits,
    ui: &mut Ui,
) -> Result<()> {
    if done.is_empty() {
        // Nothing was written: nothing to commit or push, and nothing to say about it.
        return Ok(());
    }
    let rels: Vec<String> = done
        .iter()
        .map(|(t, _)| t.cluster.break_glass_rel())
        .collect();
    let reviews: Vec<Review> = done
        .iter()
        .map(|(target, _)| Review::of(action, &target.cluster, ui))
        .collect();
    let changes: Vec<git::Change> = done
        .iter()
        .zip(&rels)
        .zip(&reviews)
        .map(|(((target, outcome), rel), review)| git::Change {
            cluster: target.cluster.name(),
            action,
            server: &outcome.server,
            rel,
            incident: commits.incident,
            sessions: &review.lines,
        })
        .collect();
    if commits.together && !changes.is_empty() {
        let outcome = recorder.commit_together(&changes, ui)?;
        reviews.iter().for_each(|r| r.close(&outcome, ui));
    } else {
        for (change, review) in changes.iter().zip(&reviews) {
            let outcome = recorder.commit(change, ui)?;
            review.close(&outcome, ui);
        }
    }
    // A push that meets others: the clusters decide which break-glass file lands.
    let targets: Vec<&Target> = done.iter().map(|(t, _)| *t).collect();
    let mut resolve =
        |overlaps: &[git::Overlap], ui: &mut Ui| landing::decide_all(sops, &targets, overlaps, ui);
    recorder.push_resolving(ui, &mut resolve).map(|_| ())
}

/// The `use` sessions a rotation's commit lists: those of its cluster no commit listed yet.
struct Review {
    journal: Option<Journal>,
    ids: Vec<String>,
    lines: String,
}

impl Review {
    fn of(action: Action, cluster: &Cluster, ui: &mut Ui) -> Review {
        let none = Review {
            journal: None,
            ids: Vec::new(),
            lines: String::new(),
        };
        if action != Action::Rotate {
            return none;
        }
        let found = Journal::for_fleet(cluster.fleet_root()).and_then(|journal| {
            let sessions = journal.unreviewed(cluster.name().as_str())?;
            Ok((journal, sessions))
        });
        match found {
            Ok((journal, sessions)) => Review {
                journal: Some(journal),
                ids: sessions.iter().map(|s| s.id.clone()).collect(),
                lines: sessions
                    .iter()
                    .map(|s| format!("- {}\n", s.summary()))
                    .collect(),
            },
            Err(e) => {
                ui.warn(&format!(
                    "the commit of {} cannot list its break-glass sessions: {}",
                    cluster.name(),
                    e.message()
                ));
                none
            }
        }
    }

    /// Once the sessions are in a commit, marks them so that no later commit repeats them.
    fn close(&self, outcome: &CommitOutcome, ui: &mut Ui) {
        let (Some(journal), CommitOutcome::Committed(_)) = (&self.journal, outcome) else {
            return;
        };
        if let Err(e) = journal.mark_reviewed(self.ids.clone()) {
            ui.warn(&format!(
                "the sessions are in the commit, but marking them reviewed failed (the next rotation lists them again): {}",
                e.message()
            ));
        }
    }
}
