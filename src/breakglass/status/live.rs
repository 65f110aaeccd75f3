//! `status --live`: what each cluster holds for its break-glass credential, compared with
//! the fleet file. Opt-in because it contacts every cluster; it only reads.
//!
//! When a Secret-based token authenticates, the apiserver labels its Secret
//! `kubernetes.io/legacy-token-last-used: YYYY-MM-DD` (UTC), skipping the write when the
//! label already says today (or tomorrow): one date per day. adopt and rotate use the new
//! token once, to verify it, just before they encrypt the file, and then clear the label
//! (see `mint::steps::verify_new`). For files written otherwise, the time of the apiserver's
//! write (its managedFields entry for the label), compared with the file's sops
//! `lastmodified`, tells that check from a later use.
//!
//! Over 500 lines with its unit tests (~120); the code itself is under 400.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::breakglass::audit::{Session, record};
use crate::breakglass::mint::admin_context;
use crate::cluster::lease::{self, LockInfo};
use crate::cluster::{self, AdminAccess, Identity, LAST_USED_LABEL, LiveObjects, ReadFailure};
use crate::error::Error;
use crate::fleet::Cluster;

const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// Clusters looked up at once: a connection and two reads each, mostly waiting.
const LIVE_JOBS: usize = 8;

/// SHA-256 of a token: compared in full, shown only as a short prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &SecretString) -> TokenDigest {
        TokenDigest(Sha256::digest(token.expose_secret().as_bytes()).into())
    }

    /// The first 4 bytes in hex: enough to tell tokens apart in a report, nothing more.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}…", self.short())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    /// The file holds the cluster's token and no use after the file was written is recorded.
    UnusedSinceRotation,
    UsedSinceRotation,
    /// The cluster holds another token than the file.
    Stale,
    /// The file's token cannot work any more: objects gone or the token marked invalid.
    Revoked,
    Unreachable,
    NoAdminContext,
    Error,
}

impl LiveState {
    pub fn label(self) -> &'static str {
        match self {
            LiveState::UnusedSinceRotation => "unused since rotation",
            LiveState::UsedSinceRotation => "used since last rotation",
            LiveState::Stale => "stale: file differs from the cluster's token",
            LiveState::Revoked => "revoked",
            LiveState::Unreachable => "unreachable",
            LiveState::NoAdminContext => "no admin context",
            LiveState::Error => "error",
        }
    }
}

/// One cluster's live facts, as `status --live` reports them.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    pub state: LiveState,
    /// The reason in words; for `unreachable`, `no_admin_context` and `error`, the error.
    pub message: String,
    /// The admin kube context used (`null` when none could be chosen).
    pub context: Option<String>,
    pub service_account_exists: Option<bool>,
    pub secret_exists: Option<bool>,
    pub secret_uid: Option<String>,
    pub token_matches: Option<bool>,
    pub file_token_sha256_prefix: String,
    pub cluster_token_sha256_prefix: Option<String>,
    /// The `kubernetes.io/legacy-token-last-used` label: a UTC date, `YYYY-MM-DD`.
    pub last_used: Option<String>,
    /// When the apiserver wrote that label (its managedFields entry).
    pub last_used_recorded_at: Option<DateTime<Utc>>,
    pub invalid_since: Option<String>,
    /// sops' `lastmodified` of the file: when it got its token.
    pub file_written_at: Option<DateTime<Utc>>,
    /// The latest `use` session, from the ServiceAccount's annotation (see `audit::record`).
    pub last_session: Option<Session>,
    /// The cluster's rotation lock, while a run holds it (`null` when free).
    pub rotation_lock: Option<LockInfo>,
}

/// What to look up for one cluster.
pub struct Query {
    pub cluster: Cluster,
    pub file_token: TokenDigest,
    pub file_written_at: Option<DateTime<Utc>>,
}

/// How to reach the clusters: as `rotate` does (`--kube-context`, `KUBE_CONTEXT`, and the
/// current context only when `single`).
#[derive(Debug, Clone)]
pub struct Access {
    pub kube_context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub single: bool,
}

