//! One `use` session and the person who ran it: what the cluster record, the journal and
//! the rotation commit say about it.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::reason;

/// One `use` session. Holds no secret: it goes into cluster objects, the journal and
/// commit messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unique per session: the start time and the kube-dc process id.
    pub id: String,
    pub cluster: String,
    /// The Git identity of the fleet repo, `Name <email>`.
    pub who: String,
    /// The local account and host the session ran on.
    pub user: String,
    pub host: String,
    pub reason: String,
    pub start: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
}

impl Session {
    pub fn begin(cluster: &str, person: &Person, reason: &str) -> Session {
        let start = Utc::now();
        Session {
            id: format!(
                "{}-{}",
                start.format("%Y%m%dT%H%M%S%.6fZ"),
                std::process::id()
            ),
            cluster: cluster.into(),
            who: person.git.clone(),
            user: person.user.clone(),
            host: person.host.clone(),
            reason: reason.into(),
            start,
            end: None,
            exit_code: None,
        }
    }

    pub fn finish(&mut self, exit_code: u8) {
        self.end = Some(Utc::now());
        self.exit_code = Some(exit_code);
    }

    /// One line for a commit message or a report: who, where from, when, why, how it ended.
    pub fn summary(&self) -> String {
        let end = match (self.end, self.exit_code) {
            (Some(end), Some(code)) => format!("{} (exit {code})", stamp(end)),
            (Some(end), None) => stamp(end),
            _ => "still open or killed".into(),
        };
        // The journal is a plain file: keep whatever it says to one line.
        let clean = |text: &str| reason::printable(text, reason::MAX_CHARS);
        format!(
            "{} ({}@{}) {} - {}: {}",
            clean(&self.who),
            clean(&self.user),
            clean(&self.host),
            stamp(self.start),
            end,
            clean(&self.reason)
        )
    }
}

pub fn stamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Who runs kube-dc: the fleet repo's Git identity, the local account and the host.
#[derive(Debug, Clone)]
pub struct Person {
    pub git: String,
    pub user: String,
    pub host: String,
}

impl Person {
    pub fn here(fleet_root: &Path) -> Person {
        Person {
            git: git_identity(fleet_root),
            user: local_user(),
            host: host_name(),
        }
    }
}

/// `user.name <user.email>` as Git would sign a commit in the fleet repo (its local
/// config, then the global and system ones).
fn git_identity(fleet_root: &Path) -> String {
    let config = git2::Repository::discover(fleet_root)
        .and_then(|repo| repo.config())
        .or_else(|_| git2::Config::open_default());
    let get = |key: &str| {
        config
            .as_ref()
            .ok()
            .and_then(|c| c.get_string(key).ok())
            .map(|v| reason::printable(&v, 100))
            .filter(|v| !v.is_empty())
    };
    match (get("user.name"), get("user.email")) {
        (Some(name), Some(email)) => format!("{name} <{email}>"),
        (Some(name), None) => name,
        (None, Some(email)) => format!("<{email}>"),
        (None, None) => "(no Git user.name/user.email)".into(),
    }
}

fn local_user() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"));
    reason::printable(&name, 64)
}

fn host_name() -> String {
    let name = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    reason::printable(&name, 128)
}
