//! The session recorded in the cluster, with the break-glass credential itself: an Event
//! on the ServiceAccount (`kubectl describe sa break-glass`) and [`ANNOTATION`] with the
//! latest session as JSON, so the apiserver's audit log of the ServiceAccount's actions in
//! that window can be tied to a person.
//!
//! Best effort under one short deadline: the cluster may be too broken to take the record,
//! which is often why the glass is broken. A failure is reported, never fatal.
//!
//! Rotation deletes the ServiceAccount (that is how the token is revoked), and with it the
//! annotation: on purpose, since the rotation's commit message then carries the sessions
//! into Git. Adopt's and rotate's server-side apply (field manager `kube-dc`) does not own
//! the annotation (it is merge-patched by `kube-dc-audit`), so it never removes it.

use std::time::Duration;

use super::session::{Session, stamp};
use crate::cluster::{self, Identity};
use crate::error::{Error, Result};
use crate::fleet::ClusterName;
use crate::kubeconfig::{self, BreakGlassCredential};

/// The annotation on the break-glass ServiceAccount with the latest session.
pub const ANNOTATION: &str = "kube-dc.io/last-session";
pub const STARTED: &str = "BreakGlassSessionStarted";
pub const ENDED: &str = "BreakGlassSessionEnded";
/// The whole record (connect, annotate, Event) gets this long.
pub const DEADLINE: Duration = Duration::from_secs(6);

/// Records the session's start (or its end, once [`Session::finish`]ed).
pub async fn record(
    name: &ClusterName,
    credential: &BreakGlassCredential,
    id: &Identity,
    session: &Session,
) -> Result<()> {
    match tokio::time::timeout(DEADLINE, write(name, credential, id, session)).await {
        Ok(result) => result,
        Err(_) => Err(Error::failed(format!(
            "no answer from the apiserver within {}s",
            DEADLINE.as_secs()
        ))),
    }
}

async fn write(
    name: &ClusterName,
    credential: &BreakGlassCredential,
    id: &Identity,
    session: &Session,
) -> Result<()> {
    let client = cluster::connect_with(kubeconfig::build(name, credential)).await?;
    let value = serde_json::to_string(session)
        .map_err(|e| Error::failed(format!("cannot encode the session record: {e}")))?;
    let uid = cluster::annotate_account(&client, id, ANNOTATION, &value).await?;
    let (reason, message) = match session.end {
        None => (
            STARTED,
            format!(
                "break-glass session started by {} ({}@{}) at {}: {}",
                session.who,
                session.user,
                session.host,
                stamp(session.start),
                session.reason
            ),
        ),
        Some(_) => (
            ENDED,
            format!("break-glass session ended: {}", session.summary()),
        ),
    };
    cluster::account_event(&client, id, uid, reason, &message).await
}

/// The latest session from the ServiceAccount's annotation, if it holds one kube-dc wrote.
pub fn from_annotation(account: &k8s_openapi::api::core::v1::ServiceAccount) -> Option<Session> {
    let value = account.metadata.annotations.as_ref()?.get(ANNOTATION)?;
    serde_json::from_str(value).ok()
}
