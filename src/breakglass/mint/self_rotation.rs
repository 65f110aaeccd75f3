//! `rotate --via break-glass`: rotating a cluster's break-glass token with that token
//! itself, so that the fleet repo and the age key are all a maintainer needs.
//!
//! Make-before-break through a stand-in account ([`Identity::temporary`],
//! `break-glass-next`). A legacy token is bound to its ServiceAccount's UID and dies with
//! it, so the stand-in must be another ServiceAccount, not a second Secret of
//! `break-glass`. The break-glass file always holds a working cluster-admin credential:
//! the old token until the stand-in's replaces it (stage 3), the stand-in's until the new
//! token replaces it (stage 5). Every stage after the first works with what the file
//! holds, so what it holds tells a re-run where to pick up:
//!
//! - `break-glass-next`: interrupted in stage 4 or 5; resume at stage 4 (a new token
//!   minted but not yet written is simply revoked again);
//! - `break-glass`: interrupted in stages 1-3 (nothing revoked yet) or 5-7 (the new token
//!   is written); start at stage 2. After 5-7 that rotates once more, which is harmless
//!   and cheaper to explain than telling an old token from a new one.

use kube::Client;

use super::progress::{Progress, Stage, Step};
use super::rotation_lock;
use super::steps::{self, framed};
use super::target::{Outcome, Target};
use crate::breakglass::sealed_file;
use crate::cluster;
use crate::cluster::lease::Lock;
use crate::error::{Error, Result};
use crate::input::ServerUrl;
use crate::kubeconfig;
use crate::shell::quote;
use crate::sops::Sops;

