//! One rotation per cluster at a time, coordinated in the cluster itself: adopt, rotate
//! and self-rotation hold the `coordination.k8s.io/v1` Lease `break-glass-rotation` in the
//! break-glass namespace while they work. Two maintainers (or CI runners) from two clones
//! would otherwise interleave, and one would end with a file holding a token the other
//! revoked.
//!
//! The Lease is taken with optimistic concurrency (create, or replace at the version we
//! read), renewed every [`RENEW_EVERY`], and deleted at the end at the version we wrote.
//! A holder that dies stops renewing, so its Lease expires [`DURATION`] after its last
//! renewal (judged on our clock against the holder's `renewTime`: clocks must agree to
//! within the 20 s between a renewal and the expiry). On the machine (host, boot and PID
//! namespace) that took it, a Lease whose process is gone is taken over at once, so a
//! re-run after a kill -9 does not wait.
//!
//! Over 500 lines with its unit tests (~80): taking, renewing, confirming and releasing
//! share one state and read best as one piece; the code itself is about 530 lines.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::{Client, Error as KubeError};
use serde::{Deserialize, Serialize};

use super::api::call;
use crate::error::{Error, Result};
use crate::process::ProcessId;

/// The Lease's name, in the break-glass namespace.
pub const NAME: &str = "break-glass-rotation";
/// How long a Lease lives without a renewal.
pub const DURATION: Duration = Duration::from_secs(30);
const RENEW_EVERY: Duration = Duration::from_secs(10);
const WAIT_POLL: Duration = Duration::from_secs(1);
/// The holder as JSON ([`HolderRecord`]), for reports and for the dead-process check.
const HOLDER_ANNOTATION: &str = "kube-dc.io/rotation-holder";

/// Who takes the lock, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderRecord {
    /// The fleet repo's Git identity.
    pub who: String,
    pub user: String,
    pub host: String,
    /// `adopt`, `rotate` or `rotate --via break-glass`.
    pub command: String,
    /// `<pid>.<start time>`, as the session files record processes.
    pub process: String,
    /// Host name, boot id and PID namespace: where `process` means something.
    pub machine: String,
}

impl HolderRecord {
    /// This process, for `who`, `user` and `host` as the caller found them.
    pub fn here(who: String, user: String, host: String, command: &str) -> HolderRecord {
        HolderRecord {
            process: ProcessId::current().encode(),
            machine: machine(),
            who,
            user,
            host,
            command: command.into(),
        }
    }

    /// One line for messages: who, where, which process and command.
    pub fn describe(&self) -> String {
        let pid = self.process.split('.').next().unwrap_or_default();
        format!(
            "{} ({}@{}, pid {pid}, {})",
            self.who, self.user, self.host, self.command
        )
    }

    /// Its process ran on this machine and is gone.
    fn is_gone_from_here(&self) -> bool {
        self.machine == machine() && ProcessId::decode(&self.process).is_some_and(|p| !p.is_alive())
    }
}

/// `host/boot id/PID namespace` of this process; a pid means something only within all
/// three (containers on one kernel may share a host name, not a PID namespace).
fn machine() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{host}/{}/{pid_ns}", boot.trim())
}

/// The lock as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    /// The Lease's `holderIdentity`.
    pub holder: String,
    pub since: Option<DateTime<Utc>>,
    pub renewed_at: Option<DateTime<Utc>>,
    /// Past its duration without a renewal: the next run takes it.
    pub expired: bool,
}

impl LockInfo {
    fn of(lease: &Lease, now: Timestamp) -> Option<LockInfo> {
        let spec = lease.spec.as_ref()?;
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
        let time = |t: &Option<MicroTime>| {
            t.as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        };
        Some(LockInfo {
            holder,
            since: time(&spec.acquire_time),
            renewed_at: time(&spec.renew_time),
            expired: expired(spec, now),
        })
    }

