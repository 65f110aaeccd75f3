//! adopt and rotate: the steps that mint a break-glass token on a cluster, check it, and
//! seal it into the fleet. Async and free of global state so many clusters can run at
//! once; progress goes through [`Progress`], never straight to the terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use secrecy::{ExposeSecret, SecretString};

use super::interrupt::Interrupts;
use super::rotation_lock;
use super::self_rotation::Stage;
use crate::atomic;
use crate::breakglass;
use crate::cluster::lease::{Lock, WaitPolicy};
use crate::cluster::{self, AdminAccess, Connection, Identity, MintedToken};
use crate::cluster_config::EXTERNAL_URL_KEY;
use crate::error::{Error, Result};
use crate::fleet::{BREAK_GLASS_FILE, Cluster, ClusterName};
use crate::input::ServerUrl;
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::sops::Sops;

/// Set in the environment of a `use` session, with the cluster's name.
pub const SESSION_ENV: &str = "KUBE_DC_BREAK_GLASS";
pub const SESSION_CLUSTER_ENV: &str = "KUBE_DC_BREAK_GLASS_CLUSTER";

/// What happens, step by step, for one cluster.
#[derive(Debug, Clone)]
pub enum Step {
    CheckingFleet,
    Connected {
        server: String,
        context: String,
    },
    Applying,
    Revoking,
    WaitingForToken,
    Verifying {
        server: String,
    },
    VerifySkipped,
    Sealing {
        file: String,
    },
    Warning(String),
    /// A stage of `rotate --via break-glass`, announced before it runs.
    SelfRotation(Stage),
    /// Waiting for the cluster's rotation lock, or taking over one left behind.
    Lock(String),
}

pub trait Progress: Send + Sync {
    fn step(&self, cluster: &ClusterName, step: Step);
}

/// One cluster to adopt or rotate, and how.
pub struct Target {
    pub cluster: Cluster,
    pub access: AdminAccess,
    /// `--server`: the URL to embed, overriding every other source.
    pub server: Option<ServerUrl>,
    pub token_timeout: Duration,
    pub verify: bool,
    pub identity: Identity,
    /// Ctrl-C handling of the run this target belongs to.
    pub interrupts: Interrupts,
    /// What to do when another run holds the cluster's rotation lock.
    pub lock_wait: WaitPolicy,
}

/// What adopt/rotate leave behind, for the summary and the commit message.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub server: String,
    pub secret_uid: String,
}