/// Looks up every query, [`LIVE_JOBS`] at a time; each answer keeps its query's index.
/// A cluster that fails is a row with its error, never a failure of the report.
pub async fn inspect_all(queries: Vec<(usize, Query)>, access: Access) -> Vec<(usize, LiveStatus)> {
    let access = Arc::new(access);
    let permits = Arc::new(Semaphore::new(LIVE_JOBS));
    let mut tasks = JoinSet::new();
    for (i, query) in queries {
        let (access, permits) = (access.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, inspect(&query, &access).await)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        // A panicked lookup is a bug; losing its row silently would hide it.
        answers.push(joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    answers
}

async fn inspect(query: &Query, access: &Access) -> LiveStatus {
    let mut live = LiveStatus::unknown(query);
    let cluster = &query.cluster;
    let context = match admin_context(cluster, access.kube_context.as_deref(), access.single) {
        Ok(context) => context,
        Err(e) => return live.failed(LiveState::NoAdminContext, &e),
    };
    live.context.clone_from(&context);
    let identity = match cluster.config() {
        Ok(config) => Identity::for_config(&config),
        Err(e) => return live.failed(LiveState::Error, &e),
    };
    let admin = AdminAccess {
        kubeconfig: access.kubeconfig.clone(),
        context,
    };
    let conn = match admin.connect().await {
        Ok(conn) => conn,
        Err(e) => return live.failed(LiveState::Error, &e),
    };
    live.context = Some(conn.context);
    let live = match cluster::read_objects(&conn.client, &identity).await {
        Ok(objects) => live.observe(&Observed::from(objects), &identity, query),
        Err(ReadFailure::Unreachable(e)) => return live.failed(LiveState::Unreachable, &e),
        Err(ReadFailure::Failed(e)) => return live.failed(LiveState::Error, &e),
    };
    // Extra information: a login that may not read Leases still gets its report, which
    // says that it does not know whether a rotation is under way.
    match lease::inspect(&conn.client, &identity.namespace).await {
        Ok(lock) => live.locked(lock),
        Err(e) => live.lock_unknown(&e),
    }
}

impl LiveStatus {
    fn unknown(query: &Query) -> LiveStatus {
        LiveStatus {
            state: LiveState::Error,
            message: String::new(),
            context: None,
            service_account_exists: None,
            secret_exists: None,
            secret_uid: None,
            token_matches: None,
            file_token_sha256_prefix: query.file_token.short(),
            cluster_token_sha256_prefix: None,
            last_used: None,
            last_used_recorded_at: None,
            invalid_since: None,
            file_written_at: query.file_written_at,
            last_session: None,
            rotation_lock: None,
        }
    }

    /// A held lock means a rotation is under way: what the cluster holds may be about to
    /// change, and the message says so.
    fn locked(mut self, lock: Option<LockInfo>) -> LiveStatus {
        if let Some(lock) = lock.as_ref().filter(|l| !l.expired) {
            self.message = format!(
                "{}; a rotation is under way: its lock is {}",
                self.message,
                lock.describe()
            );
        }
        self.rotation_lock = lock;
        self
    }

    fn lock_unknown(mut self, e: &Error) -> LiveStatus {
        self.message = format!(
            "{}; whether a rotation is under way is unknown: {}",
            self.message,
            e.message()
        );
        self
    }

    fn failed(mut self, state: LiveState, e: &Error) -> LiveStatus {
        self.state = state;
        self.message = e.to_string();
        self
    }

    fn observe(mut self, observed: &Observed, id: &Identity, query: &Query) -> LiveStatus {
        self.service_account_exists = Some(observed.service_account_uid.is_some());
        self.secret_exists = Some(observed.secret.is_some());
        if let Some(secret) = &observed.secret {
            self.secret_uid.clone_from(&secret.uid);
            self.cluster_token_sha256_prefix = secret.token.as_ref().map(TokenDigest::short);
            self.token_matches = secret.token.as_ref().map(|t| *t == query.file_token);
            self.last_used.clone_from(&secret.last_used);
            self.last_used_recorded_at = secret.last_used_recorded_at;
            self.invalid_since.clone_from(&secret.invalid_since);
        }
        (self.state, self.message) =
            verdict(observed, id, &query.file_token, query.file_written_at);
        self.last_session.clone_from(&observed.last_session);
        if let (LiveState::UsedSinceRotation, Some(session)) = (self.state, &self.last_session) {
            // The annotation is the cluster's word: shown redacted and bounded.
            let shown = crate::redact::untrusted(session.summary().as_bytes());
            self.message = format!("{}; last session: {shown}", self.message);
        }
        self
    }
}

/// The objects reduced to what the verdict needs.
#[derive(Debug, Default)]
struct Observed {
    /// `None`: the ServiceAccount does not exist.
    service_account_uid: Option<String>,
    secret: Option<SecretFacts>,
    /// From the ServiceAccount's session annotation.
    last_session: Option<Session>,
}

#[derive(Debug, Default)]
struct SecretFacts {
    uid: Option<String>,
    /// `None`: the token controller has not filled (or has emptied) the Secret.
    token: Option<TokenDigest>,
    /// The UID of the ServiceAccount the token was minted for.
    owner_uid: Option<String>,
    last_used: Option<String>,
    last_used_recorded_at: Option<DateTime<Utc>>,
    invalid_since: Option<String>,
}

impl From<LiveObjects> for Observed {
    fn from(objects: LiveObjects) -> Observed {
        Observed {
            last_session: objects
                .service_account
                .as_ref()
                .and_then(record::from_annotation),
            service_account_uid: objects
                .service_account
                .map(|sa: ServiceAccount| sa.metadata.uid.unwrap_or_default()),
            secret: objects.secret.map(secret_facts),
        }
    }
}

fn secret_facts(secret: Secret) -> SecretFacts {
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .filter(|t| !t.0.is_empty())
        .and_then(|t| String::from_utf8(t.0.clone()).ok())
        .map(|t| TokenDigest::of(&SecretString::from(t)));
    let label = |key: &str| secret.metadata.labels.as_ref()?.get(key).cloned();
    SecretFacts {
        token,
        owner_uid: secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SA_UID_ANNOTATION).cloned()),
        last_used: label(LAST_USED_LABEL),
        invalid_since: label(INVALID_SINCE_LABEL),
        last_used_recorded_at: label_written_at(&secret, LAST_USED_LABEL),
        uid: secret.metadata.uid,
    }
}