    /// "held by X since T (renewed N s ago)".
    pub fn describe(&self) -> String {
        let since = self
            .since
            .map(|t| format!(" since {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        let renewed = self
            .renewed_at
            .map(|t| format!(", renewed {}s ago", (Utc::now() - t).num_seconds().max(0)))
            .unwrap_or_default();
        let expired = if self.expired { ", expired" } else { "" };
        format!("held by {}{since}{renewed}{expired}", self.holder)
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(last) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = spec.lease_duration_seconds.unwrap_or(0).max(0);
    last.0.as_second() + i64::from(duration) <= now.as_second()
}

/// Whether a Lease we read may be taken.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Free,
    Expired,
    HolderGone,
    Held,
}

fn judge(lease: &Lease, now: Timestamp) -> Verdict {
    let Some(spec) = &lease.spec else {
        return Verdict::Free;
    };
    if spec
        .holder_identity
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Verdict::Free;
    }
    if expired(spec, now) {
        return Verdict::Expired;
    }
    match record_of(lease) {
        Some(record) if record.is_gone_from_here() => Verdict::HolderGone,
        _ => Verdict::Held,
    }
}

fn record_of(lease: &Lease) -> Option<HolderRecord> {
    let text = lease
        .metadata
        .annotations
        .as_ref()?
        .get(HOLDER_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// The lock of `namespace` as it is now, for `status --live`; `None` when nobody holds it.
pub async fn inspect(client: &Client, namespace: &str) -> Result<Option<LockInfo>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let what = format!("reading Lease {namespace}/{NAME}");
    let lease = call(&what, leases.get_opt(NAME)).await?;
    Ok(lease.and_then(|l| LockInfo::of(&l, Timestamp::now())))
}

/// What a run does when another holds the lock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitPolicy {
    /// `None`: refuse at once.
    pub up_to: Option<Duration>,
}

/// The held lock. Renewed in the background until [`Lock::release`]; dropping it without
/// releasing stops the renewals and deletes the Lease in the background.
pub struct Lock {
    shared: Arc<Shared>,
    renewer: tokio::task::JoinHandle<()>,
}

/// What the renewer, the owner and an exit path share.
struct Shared {
    namespace: String,
    identity: String,
    state: Mutex<State>,
}

struct State {
    client: Client,
    /// The Lease as we last wrote it: its resourceVersion guards every write.
    lease: Lease,
    /// Why the lock is no longer ours, once it is not.
    lost: Option<String>,
    released: bool,
}

/// A handle that releases the lock from elsewhere (an exit on Ctrl-C).
#[derive(Clone)]
pub struct Releaser(Arc<Shared>);

impl Releaser {
    pub async fn release(&self) -> Result<()> {
        self.0.release().await
    }

    pub fn is_released(&self) -> bool {
        self.0.lock().released
    }
}

/// Something that hears about the wait and the takeover of a dead holder's lock.
pub type Notify<'a> = &'a (dyn Fn(String) + Send + Sync);

impl Lock {
    /// Takes the lock of `namespace` for `holder`, waiting as `wait` says. A lock held by
    /// another is an error naming the holder and since when.
    pub async fn acquire(
        client: &Client,
        namespace: &str,
        holder: &HolderRecord,
        wait: WaitPolicy,
        notify: Notify<'_>,
    ) -> Result<Lock> {
        let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
        let identity = identity(holder);
        let deadline = wait.up_to.map(|d| tokio::time::Instant::now() + d);
        let mut told = false;
        loop {
            let what = format!("reading Lease {namespace}/{NAME}");
            let current = call(&what, leases.get_opt(NAME)).await?;
            let now = Timestamp::now();
            let verdict = current.as_ref().map_or(Verdict::Free, |l| judge(l, now));
            if verdict == Verdict::Held {
                let Some(lease) = current else { continue };
                let info = LockInfo::of(&lease, now);
                let waiting = deadline.is_some_and(|d| tokio::time::Instant::now() < d);
                if !waiting {
                    return Err(held_error(namespace, info.as_ref(), wait));
                }
                if !told {
                    let held = info.map(|i| i.describe()).unwrap_or_default();
                    notify(format!(
                        "waiting for the rotation lock (Lease {namespace}/{NAME}, {held})"
                    ));
                    told = true;
                }
                tokio::time::sleep(WAIT_POLL).await;
                continue;
            }
            if let Some(note) = takeover_note(current.as_ref(), &verdict, now) {
                notify(note);
            }
            let wanted = lease_for(holder, &identity, current.as_ref(), now);
            let what = format!("taking Lease {namespace}/{NAME}");
            let params = PostParams::default();
            let written = match &current {
                None => guarded(&what, leases.create(&params, &wanted)).await?,
                Some(_) => {
                    let replaced = leases.replace(NAME, &params, &wanted);
                    guarded(&what, replaced).await?
                }
            };
            // None: someone else wrote it between our read and our write; look again.
            if let Some(lease) = written {
                return Ok(Lock::hold(client.clone(), namespace, identity, lease));
            }
        }
    }

