//! `--dry-run` of an admin adopt or rotate: every step it would take, the manifest it
//! would apply, nothing changed.

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

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}