/// When a label was last written, from the managedFields entry that owns it.
fn label_written_at(secret: &Secret, key: &str) -> Option<DateTime<Utc>> {
    let field = format!("f:{key}");
    secret
        .metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|entry| {
            entry.fields_v1.as_ref().is_some_and(|f| {
                f.0.get("f:metadata")
                    .and_then(|m| m.get("f:labels"))
                    .and_then(|l| l.get(&field))
                    .is_some()
            })
        })
        .filter_map(|entry| DateTime::from_timestamp(entry.time.as_ref()?.0.as_second(), 0))
        .max()
}

/// The live state of one cluster and why.
fn verdict(
    observed: &Observed,
    id: &Identity,
    file_token: &TokenDigest,
    file_written_at: Option<DateTime<Utc>>,
) -> (LiveState, String) {
    let revoked = |why: String| (LiveState::Revoked, why);
    let Some(sa_uid) = &observed.service_account_uid else {
        return revoked(format!(
            "ServiceAccount {}/{} does not exist",
            id.namespace, id.service_account
        ));
    };
    let Some(secret) = &observed.secret else {
        return revoked(format!(
            "Secret {}/{} does not exist",
            id.namespace, id.secret
        ));
    };
    let Some(token) = &secret.token else {
        return revoked(format!(
            "Secret {}/{} holds no token",
            id.namespace, id.secret
        ));
    };
    if let Some(since) = &secret.invalid_since {
        return revoked(format!(
            "the apiserver rejects the token: {INVALID_SINCE_LABEL}={since}"
        ));
    }
    if secret
        .owner_uid
        .as_ref()
        .is_some_and(|owner| owner != sa_uid)
    {
        return revoked(format!(
            "ServiceAccount {}/{} was re-created: the token belongs to its predecessor",
            id.namespace, id.service_account
        ));
    }
    if token != file_token {
        return (
            LiveState::Stale,
            format!(
                "the cluster holds another token (sha256 {}…) than the file (sha256 {}…)",
                token.short(),
                file_token.short()
            ),
        );
    }
    usage(secret, file_written_at)
}