    fn hold(client: Client, namespace: &str, identity: String, lease: Lease) -> Lock {
        let shared = Arc::new(Shared {
            namespace: namespace.into(),
            identity,
            state: Mutex::new(State {
                client,
                lease,
                lost: None,
                released: false,
            }),
        });
        let renewing = shared.clone();
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                // A failed renewal is retried at the next tick; the Lease outlives two.
                let _ = renewing.renew().await;
            }
        });
        Lock { shared, renewer }
    }

    /// Renews with `client` from now on: self-rotation changes credentials as it goes,
    /// and the one it started with is revoked halfway.
    pub fn use_client(&self, client: Client) {
        self.shared.lock().client = client;
    }

    /// Renews now and fails when the lock is no longer ours: what to check before
    /// revoking a token.
    pub async fn confirm(&self) -> Result<()> {
        self.shared.renew().await
    }

    pub fn releaser(&self) -> Releaser {
        Releaser(self.shared.clone())
    }

    /// Deletes the Lease (only the version we wrote), so the next run need not wait.
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        self.shared.release().await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewer.abort();
        if !self.shared.lock().released {
            let shared = self.shared.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = shared.release().await;
                });
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn api(&self) -> (Api<Lease>, Lease) {
        let state = self.lock();
        let api = Api::namespaced(state.client.clone(), &self.namespace);
        (api, state.lease.clone())
    }

    async fn renew(&self) -> Result<()> {
        if let Some(why) = self.lock().lost.clone() {
            return Err(lost_error(&self.namespace, &why));
        }
        let (api, mut lease) = self.api();
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        let what = format!("renewing Lease {}/{NAME}", self.namespace);
        let params = PostParams::default();
        let replaced = api.replace(NAME, &params, &lease);
        if let Some(written) = guarded(&what, replaced).await? {
            self.lock().lease = written;
            return Ok(());
        }
        let why = self.taken_by().await;
        self.lock().lost = Some(why.clone());
        Err(lost_error(&self.namespace, &why))
    }

    /// Who holds the Lease now that our write was refused.
    async fn taken_by(&self) -> String {
        let (api, _) = self.api();
        match api.get_opt(NAME).await {
            Ok(Some(lease)) => match LockInfo::of(&lease, Timestamp::now()) {
                Some(info) if info.holder != self.identity => {
                    format!("it is {}", info.describe())
                }
                _ => "it changed under us".into(),
            },
            Ok(None) => "it was deleted".into(),
            Err(_) => "it changed under us".into(),
        }
    }

    async fn release(&self) -> Result<()> {
        let (api, lease) = {
            let mut state = self.lock();
            if state.released || state.lost.is_some() {
                return Ok(());
            }
            state.released = true;
            (
                Api::<Lease>::namespaced(state.client.clone(), &self.namespace),
                state.lease.clone(),
            )
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: lease.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        let what = format!("releasing Lease {}/{NAME}", self.namespace);
        // Refused: taken over (we were too slow) or already gone, so not ours to delete.
        guarded(&what, api.delete(NAME, &params)).await.map(|_| ())
    }
}

/// Runs a write; `None` when the apiserver refused it for a conflict (409) or a missing
/// object (404): the Lease is not at the version we wrote.
async fn guarded<T>(what: &str, write: impl Future<Output = kube::Result<T>>) -> Result<Option<T>> {
    let refused = |e: &KubeError| matches!(e, KubeError::Api(s) if s.code == 409 || s.code == 404);
    call(what, async {
        match write.await {
            Ok(value) => Ok(Some(value)),
            Err(e) if refused(&e) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}

/// `holderIdentity`: readable, and unique per acquisition, so that two locks taken by
/// one process (two fleet clusters on one namespace) are told apart.
fn identity(holder: &HolderRecord) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    let n = TAKEN.fetch_add(1, Ordering::Relaxed);
    format!("{} #{nanos:08x}{n}", holder.describe())
}

/// The Lease we write to take the lock: a new one, or `current` at its version.
fn lease_for(
    holder: &HolderRecord,
    identity: &str,
    current: Option<&Lease>,
    now: Timestamp,
) -> Lease {
    let transitions = current
        .and_then(|l| l.spec.as_ref()?.lease_transitions)
        .unwrap_or(0);
    let record = serde_json::to_string(holder).unwrap_or_default();
    let mut metadata = current
        .map(|l| l.metadata.clone())
        .unwrap_or_else(|| ObjectMeta {
            name: Some(NAME.into()),
            ..ObjectMeta::default()
        });
    metadata.managed_fields = None;
    metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(HOLDER_ANNOTATION.into(), record);
    metadata.labels.get_or_insert_with(BTreeMap::new).insert(
        super::objects::MANAGED_BY.0.into(),
        super::objects::MANAGED_BY.1.into(),
    );
    let duration = i32::try_from(DURATION.as_secs()).unwrap_or(30);
    Lease {
        metadata,
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.into()),
            lease_duration_seconds: Some(duration),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions + i32::from(current.is_some())),
            ..LeaseSpec::default()
        }),
    }
}

