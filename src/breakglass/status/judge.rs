//! Judging a collected status: the problems that depend on Git, the token's age,
//! decryption, `--live` and the local journal, each with its fix.

use crate::shell::quote;
use std::time::Duration;

use super::live::LiveState;
use super::model::{ClusterStatus, Decryption, Problem, ProblemKind, State, short_duration};

/// Adds the problems that depend on Git, age and decryption; `upstream` names the branch
/// an unpushed commit is missing from.
pub fn judge(status: &mut ClusterStatus, max_age: Option<Duration>, upstream: Option<&str>) {
    let name = quote(&status.cluster);
    let file = quote(&status.file);
    let message = quote(&format!("{}: break-glass kubeconfig", status.cluster));
    let mut add =
        |kind, message: String, fix: String| status.problems.push(Problem { kind, message, fix });
    match status.state {
        State::NotAdopted => add(
            ProblemKind::NotAdopted,
            "no break-glass kubeconfig".into(),
            format!("kube-dc bootstrap break-glass adopt {name}"),
        ),
        State::Modified | State::Staged | State::Untracked => add(
            ProblemKind::Uncommitted,
            format!("{} and not committed", status.state.label()),
            format!("git add {file} && git commit -m {message} -- {file}"),
        ),
        State::Unpushed => add(
            ProblemKind::Unpushed,
            format!(
                "committed but not pushed to {}",
                upstream.unwrap_or("the upstream")
            ),
            "git push".into(),
        ),
        State::Committed => {}
    }
    if let (Some(max), Some(age)) = (max_age, status.token_age_seconds)
        && age > max.as_secs() as i64
    {
        add(
            ProblemKind::TooOld,
            format!(
                "token is {} old (limit {})",
                short_duration(age),
                short_duration(max.as_secs() as i64)
            ),
            format!("kube-dc bootstrap break-glass rotate {name}"),
        );
    }
    if let Some(Decryption {
        ok: false,
        error: Some(error),
        fix,
    }) = &status.decryption
    {
        add(
            ProblemKind::Undecryptable,
            error.clone(),
            fix.clone().unwrap_or_else(|| {
                "see the message; restore the file from Git or re-run adopt".into()
            }),
        );
    }
    if let Some(live) = &status.live
        && let Some((kind, fix)) = live_problem(live.state, &name)
    {
        add(
            kind,
            format!("{}: {}", live.state.label(), live.message),
            fix,
        );
    }
    if let Some(problem) = journal_problem(status) {
        status.problems.push(problem);
    }
    status.problems.sort_by_key(|p| p.kind as u8);
}

/// A cluster used since its last rotation, as this machine's journal knows it (without
/// `--live`, or when the cluster cannot be asked).
fn journal_problem(status: &ClusterStatus) -> Option<Problem> {
    let last = status.unreviewed_sessions.last()?;
    let already = status
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::UsedSinceRotation);
    (!already).then(|| Problem {
        kind: ProblemKind::UsedSinceRotation,
        message: format!(
            "used since last rotation: {} session(s) in the local journal, the last by {}",
            status.unreviewed_sessions.len(),
            last.summary()
        ),
        fix: format!(
            "kube-dc bootstrap break-glass rotate {}",
            quote(&status.cluster)
        ),
    })
}

/// `--check` accepts only `unused since rotation`.
fn live_problem(state: LiveState, name: &str) -> Option<(ProblemKind, String)> {
    let rotate = format!("kube-dc bootstrap break-glass rotate {name}");
    Some(match state {
        LiveState::UnusedSinceRotation => return None,
        LiveState::UsedSinceRotation => (ProblemKind::UsedSinceRotation, rotate),
        LiveState::Stale => (
            ProblemKind::Stale,
            format!(
                "find the file with the cluster's token (another branch or clone, an uncommitted rotation), or {rotate}"
            ),
        ),
        LiveState::Revoked => (ProblemKind::Revoked, rotate),
        LiveState::Unreachable | LiveState::NoAdminContext | LiveState::Error => (
            ProblemKind::LiveUnknown,
            "see the message; --kube-context/--kubeconfig choose the admin login".into(),
        ),
    })
}
