//! `--dry-run`: every step an adopt or rotation would take (an admin one, or a
//! self-rotation's stages) and the manifests it would apply; nothing is changed.

use super::progress::Stage;
use super::target::Target;
use crate::cluster::Manifest;
use crate::error::Result;
use crate::git::Action;

/// The plan `--dry-run` prints for an admin adopt or rotate of `target`; connecting is the
/// only thing it does.
pub async fn admin(action: Action, target: &Target) -> Result<String> {
    let id = &target.identity;
    let conn = target.access.connect().await?;
    let rel = target.cluster.break_glass_rel();
    let mut steps = vec![
        format!("check the fleet side: sops and the .sops.yaml rule for {rel}"),
        format!("connect with context {:?} to {}", conn.context, conn.server),
    ];
    let server = planned_server(target, &conn.server);
    if action == Action::Rotate {
        if target.verify {
            steps.push(format!("check {server} and its CA with the current token"));
        }
        steps.push(format!(
            "delete Secret {}/{} and ServiceAccount {} (revokes the current break-glass token)",
            id.namespace, id.secret, id.service_account
        ));
    }
    let manifest = indent(&Manifest::new(id).to_yaml()?);
    steps.push(format!(
        "server-side apply (field manager kube-dc):\n{manifest}"
    ));
    steps.push(format!(
        "wait up to {}s for the token controller to fill data.token and data.ca.crt",
        target.token_timeout.as_secs()
    ));
    if target.verify {
        steps.push(format!(
            "verify the new kubeconfig against {server}: user {} with cluster-admin",
            id.username()
        ));
    }
    steps.push(format!(
        "encrypt it with sops to {rel} (atomic replace), then commit it"
    ));
    let mut plan = format!(
        "dry run: {} {} (nothing will be changed)\n",
        action.as_str(),
        target.cluster.name()
    );
    for (n, step) in steps.iter().enumerate() {
        plan += &format!("{}. {}\n", n + 1, step.trim_end());
    }
    Ok(plan)
}

/// The server a real run would embed, as far as it is known without decrypting.
fn planned_server(target: &Target, context_server: &str) -> String {
    let configured = || target.cluster.config().ok()?.external_url();
    target
        .server
        .clone()
        .or_else(configured)
        .map(|url| url.to_string())
        .unwrap_or_else(|| format!("{context_server} (or the URL in the existing file)"))
}

/// `rotate --via break-glass --dry-run`: the stages and the objects they touch. Nothing is decrypted or contacted.
pub fn self_rotation(target: &Target) -> Result<String> {
    let (id, stand_in) = (&target.identity, target.identity.temporary());
    let file = target.cluster.break_glass_rel();
    let manifest = indent(&Manifest::new(&stand_in).to_yaml()?);
    let details = [
        format!(
            "{file} must authenticate as {} (start at step 2) or as {} (an interrupted run: resume at step 4)",
            id.username(),
            stand_in.username()
        ),
        format!("server-side apply:\n{manifest}"),
        format!("then {file} holds the stand-in's credential"),
        format!(
            "delete Secret {0}/{1} and ServiceAccount {0}/{2}, re-apply them and wait for a new token",
            id.namespace, id.secret, id.service_account
        ),
        format!(
            "check that it authenticates as {} with cluster-admin",
            id.username()
        ),
        format!(
            "delete Secret {0}/{1}, ServiceAccount {0}/{2} and ClusterRoleBinding {3}",
            stand_in.namespace, stand_in.secret, stand_in.service_account, stand_in.binding
        ),
        format!("commit {file}, push as the git flags say"),
    ];
    let mut text = format!(
        "dry run: rotate {} --via break-glass (nothing will be changed)\n",
        target.cluster.name()
    );
    for (stage, detail) in Stage::ALL.iter().zip(details) {
        text += &format!("{stage}\n   {}\n", detail.trim_end());
    }
    Ok(text)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}
