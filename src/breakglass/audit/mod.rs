//! Accountability for `use`: who broke the glass, why and when, kept in three places.
//!
//! - in the cluster, with the break-glass credential itself, before the shell starts: an
//!   Event on the ServiceAccount and its [`record::ANNOTATION`] with the latest session
//!   ([`record`]; best effort and bounded, never blocking the emergency);
//! - in a local journal outside the fleet tree ([`journal`]), which the next rotation of
//!   the cluster turns into its commit message, so the fleet history is the review trail;
//! - optionally, in the team's own tooling through the fleet's `on_use` command ([`hook`]).

pub mod hook;
pub mod journal;
pub mod reason;
pub mod record;

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::cluster::Identity;
use crate::fleet::{Cluster, Fleet};
use crate::fleet_settings::FleetSettings;
use crate::kubeconfig::BreakGlassCredential;
use crate::redact;
use journal::Journal;

/// A session being recorded: what `use` does around the child, and what the banner says.
pub struct Audit {
    pub session: Session,
    journal: Option<Journal>,
    identity: Option<Identity>,
    /// Lines for the banner: where the session was recorded, or why not.
    pub notes: Vec<String>,
}

impl Audit {
    /// Records the start in the journal and the cluster and runs `on_use`, the last two
    /// side by side, each under its own deadline. Nothing here can stop the session.
    pub async fn start(
        fleet: &Fleet,
        cluster: &Cluster,
        credential: &BreakGlassCredential,
        reason: String,
    ) -> Audit {
        let person = Person::here(fleet.root());
        let session = Session::begin(cluster.name().as_str(), &person, &reason);
        let mut notes = vec![
            format!(
                "person:   {} ({}@{})",
                session.who, session.user, session.host
            ),
            format!("reason:   {}", session.reason),
        ];
        let journal = match Journal::for_fleet(fleet.root()) {
            Ok(j) => match j.append_session(&session) {
                Ok(()) => {
                    notes.push(format!("journal:  {}", j.path().display()));
                    Some(j)
                }
                Err(e) => {
                    notes.push(format!("journal:  FAILED: {}", e.message()));
                    None
                }
            },
            Err(e) => {
                notes.push(format!("journal:  FAILED: {}", e.message()));
                None
            }
        };
        let identity = cluster.config().map(|c| Identity::for_config(&c));
        let on_use = FleetSettings::load(fleet.root()).map(|s| s.on_use);
        let recorded = async {
            match &identity {
                Ok(id) => record::record(cluster.name(), credential, id, &session).await,
                Err(e) => Err(crate::error::Error::failed(e.message())),
            }
        };
        let hooked = async {
            match &on_use {
                Ok(Some(command)) => {
                    Some(hook::run(command, fleet.root(), &session, &credential.server).await)
                }
                Ok(None) => None,
                Err(e) => Some(Err(format!(
                    "cannot read the fleet settings: {}",
                    e.message()
                ))),
            }
        };
        let (recorded, hooked) = tokio::join!(recorded, hooked);
        notes.push(record_note(&recorded, identity.as_ref().ok()));
        match hooked {
            None => {}
            Some(Ok(())) => notes.push("on_use:   ran".into()),
            Some(Err(why)) => notes.push(format!("on_use:   FAILED (the session goes on): {why}")),
        }
        Audit {
            session,
            journal,
            identity: identity.ok(),
            notes,
        }
    }

    /// Records the end (time and exit code) in the journal and the cluster; returns
    /// warnings for what could not be recorded.
    pub async fn end(
        mut self,
        cluster: &Cluster,
        credential: &BreakGlassCredential,
        exit_code: u8,
    ) -> Vec<String> {
        self.session.finish(exit_code);
        let mut warnings = Vec::new();
        if let Some(journal) = &self.journal
            && let Err(e) = journal.append_session(&self.session)
        {
            warnings.push(format!(
                "the session's end was not journaled: {}",
                e.message()
            ));
        }
        if let Some(id) = &self.identity
            && let Err(e) = record::record(cluster.name(), credential, id, &self.session).await
        {
            warnings.push(format!(
                "the session's end was not recorded in the cluster: {}",
                redact::untrusted(e.message().as_bytes())
            ));
        }
        warnings
    }
}

fn record_note(recorded: &crate::error::Result<()>, id: Option<&Identity>) -> String {
    match (recorded, id) {
        (Ok(()), Some(id)) => format!(
            "record:   Event {} and annotation {} on ServiceAccount {}/{}",
            record::STARTED,
            record::ANNOTATION,
            id.namespace,
            id.service_account
        ),
        (Err(e), _) => format!(
            "record:   FAILED, the cluster has no record of this session (it goes on): {}",
            redact::untrusted(e.message().as_bytes())
        ),
        (Ok(()), None) => "record:   done".into(),
    }
}

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