/// Rotates with the credential in the break-glass file, resuming an interrupted run.
/// Stage 7 (the commit) is the caller's.
pub async fn rotate(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<Outcome> {
    let name = target.cluster.name();
    progress.step(name, Step::SelfRotation(Stage::Identify));
    steps::preflight(sops, target, progress).await?;
    let (client, current) = from_file(sops, target).await?;
    let user = cluster::whoami(&client)
        .await
        .map_err(|e| unusable_file(e, target))?;
    let command = "rotate --via break-glass";
    rotation_lock::holding(&client, target, command, progress, async |lock| {
        let server = target.server.clone().unwrap_or(current);
        rotate_locked(sops, target, &client, &user, server, lock, progress).await
    })
    .await
}

/// Stages 2 to 6, once the cluster's rotation lock is ours.
async fn rotate_locked(
    sops: &Sops,
    target: &Target,
    client: &Client,
    user: &str,
    server: ServerUrl,
    lock: &Lock,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let name = target.cluster.name();
    let stand_in = target.identity.temporary();
    if user == stand_in.username() {
        let file = target.cluster.break_glass_rel();
        progress.step(
            name,
            Step::Warning(format!(
                "resuming an interrupted self-rotation: {file} holds the stand-in's credential"
            )),
        );
    } else if user == target.identity.username() {
        swap_in_stand_in(sops, target, client, &server, progress)
            .await
            .map_err(|e| framed(e, "self-rotation stopped before revoking anything".into()))?;
    } else {
        return Err(Error::failed(format!(
            "{} authenticates as {user}, neither {} nor the stand-in {}: refusing to self-rotate",
            target.cluster.break_glass_rel(),
            target.identity.username(),
            stand_in.username()
        ))
        .with_hint(admin_rotation_hint(target)));
    }
    let outcome = replace(sops, target, server, lock, progress)
        .await
        .map_err(|e| stand_in_kept(e, target))?;
    progress.step(name, Step::SelfRotation(Stage::RemoveStandIn));
    remove_stand_in(sops, target, lock)
        .await
        .map_err(|e| stand_in_left(e, target))?;
    Ok(outcome)
}

/// Stages 2 and 3, with the break-glass credential.
async fn swap_in_stand_in(
    sops: &Sops,
    target: &Target,
    client: &Client,
    server: &ServerUrl,
    progress: &dyn Progress,
) -> Result<()> {
    let name = target.cluster.name();
    let stand_in = target.identity.temporary();
    progress.step(name, Step::SelfRotation(Stage::MintStandIn));
    let carried = cluster::Carried::default();
    cluster::apply(client, &stand_in, &carried).await?;
    progress.step(name, Step::WaitingForToken);
    let minted =
        cluster::wait_for_token(client, &stand_in, &carried, None, target.token_timeout).await?;
    progress.step(name, Step::SelfRotation(Stage::SealStandIn));
    let credential = steps::credential(&server.to_string(), &minted);
    steps::verify_new(name, &credential, &stand_in, progress).await?;
    let file = target.cluster.break_glass_rel();
    progress.step(name, Step::Sealing { file });
    sealed_file::seal(sops, &target.cluster, &credential).await
}

/// Stages 4 and 5, with the stand-in's credential from the file.
async fn replace(
    sops: &Sops,
    target: &Target,
    server: ServerUrl,
    lock: &Lock,
    progress: &dyn Progress,
) -> Result<Outcome> {
    progress.step(target.cluster.name(), Step::SelfRotation(Stage::Replace));
    let (client, _) = from_file(sops, target).await?;
    // The lock is renewed with the stand-in's login: the one it was taken with is revoked next.
    lock.use_client(client.clone());
    lock.confirm().await?;
    let old = cluster::current_token(&client, &target.identity).await?;
    let minted = steps::remint(&client, target, old.as_ref(), progress).await?;
    progress.step(target.cluster.name(), Step::SelfRotation(Stage::SealNew));
    steps::finish(sops, target, server, minted, progress).await
}

/// Stage 6, with the new credential from the file.
async fn remove_stand_in(sops: &Sops, target: &Target, lock: &Lock) -> Result<()> {
    let (client, _) = from_file(sops, target).await?;
    lock.use_client(client.clone());
    cluster::remove(&client, &target.identity.temporary()).await
}

/// A client with the credential the break-glass file holds now, and its server URL,
/// which must be fit to receive the token before anything is sent.
async fn from_file(sops: &Sops, target: &Target) -> Result<(Client, ServerUrl)> {
    let credential = sealed_file::open(sops, &target.cluster).await?;
    let server = ServerUrl::parse(&credential.server).map_err(|why| {
        let source = format!("the server URL in {}", target.cluster.break_glass_rel());
        steps::refused(&source, &why, target.cluster.name())
    })?;
    let config = kubeconfig::build(target.cluster.name(), &credential);
    Ok((cluster::connect_with(config).await?, server))
}

fn admin_rotation_hint(target: &Target) -> String {
    format!(
        "rotate with an admin login instead: kube-dc bootstrap break-glass rotate {} --kube-context <admin>",
        quote(target.cluster.name().as_str())
    )
}

fn unusable_file(e: Error, target: &Target) -> Error {
    let meaning = format!(
        "the credential in {} does not work, and self-rotation needs one that does",
        target.cluster.break_glass_rel()
    );
    framed(e, meaning).with_hint(admin_rotation_hint(target))
}

/// After stage 3 the file holds the stand-in's credential, which keeps working.
fn stand_in_kept(e: Error, target: &Target) -> Error {
    framed(
        e,
        format!(
            "self-rotation of {} stopped; {} holds the stand-in's working credential",
            target.cluster.name(),
            target.cluster.break_glass_rel()
        ),
    )
    .with_hint(rerun_hint(target))
}

fn stand_in_left(e: Error, target: &Target) -> Error {
    framed(
        e,
        format!(
            "the new break-glass credential is written to {}, but the stand-in account is still on the cluster",
            target.cluster.break_glass_rel()
        ),
    )
    .with_hint(rerun_hint(target))
}

fn rerun_hint(target: &Target) -> String {
    format!(
        "re-run to finish: kube-dc bootstrap break-glass rotate {} --via break-glass",
        quote(target.cluster.name().as_str())
    )
}

#[cfg(test)]
mod tests {
    use crate::cluster::Identity;

    #[test]
    fn the_stand_in_has_its_own_service_account_binding_and_secret() {
        for namespace in ["kube-system", "bg-beta"] {
            let id = Identity::in_namespace(namespace);
            let stand_in = id.temporary();
            assert_eq!(stand_in.namespace, namespace);
            assert_ne!(stand_in.service_account, id.service_account);
            assert_ne!(stand_in.secret, id.secret);
            assert_ne!(stand_in.binding, id.binding);
            assert_eq!(
                stand_in.username(),
                format!("system:serviceaccount:{namespace}:break-glass-next")
            );
        }
    }
}
