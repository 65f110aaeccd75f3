//! The status report: what `status` says about each break-glass file and about the fleet.
//! Collected by [`super::collect`], judged by [`super::judge`], rendered by the command;
//! serialized as is for `--output json` (docs/json-output.md).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::live::{LiveStatus, TokenDigest};
use crate::breakglass::audit::Session;
use crate::git::CommitInfo;

/// Where the break-glass file stands in Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Committed,
    /// Committed, but the commit is not on the upstream yet.
    Unpushed,
    Modified,
    Staged,
    Untracked,
    NotAdopted,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Committed => "committed",
            State::Unpushed => "unpushed",
            State::Modified => "modified",
            State::Staged => "staged",
            State::Untracked => "untracked",
            State::NotAdopted => "not adopted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    NotAdopted,
    NotEncrypted,
    RecipientsMismatch,
    Undecryptable,
    /// The path is not a regular file kube-dc may read (a link, FIFO, device, too large).
    Unreadable,
    TooOld,
    Uncommitted,
    Unpushed,
    UsedSinceRotation,
    Stale,
    Revoked,
    /// `--live` could not tell: unreachable, no admin context, or an error.
    LiveUnknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    /// What to run or do.
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeSource {
    /// The last commit that touched the file.
    Commit,
    /// The file is not committed as it is: sops' `lastmodified`.
    SopsLastmodified,
}

/// One cluster's break-glass file, as `status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    /// Relative to the fleet root.
    pub file: String,
    pub path: PathBuf,
    pub state: State,
    pub last_commit: Option<CommitInfo>,
    pub token_age_seconds: Option<i64>,
    pub age_source: Option<AgeSource>,
    pub encrypted_size_bytes: Option<u64>,
    /// File modification time: after a clone this is the checkout time, not the token's age.
    pub modified: Option<DateTime<Utc>>,
    pub sops: Option<SopsInfo>,
    /// `null` with `--no-decrypt` or when there is no file.
    pub decryption: Option<Decryption>,
    /// The API server URL in the kubeconfig (only known after decryption).
    pub server: Option<String>,
    /// `null` without `--live` or when the file did not decrypt.
    pub live: Option<LiveStatus>,
    /// `use` sessions journaled on this machine since the file's last commit that no
    /// rotation commit has listed yet (see `audit::journal`).
    pub unreviewed_sessions: Vec<Session>,
    pub problems: Vec<Problem>,
    /// The decrypted token's digest, for `--live`.
    #[serde(skip)]
    pub(crate) token_digest: Option<TokenDigest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SopsInfo {
    pub lastmodified: Option<String>,
    pub recipients: Vec<String>,
    /// The age recipients of the `.sops.yaml` rule for this path.
    pub expected_recipients: Vec<String>,
    pub recipients_match: bool,
    /// The rule recorded in the file that leaves some values in clear (`encrypted_regex:
    /// ^(token|…)$`, as the Go kube-dc and kube-dc on fleets with a data-only rule write
    /// it); `None`: every value is encrypted.
    pub selective_rule: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decryption {
    pub ok: bool,
    pub error: Option<String>,
    /// What to do about `error` (e.g. how to provide an age key): the problem's fix.
    #[serde(skip)]
    pub fix: Option<String>,
}

/// `status --all`: the fleet-wide report.
#[derive(Debug, Serialize)]
pub struct FleetStatus {
    pub fleet: PathBuf,
    pub generated_at: DateTime<Utc>,
    pub repository: Option<RepositoryInfo>,
    pub max_age_seconds: Option<u64>,
    pub decrypted: bool,
    /// The clusters were asked too (`--live`).
    pub live: bool,
    pub clusters: Vec<ClusterStatus>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct RepositoryInfo {
    /// `null` when HEAD is detached or there are no commits.
    pub branch: Option<String>,
    pub detached: bool,
    /// `remote/branch`, `null` without an upstream.
    pub upstream: Option<String>,
    pub ahead: usize,
    pub behind: usize,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub clusters: usize,
    pub ok: usize,
    pub with_problems: usize,
}

/// `3d 4h`, `5h 12m`, `7m`, `42s`: enough precision for a token's age.
pub fn short_duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(42), "42s");
        assert_eq!(short_duration(7 * 60 + 5), "7m");
        assert_eq!(short_duration(5 * 3600 + 12 * 60), "5h 12m");
        assert_eq!(short_duration(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