/// What to say when we take a lock someone else left behind.
fn takeover_note(current: Option<&Lease>, verdict: &Verdict, now: Timestamp) -> Option<String> {
    let info = LockInfo::of(current?, now)?;
    let why = match verdict {
        Verdict::Expired => "it expired (its holder stopped renewing it)",
        Verdict::HolderGone => "its process on this machine is gone",
        Verdict::Free | Verdict::Held => return None,
    };
    Some(format!(
        "taking over the rotation lock {}: {why}",
        info.describe()
    ))
}

fn held_error(namespace: &str, info: Option<&LockInfo>, wait: WaitPolicy) -> Error {
    let held = info
        .map(LockInfo::describe)
        .unwrap_or_else(|| "held".into());
    let waited = match wait.up_to {
        Some(d) => format!(" (waited {}s)", d.as_secs()),
        None => String::new(),
    };
    Error::failed(format!(
        "another rotation is running on this cluster: the lock (Lease {namespace}/{NAME}) is {held}{waited}; nothing was changed"
    ))
    .with_hint(format!(
        "let it finish and re-run, or pass --wait-lock[=DURATION] to wait for it; a lock whose holder died expires {}s after its last renewal",
        DURATION.as_secs()
    ))
}

fn lost_error(namespace: &str, why: &str) -> Error {
    Error::failed(format!(
        "the rotation lock (Lease {namespace}/{NAME}) is no longer ours: {why}"
    ))
    .with_hint("another run may be rotating this cluster: check `status --live`, then re-run")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn held_by(record: &HolderRecord, renewed: i64) -> Lease {
        let mut lease = lease_for(record, &identity(record), None, at(renewed));
        lease.metadata.resource_version = Some("7".into());
        lease
    }

    fn someone_else() -> HolderRecord {
        HolderRecord {
            who: "Ann <ann@example.test>".into(),
            user: "ann".into(),
            host: "elsewhere".into(),
            command: "rotate".into(),
            process: "1.1".into(),
            machine: "elsewhere/boot/pid:[1]".into(),
        }
    }

    #[test]
    fn a_renewed_lock_of_another_machine_is_held_until_it_expires() {
        let lease = held_by(&someone_else(), 0);
        assert_eq!(judge(&lease, at(29)), Verdict::Held);
        assert_eq!(judge(&lease, at(30)), Verdict::Expired);
        let info = LockInfo::of(&lease, at(5)).unwrap();
        assert!(
            info.holder
                .starts_with("Ann <ann@example.test> (ann@elsewhere, pid 1, rotate) #")
        );
        assert!(!info.expired);
    }

    #[test]
    fn a_lock_whose_process_here_is_gone_is_free_at_once_a_live_one_is_not() {
        let host = "this-host".to_string();
        let mine = HolderRecord::here("me".into(), "me".into(), host.clone(), "rotate");
        assert_eq!(judge(&held_by(&mine, 0), at(1)), Verdict::Held);
        let gone = HolderRecord {
            process: "2147483600.1".into(),
            ..mine.clone()
        };
        assert_eq!(judge(&held_by(&gone, 0), at(1)), Verdict::HolderGone);
        // The same pid elsewhere says nothing about the process here.
        let elsewhere = HolderRecord {
            machine: "other".into(),
            ..gone
        };
        assert_eq!(judge(&held_by(&elsewhere, 0), at(1)), Verdict::Held);
    }

    #[test]
    fn an_empty_holder_is_free_and_takeover_counts_transitions() {
        let mut lease = held_by(&someone_else(), 0);
        lease.spec.as_mut().unwrap().holder_identity = Some(String::new());
        assert_eq!(judge(&lease, at(1)), Verdict::Free);
        let next = lease_for(&someone_else(), "x", Some(&lease), at(2));
        assert_eq!(next.spec.unwrap().lease_transitions, Some(1));
        assert_eq!(next.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn the_refusal_names_the_holder_and_since_when() {
        let lease = held_by(&someone_else(), 0);
        let info = LockInfo::of(&lease, at(3)).unwrap();
        let e = held_error("kube-system", Some(&info), WaitPolicy::default());
        assert!(e.message().contains("Ann <ann@example.test>"), "{e}");
        assert!(e.message().contains("since 2027-01-15"), "{e}");
        assert!(
            e.message()
                .contains("Lease kube-system/break-glass-rotation"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("--wait-lock"));
    }
}