pub async fn adopt(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Outcome> {
    let name = target.cluster.name();
    let conn = connect(sops, target, progress).await?;
    // The URL is checked before anything touches the cluster, the lock included.
    let server = resolve_server(sops, target, &conn, progress).await?;
    rotation_lock::holding(&conn.client, target, "adopt", progress, async |_| {
        progress.step(name, Step::Applying);
        cluster::apply(&conn.client, &target.identity).await?;
        progress.step(name, Step::WaitingForToken);
        let timeout = target.token_timeout;
        let minted = cluster::wait_for_token(&conn.client, &target.identity, None, timeout).await?;
        finish(sops, target, server, minted, progress).await
    })
    .await
}

/// Revokes the token (deletes its Secret and ServiceAccount), re-applies, waits for a
/// Secret with a new UID and a new token, verifies and seals. Refuses to revoke the
/// credential it is running with.
pub async fn rotate(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Outcome> {
    let name = target.cluster.name();
    refuse_inside_own_session(name)?;
    let conn = connect(sops, target, progress).await?;
    refuse_self_revocation(&conn, target).await?;
    let server = resolve_server(sops, target, &conn, progress).await?;
    rotation_lock::holding(&conn.client, target, "rotate", progress, async |lock| {
        rotate_locked(sops, target, &conn, server, lock, progress).await
    })
    .await
}

/// [`rotate`] once the cluster's rotation lock is ours.
async fn rotate_locked(
    sops: &Sops,
    target: &Target,
    conn: &Connection,
    server: ServerUrl,
    lock: &Lock,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let old = cluster::current_token(&conn.client, &target.identity).await?;
    if let (Some(old), true) = (&old, target.verify) {
        check_server_before_revoking(target, &server, old, progress).await?;
    }
    check_writable(&target.cluster)?;
    lock.confirm().await?;
    // Whether the apiserver confirmed the revocation: a failure while it was being sent
    // (a cut network) may or may not have revoked the token, and must say so.
    let revoked = AtomicBool::new(false);
    let after_revoke = async {
        revoke(&conn.client, target, progress).await?;
        revoked.store(true, Ordering::SeqCst);
        let minted = mint_again(&conn.client, target, old.as_ref(), progress).await?;
        finish(sops, target, server, minted, progress).await
    };
    let stranded = |e| match &old {
        None => e,
        Some(_) => revoked_error(e, target, revoked.load(Ordering::SeqCst)),
    };
    target
        .interrupts
        .after_revoking(target.cluster.name().as_str(), after_revoke, stranded)
        .await
}

/// What the end of a rotation needs from the file system, checked while nothing is
/// revoked: the break-glass file is one the atomic write may replace, and its directory
/// takes a new file.
fn check_writable(cluster: &Cluster) -> Result<()> {
    let stop = |why: &str| {
        Error::failed(format!(
            "rotate stopped before revoking anything: {why}; nothing was changed on cluster {}",
            cluster.name()
        ))
    };
    let dir = cluster.open_dir()?;
    atomic::check_target(&dir, BREAK_GLASS_FILE).map_err(|e| match e.hint() {
        Some(hint) => stop(e.message()).with_hint(hint),
        None => stop(e.message()),
    })?;
    let (_, probe) = dir
        .create_unique(".kube-dc-write-check-", ".tmp")
        .map_err(|e| {
            stop(&format!(
                "cannot create a file in {}: {e}",
                dir.path().display()
            ))
        })?;
    let _ = dir.unlink(std::ffi::OsStr::new(&probe));
    Ok(())
}

/// The fleet side first (nothing touches the cluster if it cannot work), then the admin
/// connection.
async fn connect(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Connection> {
    preflight(sops, target, progress).await?;
    let conn = target.access.connect().await?;
    let step = Step::Connected {
        server: conn.server.clone(),
        context: conn.context.clone(),
    };
    progress.step(target.cluster.name(), step);
    Ok(conn)
}

/// Revokes the token of `target.identity` (Secret and ServiceAccount), re-applies, and
/// waits for a new token, which must differ from `old`.
pub(super) async fn remint(
    client: &Client,
    target: &Target,
    old: Option<&MintedToken>,
    progress: &dyn Progress,
) -> Result<MintedToken> {
    revoke(client, target, progress).await?;
    mint_again(client, target, old, progress).await
}

async fn revoke(client: &Client, target: &Target, progress: &dyn Progress) -> Result<()> {
    progress.step(target.cluster.name(), Step::Revoking);
    cluster::revoke(client, &target.identity).await
}

/// Re-applies after [`revoke`] and waits for a token other than `old`.
async fn mint_again(
    client: &Client,
    target: &Target,
    old: Option<&MintedToken>,
    progress: &dyn Progress,
) -> Result<MintedToken> {
    let name = target.cluster.name();
    progress.step(name, Step::Applying);
    cluster::apply(client, &target.identity).await?;
    progress.step(name, Step::WaitingForToken);
    let old_uid = old.map(|o| o.uid.as_str());
    let minted =
        cluster::wait_for_token(client, &target.identity, old_uid, target.token_timeout).await?;
    if old.is_some_and(|o| o.token.expose_secret() == minted.token.expose_secret()) {
        return Err(Error::failed(
            "the cluster issued the old token again: it was not rotated",
        ));
    }
    Ok(minted)
}

pub(super) async fn finish(
    sops: &Sops,
    target: &Target,
    server: ServerUrl,
    minted: MintedToken,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let name = target.cluster.name();
    let server = server.to_string();
    let credential = BreakGlassCredential {
        server: server.clone(),
        ca_pem: minted.ca_pem,
        token: minted.token,
    };
    if target.verify {
        verify_new(name, &credential, &target.identity, progress).await?;
    } else {
        progress.step(name, Step::VerifySkipped);
    }
    progress.step(
        name,
        Step::Sealing {
            file: target.cluster.break_glass_rel(),
        },
    );
    breakglass::seal(sops, &target.cluster, &credential).await?;
    Ok(Outcome {
        server,
        secret_uid: minted.uid,
    })
}

/// Checks a new credential before it is written: it authenticates as `id` and is
/// cluster-admin.
pub(super) async fn verify_new(
    name: &ClusterName,
    credential: &BreakGlassCredential,
    id: &Identity,
    progress: &dyn Progress,
) -> Result<()> {
    let server = credential.server.clone();
    progress.step(name, Step::Verifying { server });
    let client = verify(name, credential, id).await.map_err(|e| {
        framed(
            e,
            format!("the new kubeconfig for {name} does not work, so it was not written"),
        )
    })?;
    // The apiserver just recorded our check as today's use of the token, and records at
    // most one date a day: without this, a real use later today would not show in
    // `status --live`.
    if let Err(e) = cluster::forget_last_use(&client, id).await {
        let note = format!("could not clear the last-used label after the check: {e}");
        progress.step(name, Step::Warning(note));
    }
    Ok(())
}

/// The fleet side must work before we touch the cluster: a trial encryption of a
/// kubeconfig-shaped document checks sops, the `.sops.yaml` rule and that the rule
/// encrypts the token, without any real credential.
pub(super) async fn preflight(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<()> {
    progress.step(target.cluster.name(), Step::CheckingFleet);
    let probe = BreakGlassCredential {
        server: "https://preflight.invalid".into(),
        ca_pem: Vec::new(),
        token: SecretString::from("preflight-not-a-token"),
    };
    let yaml = kubeconfig::to_yaml(&kubeconfig::build(target.cluster.name(), &probe))?;
    sops.encrypt(&target.cluster.break_glass_rel(), yaml.as_bytes())
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::failed(format!(
                "{e}\nnothing was changed on cluster {}",
                target.cluster.name()
            ))
        })
}

/// `--server`, else `KUBE_API_EXTERNAL_URL`, else the URL in the existing file, else the
/// kube context's server. Whichever it is must be an https URL: the token is sent there.
async fn resolve_server(
    sops: &Sops,
    target: &Target,
    conn: &Connection,
    progress: &dyn Progress,
) -> Result<ServerUrl> {
    let name = target.cluster.name();
    let config_path = target.cluster.config_path();
    let (server, source) = if let Some(flag) = &target.server {
        (flag.clone(), "--server".to_string())
    } else if let Some(configured) = target.cluster.config()?.external_url() {
        let source = format!("{EXTERNAL_URL_KEY} in {}", config_path.display());
        (configured, source)
    } else if let Some(existing) = existing_server(sops, &target.cluster, progress).await? {
        let source = format!("the existing {}", target.cluster.break_glass_rel());
        (existing, source)
    } else {
        let source = format!("the server of kube context {:?}", conn.context);
        let url = ServerUrl::parse(&conn.server).map_err(|why| refused(&source, &why, name))?;
        (url, source)
    };
    if server.is_loopback() {
        let fix = match target.server {
            Some(_) => "pass a --server that other machines can reach".to_string(),
            None if source.starts_with(EXTERNAL_URL_KEY) => {
                format!("change {EXTERNAL_URL_KEY} in {}", config_path.display())
            }
            None => format!(
                "set {EXTERNAL_URL_KEY} in {} or pass --server",
                config_path.display()
            ),
        };
        progress.step(
            name,
            Step::Warning(format!(
                "the server URL {server} ({source}) is a loopback address: the kubeconfig will only work on this machine ({fix})"
            )),
        );
    }
    Ok(server)
}

/// A server URL from `source` that is not fit to receive the token.
pub(super) fn refused(source: &str, why: &str, name: &ClusterName) -> Error {
    Error::usage(format!(
        "{source} is refused as the server URL for cluster {name}: {why}"
    ))
    .with_hint(format!(
        "pass --server https://<host>:<port> or set {EXTERNAL_URL_KEY} in the cluster's cluster-config.env"
    ))
}

/// The server URL of the break-glass file, when there is one that decrypts; an error
/// when that URL is unfit (its text is decrypted content: never quoted).
async fn existing_server(
    sops: &Sops,
    cluster: &Cluster,
    progress: &dyn Progress,
) -> Result<Option<ServerUrl>> {
    if !cluster.break_glass_path().exists() {
        return Ok(None);
    }
    match breakglass::open(sops, cluster).await {
        Ok(existing) => ServerUrl::parse(&existing.server).map(Some).map_err(|why| {
            let source = format!("the server URL in {}", cluster.break_glass_rel());
            refused(&source, &why, cluster.name())
        }),
        Err(e) => {
            let why = e.message().lines().next().unwrap_or_default().to_string();
            progress.step(cluster.name(), Step::Warning(format!("cannot read the server URL from the existing file ({why}); using the kube context's")));
            Ok(None)
        }
    }
}

/// With the kubeconfig itself: it authenticates as the break-glass account and may do
/// everything. Errors say what is wrong; callers say what it means.
async fn verify(
    name: &ClusterName,
    credential: &BreakGlassCredential,
    id: &Identity,
) -> Result<Client> {
    let hint = "if the server URL is not reachable from here, re-run with --no-verify; if the CA is wrong for this URL, fix KUBE_API_EXTERNAL_URL/--server";
    let with_hint = |e: Error| e.with_hint(hint);
    let client = cluster::connect_with(kubeconfig::build(name, credential))
        .await
        .map_err(with_hint)?;
    let user = authenticated(&client).await.map_err(with_hint)?;
    if user != id.username() {
        return Err(Error::failed(format!(
            "it authenticates as {user:?}, not {}",
            id.username()
        )));
    }
    if !cluster::is_cluster_admin(&client)
        .await
        .map_err(with_hint)?
    {
        return Err(Error::failed(format!(
            "{user} is not cluster-admin: the ClusterRoleBinding {} is missing or altered",
            id.binding
        )));
    }
    Ok(client)
}

/// How long a rejection of a token minted a moment ago is retried: the apiserver
/// authenticates it against its cache of ServiceAccounts, which may not have the
/// re-created account yet (seen under load by bench/soak.sh).
const FRESH_TOKEN_GRACE: Duration = Duration::from_secs(10);

/// Who the apiserver says the client is, retrying a rejection for [`FRESH_TOKEN_GRACE`].
async fn authenticated(client: &Client) -> Result<String> {
    let deadline = tokio::time::Instant::now() + FRESH_TOKEN_GRACE;
    while tokio::time::Instant::now() < deadline {
        if let Some(user) = cluster::whoami_unless_rejected(client).await? {
            return Ok(user);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster::whoami(client).await
}

/// Prefixes what a failed check means to the error, keeping its hint.
pub(super) fn framed(e: Error, meaning: String) -> Error {
    let framed = Error::failed(format!("{meaning}: {}", e.message()));
    match e.hint() {
        Some(hint) => framed.with_hint(hint),
        None => framed,
    }
}

/// The verify step runs after the old token is gone; so that an unreachable URL or a
/// wrong CA cannot strand the fleet, try them first with the current token.
async fn check_server_before_revoking(
    target: &Target,
    server: &ServerUrl,
    current: &MintedToken,
    progress: &dyn Progress,
) -> Result<()> {
    let name = target.cluster.name();
    progress.step(
        name,
        Step::Verifying {
            server: server.to_string(),
        },
    );
    let credential = BreakGlassCredential {
        server: server.to_string(),
        ca_pem: current.ca_pem.clone(),
        token: current.token.clone(),
    };
    let meaning = format!(
        "rotate stopped before revoking anything: the current break-glass token of {name} does not work against {server}"
    );
    let frame = |e| framed(e, meaning.clone());
    // A token revoked out of band is rejected (401), yet the answer proves that the URL
    // and CA work, which is what this check is for: go on and replace it.
    let client = cluster::connect_with(kubeconfig::build(name, &credential))
        .await
        .map_err(frame)?;
    if cluster::whoami_unless_rejected(&client)
        .await
        .map_err(frame)?
        .is_none()
    {
        let note = "the apiserver already rejects the current token (revoked out of band?); its URL and CA answered, so rotating";
        progress.step(name, Step::Warning(note.into()));
        return Ok(());
    }
    verify(name, &credential, &target.identity)
        .await
        .map(|_| ())
        .map_err(frame)
}

fn refuse_inside_own_session(name: &ClusterName) -> Result<()> {
    let in_session = std::env::var(SESSION_ENV).is_ok_and(|v| v == "1");
    if in_session && std::env::var(SESSION_CLUSTER_ENV).is_ok_and(|c| c == name.as_str()) {
        return Err(Error::usage(format!(
            "refusing to rotate {name} from inside its own break-glass session: rotating revokes the token this shell is using"
        ))
        .with_hint("exit the break-glass shell, then run rotate with your admin context (--kube-context)"));
    }
    Ok(())
}

async fn refuse_self_revocation(conn: &Connection, target: &Target) -> Result<()> {
    let user = cluster::whoami(&conn.client).await?;
    if user == target.identity.username() {
        return Err(Error::usage(format!(
            "refusing to rotate {}: context {:?} authenticates as {user}, the very token rotate would revoke",
            target.cluster.name(),
            conn.context
        ))
        .with_hint("use an admin context that is not the break-glass account (--kube-context)"));
    }
    Ok(())
}

/// The error of a rotation that failed after (`confirmed`) or while revoking the old token.
fn revoked_error(e: Error, target: &Target, confirmed: bool) -> Error {
    let old_token = match confirmed {
        true => "is ALREADY REVOKED",
        false => "may or may not be revoked (its deletion was sent, not confirmed)",
    };
    let mut command = format!(
        "kube-dc bootstrap break-glass adopt {}",
        target.cluster.name()
    );
    if let Some(kubeconfig) = &target.access.kubeconfig {
        command.push_str(&format!(" --kubeconfig {}", kubeconfig.display()));
    }
    if let Some(context) = &target.access.context {
        command.push_str(&format!(" --kube-context {context}"));
    }
    if let Some(server) = &target.server {
        command.push_str(&format!(" --server {server}"));
    }
    Error::failed(format!(
        "{}\nThe old break-glass token of {} {old_token}, and {} still holds it: {}.",
        e.message(),
        target.cluster.name(),
        target.cluster.break_glass_rel(),
        match confirmed {
            true => "the fleet has no working break-glass credential for this cluster",
            false => "the fleet may have no working break-glass credential for this cluster",
        }
    ))
    .with_hint(format!("once the cause is fixed, recover with:\n  {command}\n(adopt re-reads the current token Secret)"))
}
