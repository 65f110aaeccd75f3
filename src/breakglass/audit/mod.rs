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
pub mod session;

use crate::cluster::Identity;
use crate::fleet::{Cluster, Fleet};
use crate::fleet_settings::FleetSettings;
use crate::kubeconfig::BreakGlassCredential;
use crate::redact;
use journal::Journal;
pub use session::{Person, Session, stamp};

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
