//! adopt and rotate with an admin login: mint a break-glass token on a cluster, check it,
//! and seal it into the fleet. Async and free of global state so many clusters can run at
//! once; progress goes through [`Progress`], never straight to the terminal.

use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::{Progress, Step};
use super::rotation_lock;
use super::steps::{self, framed, refused};
use super::target::{Outcome, Target};
use crate::atomic;
use crate::breakglass::sealed_file;
use crate::breakglass::session::{SESSION_CLUSTER_ENV, SESSION_ENV};
use crate::cluster::lease::Lock;
use crate::cluster::{self, Carried, Connection, MintedToken};
use crate::cluster_config::EXTERNAL_URL_KEY;
use crate::error::{Error, Result, describe_io};
use crate::fleet::{BREAK_GLASS_FILE, Cluster, ClusterName};
use crate::input::ServerUrl;
use crate::kubeconfig;
use crate::shell::quote;
use crate::sops::Sops;

pub async fn adopt(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Outcome> {
    let name = target.cluster.name();
    let conn = connect(sops, target, progress).await?;
    // The URL is checked before anything touches the cluster, the lock included.
    let server = resolve_server(sops, target, &conn, progress).await?;
    rotation_lock::holding(&conn.client, target, "adopt", progress, async |_| {
        progress.step(name, Step::Applying);
        let carried = Carried::read(&conn.client, &target.identity).await?;
        cluster::apply(&conn.client, &target.identity, &carried).await?;
        progress.step(name, Step::WaitingForToken);
        let timeout = target.token_timeout;
        let minted =
            cluster::wait_for_token(&conn.client, &target.identity, &carried, None, timeout)
                .await?;
        let url = server.to_string();
        if super::up_to_date::holds(sops, &target.cluster, &url, &minted).await {
            return Ok(Outcome {
                server: url,
                secret_uid: minted.uid,
                written: false,
            });
        }
        steps::finish(sops, target, server, minted, progress).await
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
        let carried = steps::revoke(&conn.client, target, progress).await?;
        revoked.store(true, Ordering::SeqCst);
        let minted =
            steps::mint_again(&conn.client, target, &carried, old.as_ref(), progress).await?;
        steps::finish(sops, target, server, minted, progress).await
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
/// has room for the new one (a full disk stops the rotation here, not after revoking).
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
    atomic::check_room(&dir, BREAK_GLASS_FILE).map_err(|e| {
        stop(&format!(
            "cannot write a new file in {}: {}",
            dir.path().display(),
            describe_io(&e)
        ))
    })
}

/// The fleet side first (nothing touches the cluster if it cannot work), then the admin
/// connection.
async fn connect(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Connection> {
    steps::preflight(sops, target, progress).await?;
    let conn = target.access.connect().await?;
    let step = Step::Connected {
        server: conn.server.clone(),
        context: conn.context.clone(),
    };
    progress.step(target.cluster.name(), step);
    Ok(conn)
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
    match sealed_file::open(sops, cluster).await {
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
    let credential = steps::credential(&server.to_string(), current);
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
    steps::verify(name, &credential, &target.identity)
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
    let (old_token, fleet) = match confirmed {
        true => ("is ALREADY REVOKED", "has no"),
        false => (
            "may or may not be revoked (its deletion was sent, not confirmed)",
            "may have no",
        ),
    };
    let mut command = format!(
        "kube-dc bootstrap break-glass adopt {}",
        quote(target.cluster.name().as_str())
    );
    if let Some(kubeconfig) = &target.access.kubeconfig {
        let kubeconfig = quote(&kubeconfig.to_string_lossy());
        command.push_str(&format!(" --kubeconfig {kubeconfig}"));
    }
    if let Some(context) = &target.access.context {
        command.push_str(&format!(" --kube-context {}", quote(context)));
    }
    if let Some(server) = &target.server {
        command.push_str(&format!(" --server {}", quote(server.as_str())));
    }
    Error::failed(format!(
        "{}\nThe old break-glass token of {} {old_token}, and {} still holds it: the fleet {fleet} working break-glass credential for this cluster.",
        e.message(),
        target.cluster.name(),
        target.cluster.break_glass_rel()
    ))
    .with_hint(format!("once the cause is fixed, recover with:\n  {command}\n(adopt re-reads the current token Secret)"))
}
