//! Which break-glass file lands when our push meets another that changed the same file:
//! a stale clone rotated a cluster that someone else rotated too. The cluster decides:
//! the version whose token the cluster's Secret holds now lands, whole, on top; the other
//! side's commit stays in the history (see `git::sync`). Neither holding it (a rotation
//! under way, or one not committed) stops the push, with our commits kept locally.

use std::collections::BTreeMap;
use std::io::Write;

use super::target::Target;
use crate::breakglass::status::live::TokenDigest;
use crate::cluster::{self, Identity};
use crate::error::{Error, Result};
use crate::git::{Keep, Overlap};
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::sops::Sops;
use crate::ui::Ui;

/// Decides every overlap with its cluster. Runs inside the push, which is synchronous:
/// the cluster is asked on this runtime thread.
pub fn decide_all(
    sops: &Sops,
    targets: &[&Target],
    overlaps: &[Overlap],
    ui: &mut Ui,
) -> Result<BTreeMap<String, Keep>> {
    let handle = tokio::runtime::Handle::current();
    let mut keep = BTreeMap::new();
    for overlap in overlaps {
        let target = targets
            .iter()
            .find(|t| t.cluster.break_glass_rel() == overlap.rel)
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} was changed by the remote's commits and by ours, and is not a break-glass file this run wrote",
                    overlap.rel
                ))
            })?;
        let side = tokio::task::block_in_place(|| handle.block_on(decide(sops, target, overlap)))?;
        let _ = writeln!(ui.err, "{}", said(target, overlap, side));
        keep.insert(overlap.rel.clone(), side);
    }
    Ok(keep)
}

fn said(target: &Target, overlap: &Overlap, side: Keep) -> String {
    let (name, rel, theirs) = (target.cluster.name(), &overlap.rel, &overlap.remote_commit);
    match side {
        Keep::Local => format!(
            "{name}: the remote also changed {rel} ({theirs}), but the cluster holds our token: ours lands on top, theirs stays in the history"
        ),
        Keep::Remote => format!(
            "{name}: the remote's {rel} ({theirs}) holds the token the cluster has now (a later rotation than ours): it stays, our commit of it is dropped"
        ),
    }
}

/// Which side's file holds the token the cluster's Secret holds now.
async fn decide(sops: &Sops, target: &Target, overlap: &Overlap) -> Result<Keep> {
    let name = target.cluster.name();
    let local = credential(sops, &overlap.rel, &overlap.local).await?;
    let remote = credential(sops, &overlap.rel, &overlap.remote).await.ok();
    let live = live_token(name, &target.identity, [Some(&local), remote.as_ref()]).await?;
    if live == TokenDigest::of(&local.token) {
        return Ok(Keep::Local);
    }
    if remote.is_some_and(|r| live == TokenDigest::of(&r.token)) {
        return Ok(Keep::Remote);
    }
    Err(Error::failed(format!(
        "{name}: neither our {} nor the remote's ({}) holds the token the cluster has now (sha256 {}…): not pushed, your commits exist locally",
        overlap.rel,
        overlap.remote_commit,
        live.short()
    ))
    .with_hint(format!(
        "another rotation may be under way or not yet pushed: check `kube-dc bootstrap break-glass status {name} --live`, then rotate {name} again"
    )))
}

async fn credential(sops: &Sops, rel: &str, ciphertext: &[u8]) -> Result<BreakGlassCredential> {
    let plaintext = sops.decrypt(rel, ciphertext).await?;
    kubeconfig::parse(&plaintext, rel)
}

/// The token the cluster's Secret holds, read with the first of the credentials that may
/// read it (both are the cluster's break-glass credentials, one of them maybe revoked).
async fn live_token(
    name: &crate::fleet::ClusterName,
    id: &Identity,
    credentials: [Option<&BreakGlassCredential>; 2],
) -> Result<TokenDigest> {
    let mut last = None;
    for credential in credentials.into_iter().flatten() {
        let read = async {
            let client = cluster::connect_with(kubeconfig::build(name, credential)).await?;
            cluster::current_token(&client, id).await
        };
        match read.await {
            Ok(Some(minted)) => return Ok(TokenDigest::of(&minted.token)),
            Ok(None) => {
                last = Some(Error::failed(format!(
                    "Secret {}/{} holds no token",
                    id.namespace, id.secret
                )))
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map(|e| e.message().to_string()).unwrap_or_default();
    Err(Error::failed(format!(
        "{name}: cannot ask the cluster which break-glass file holds its token ({why}): not pushed, your commits exist locally"
    )))
}
