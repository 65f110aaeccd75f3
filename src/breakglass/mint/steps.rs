//! The steps adopt, admin rotation and self-rotation share: the fleet-side preflight,
//! revoking and minting a token, verifying a credential against the cluster and sealing it.

use std::time::Duration;

use kube::Client;
use secrecy::{ExposeSecret, SecretString};

use super::progress::{Progress, Step};
use super::target::{Outcome, Target};
use crate::breakglass::sealed_file;
use crate::cluster::{self, Carried, Identity, MintedToken};
use crate::cluster_config::EXTERNAL_URL_KEY;
use crate::error::{Error, Result};
use crate::fleet::ClusterName;
use crate::input::ServerUrl;
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::sops::Sops;

/// Revokes the token of `target.identity` (Secret and ServiceAccount), re-applies, and
/// waits for a new token, which must differ from `old`.
pub async fn remint(
    client: &Client,
    target: &Target,
    old: Option<&MintedToken>,
    progress: &dyn Progress,
) -> Result<MintedToken> {
    let carried = revoke(client, target, progress).await?;
    mint_again(client, target, &carried, old, progress).await
}

/// Deletes the token Secret and the ServiceAccount of `target.identity`, returning the
/// labels and annotations of other tools (the Go kube-dc) to put back on the new objects.
pub async fn revoke(client: &Client, target: &Target, progress: &dyn Progress) -> Result<Carried> {
    // Read first: the revocation deletes the objects and their labels.
    let carried = Carried::read(client, &target.identity).await?;
    progress.step(target.cluster.name(), Step::Revoking);
    cluster::revoke(client, &target.identity).await?;
    Ok(carried)
}

/// Re-applies after [`revoke`] (with what it carried) and waits for a token other than `old`.
pub async fn mint_again(
    client: &Client,
    target: &Target,
    carried: &Carried,
    old: Option<&MintedToken>,
    progress: &dyn Progress,
) -> Result<MintedToken> {
    let name = target.cluster.name();
    progress.step(name, Step::Applying);
    cluster::apply(client, &target.identity, carried).await?;
    progress.step(name, Step::WaitingForToken);
    let old_uid = old.map(|o| o.uid.as_str());
    let minted = cluster::wait_for_token(
        client,
        &target.identity,
        carried,
        old_uid,
        target.token_timeout,
    )
    .await?;
    if old.is_some_and(|o| o.token.expose_secret() == minted.token.expose_secret()) {
        return Err(Error::failed(
            "the cluster issued the old token again: it was not rotated",
        ));
    }
    Ok(minted)
}

pub async fn finish(
    sops: &Sops,
    target: &Target,
    server: ServerUrl,
    minted: MintedToken,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let name = target.cluster.name();
    let server = server.to_string();
    let credential = credential(&server, &minted);
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
    sealed_file::seal(sops, &target.cluster, &credential).await?;
    Ok(Outcome {
        server,
        secret_uid: minted.uid,
        written: true,
    })
}

/// Checks a new credential before it is written: it authenticates as `id` and is
/// cluster-admin.
pub async fn verify_new(
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

/// The kubeconfig's content for a token the cluster issued, at `server`.
pub fn credential(server: &str, minted: &MintedToken) -> BreakGlassCredential {
    BreakGlassCredential {
        server: server.to_string(),
        ca_pem: minted.ca_pem.clone(),
        token: minted.token.clone(),
    }
}

/// The fleet side must work before we touch the cluster: a trial encryption of a
/// kubeconfig-shaped document checks sops, the `.sops.yaml` rule and that the rule
/// encrypts the token, without any real credential.
pub async fn preflight(sops: &Sops, target: &Target, progress: &dyn Progress) -> Result<()> {
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

/// A server URL from `source` that is not fit to receive the token.
pub fn refused(source: &str, why: &str, name: &ClusterName) -> Error {
    Error::usage(format!(
        "{source} is refused as the server URL for cluster {name}: {why}"
    ))
    .with_hint(format!(
        "pass --server https://<host>:<port> or set {EXTERNAL_URL_KEY} in the cluster's cluster-config.env"
    ))
}

/// With the kubeconfig itself: it authenticates as the break-glass account and may do
/// everything. Errors say what is wrong; callers say what it means.
pub async fn verify(
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
pub fn framed(e: Error, meaning: String) -> Error {
    let framed = Error::failed(format!("{meaning}: {}", e.message()));
    match e.hint() {
        Some(hint) => framed.with_hint(hint),
        None => framed,
    }
}