/// Used or unused since the file was written, from the last-used label.
fn usage(secret: &SecretFacts, file_written_at: Option<DateTime<Utc>>) -> (LiveState, String) {
    let Some(date) = &secret.last_used else {
        return (
            LiveState::UnusedSinceRotation,
            "no use recorded by the apiserver".into(),
        );
    };
    let Some(written) = file_written_at else {
        // Without the file's time, any recorded use may be a real one.
        return (
            LiveState::UsedSinceRotation,
            format!("last used {date}; when the file was written is unknown"),
        );
    };
    let after = match secret.last_used_recorded_at {
        Some(recorded) => recorded > written,
        None => NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_or(true, |day| day > written.date_naive()),
    };
    if after {
        return (
            LiveState::UsedSinceRotation,
            format!(
                "used on {date}, after the file was written ({})",
                written.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        );
    }
    (
        LiveState::UnusedSinceRotation,
        format!("last use recorded {date}, before the file was written"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(token: &str) -> TokenDigest {
        TokenDigest::of(&SecretString::from(token.to_string()))
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn observed(secret: SecretFacts) -> Observed {
        Observed {
            service_account_uid: Some("sa-1".into()),
            secret: Some(secret),
            last_session: None,
        }
    }

    fn holding(token: &str) -> SecretFacts {
        SecretFacts {
            uid: Some("secret-1".into()),
            token: Some(digest(token)),
            owner_uid: Some("sa-1".into()),
            ..Default::default()
        }
    }

    fn state(observed: &Observed, written: Option<&str>) -> LiveState {
        verdict(
            observed,
            &Identity::default(),
            &digest("t1"),
            written.map(at),
        )
        .0
    }

    const WRITTEN: Option<&str> = Some("2026-11-26T10:00:05Z");

    #[test]
    fn digests_compare_in_full_and_show_a_prefix() {
        assert_eq!(digest("t1"), digest("t1"));
        assert_ne!(digest("t1"), digest("t2"));
        assert_eq!(digest("t1").short().len(), 8);
        assert!(!format!("{:?}", digest("t1")).contains("t1"));
    }

    #[test]
    fn missing_objects_or_an_invalid_token_are_revoked() {
        let mut no_sa = observed(holding("t1"));
        no_sa.service_account_uid = None;
        assert_eq!(state(&no_sa, WRITTEN), LiveState::Revoked);
        let no_secret = Observed {
            service_account_uid: Some("sa-1".into()),
            secret: None,
            last_session: None,
        };
        assert_eq!(state(&no_secret, WRITTEN), LiveState::Revoked);
        let empty = observed(SecretFacts {
            token: None,
            ..holding("t1")
        });
        assert_eq!(state(&empty, WRITTEN), LiveState::Revoked);
        let invalid = observed(SecretFacts {
            invalid_since: Some("2026-11-20".into()),
            ..holding("t1")
        });
        assert_eq!(state(&invalid, WRITTEN), LiveState::Revoked);
        let orphan = observed(SecretFacts {
            owner_uid: Some("sa-0".into()),
            ..holding("t1")
        });
        assert_eq!(state(&orphan, WRITTEN), LiveState::Revoked);
    }

    #[test]
    fn another_token_on_the_cluster_is_stale() {
        assert_eq!(state(&observed(holding("t2")), WRITTEN), LiveState::Stale);
    }

    #[test]
    fn a_label_written_after_the_file_is_a_use() {
        let used = |date: &str, recorded: Option<&str>, written| {
            let secret = SecretFacts {
                last_used: Some(date.into()),
                last_used_recorded_at: recorded.map(at),
                ..holding("t1")
            };
            state(&observed(secret), written)
        };
        assert_eq!(
            state(&observed(holding("t1")), WRITTEN),
            LiveState::UnusedSinceRotation
        );
        // adopt's own check, seconds before the file was encrypted
        let check = Some("2026-11-26T10:00:04Z");
        assert_eq!(
            used("2026-11-26", check, WRITTEN),
            LiveState::UnusedSinceRotation
        );
        let later = Some("2026-11-26T10:00:06Z");
        assert_eq!(
            used("2026-11-26", later, WRITTEN),
            LiveState::UsedSinceRotation
        );
        // no managedFields time: only a later day counts
        assert_eq!(
            used("2026-11-26", None, WRITTEN),
            LiveState::UnusedSinceRotation
        );
        assert_eq!(
            used("2026-11-27", None, WRITTEN),
            LiveState::UsedSinceRotation
        );
        assert_eq!(
            used("2026-11-26", check, None),
            LiveState::UsedSinceRotation
        );
    }
}
