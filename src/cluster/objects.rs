//! The three break-glass objects: applied server-side, the token the service-account
//! token controller fills in, revoked by deleting the Secret and the ServiceAccount.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use secrecy::SecretString;

use super::api::{CALL_TIMEOUT, api_error, call};
use super::carried::{Carried, MANAGED_BY_KEY};
use super::checks::{ReadFailure, read};
use super::identity::Identity;
use crate::error::{Error, Result};

pub(super) const FIELD_MANAGER: &str = "kube-dc";
pub(super) const MANAGED_BY: (&str, &str) = (MANAGED_BY_KEY, "kube-dc");
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The token Secret once the token controller has filled it.
pub struct MintedToken {
    pub uid: String,
    pub token: SecretString,
    pub ca_pem: Vec<u8>,
}

pub(super) fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(String::from),
        labels: Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())])),
        ..Default::default()
    }
}

/// The three objects, in the order they must exist: the token controller deletes a token
/// Secret whose ServiceAccount is missing.
pub struct Manifest {
    pub service_account: ServiceAccount,
    pub binding: ClusterRoleBinding,
    pub secret: Secret,
}

impl Manifest {
    pub fn new(id: &Identity) -> Manifest {
        let service_account = ServiceAccount {
            metadata: meta(&id.service_account, Some(&id.namespace)),
            ..Default::default()
        };
        let binding = ClusterRoleBinding {
            metadata: meta(&id.binding, None),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: "cluster-admin".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: id.service_account.clone(),
                namespace: Some(id.namespace.clone()),
                ..Default::default()
            }]),
        };
        let mut secret_meta = meta(&id.secret, Some(&id.namespace));
        secret_meta.annotations = Some(BTreeMap::from([(
            SA_NAME_ANNOTATION.into(),
            id.service_account.clone(),
        )]));
        let secret = Secret {
            metadata: secret_meta,
            type_: Some(TOKEN_SECRET_TYPE.into()),
            ..Default::default()
        };
        Manifest {
            service_account,
            binding,
            secret,
        }
    }

    /// With the labels and annotations `carried` keeps from before, over ours.
    fn carrying(mut self, carried: &Carried) -> Manifest {
        carried.onto(
            &mut self.service_account.metadata,
            &mut self.binding.metadata,
            &mut self.secret.metadata,
        );
        self
    }

    /// Multi-document YAML, for `--dry-run`.
    pub fn to_yaml(&self) -> Result<String> {
        let docs = [
            serde_saphyr::to_string(&self.service_account),
            serde_saphyr::to_string(&self.binding),
            serde_saphyr::to_string(&self.secret),
        ];
        let docs: std::result::Result<Vec<String>, _> = docs.into_iter().collect();
        docs.map(|d| d.join("---\n"))
            .map_err(|e| Error::failed(format!("cannot render the manifest: {e}")))
    }
}

/// Server-side apply of the three objects, ServiceAccount first, with the labels and
/// annotations `carried` keeps from before.
pub async fn apply(client: &Client, id: &Identity, carried: &Carried) -> Result<()> {
    let manifest = Manifest::new(id).carrying(carried);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
    let account = call(
        &format!(
            "applying ServiceAccount {}/{}",
            id.namespace, id.service_account
        ),
        sa.patch(
            &id.service_account,
            &params,
            &Patch::Apply(&manifest.service_account),
        ),
    )
    .await?;
    let crb: Api<ClusterRoleBinding> = Api::all(client.clone());
    call(
        &format!("applying ClusterRoleBinding {}", id.binding),
        crb.patch(&id.binding, &params, &Patch::Apply(&manifest.binding)),
    )
    .await?;
    apply_secret(client, id, manifest.secret, &account).await
}

/// The token Secret, pinned to `account`.
async fn apply_secret(
    client: &Client,
    id: &Identity,
    secret: Secret,
    account: &ServiceAccount,
) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let secret = pinned_to(secret, account);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    call(
        &format!("applying Secret {}/{}", id.namespace, id.secret),
        secrets.patch(&id.secret, &params, &Patch::Apply(&secret)),
    )
    .await?;
    Ok(())
}

/// Applies the token Secret again when it vanished while its token was awaited: the
/// token controller deletes a Secret it takes for orphaned, which it may do when its
/// cache still holds the previous ServiceAccount of the same name (after a revocation
/// cut short). Nothing would ever fill the Secret then.
async fn reapply_secret(client: &Client, id: &Identity, carried: &Carried) -> Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
    let what = format!(
        "reading ServiceAccount {}/{}",
        id.namespace, id.service_account
    );
    let Some(account) = call(&what, accounts.get_opt(&id.service_account)).await? else {
        return Err(Error::failed(format!(
            "ServiceAccount {}/{} was deleted while kube-dc waited for its token (by another tool or person?)",
            id.namespace, id.service_account
        ))
        .with_hint("run the same command again"));
    };
    let secret = Manifest::new(id).carrying(carried).secret;
    apply_secret(client, id, secret, &account).await
}

/// Names the ServiceAccount's UID on its token Secret. Right after a revocation the token
/// controller's cache may still hold the deleted ServiceAccount of the same name; without
/// the UID it signs the token for that one, then deletes the Secret as orphaned.
fn pinned_to(mut secret: Secret, account: &ServiceAccount) -> Secret {
    if let Some(uid) = &account.metadata.uid {
        let annotations = secret.metadata.annotations.get_or_insert_default();
        annotations.insert(SA_UID_ANNOTATION.into(), uid.clone());
    }
    secret
}

/// The token Secret as it is now, if the token controller has filled it.
pub async fn current_token(client: &Client, id: &Identity) -> Result<Option<MintedToken>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    let what = format!("reading Secret {}/{}", id.namespace, id.secret);
    let secret = call(&what, secrets.get_opt(&id.secret)).await?;
    Ok(secret.and_then(filled_token))
}

/// Revokes the break-glass token by deleting its Secret AND its ServiceAccount, and waits
/// until both are gone. Deleting only the Secret is not enough: a legacy token is a JWT
/// over the Secret's name and the ServiceAccount's UID, so a Secret re-created under the
/// same name gets the very same token back.
pub async fn revoke(client: &Client, id: &Identity) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    delete_and_wait(
        &secrets,
        &id.secret,
        &format!("Secret {}/{}", id.namespace, id.secret),
    )
    .await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
    let what = format!("ServiceAccount {}/{}", id.namespace, id.service_account);
    delete_and_wait(&accounts, &id.service_account, &what).await
}

/// Deletes all three objects of `id`: [`revoke`], then its ClusterRoleBinding.
pub async fn remove(client: &Client, id: &Identity) -> Result<()> {
    revoke(client, id).await?;
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let what = format!("ClusterRoleBinding {}", id.binding);
    delete_and_wait(&bindings, &id.binding, &what).await
}

async fn delete_and_wait<K>(api: &Api<K>, name: &str, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deleting = format!("deleting {what}");
    match tokio::time::timeout(CALL_TIMEOUT, api.delete(name, &DeleteParams::background())).await {
        Ok(Ok(_)) => {}
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {}
        Ok(Err(e)) => return Err(api_error(&deleting, e)),
        Err(_) => {
            return Err(Error::failed(format!(
                "{deleting}: no answer within {}s",
                CALL_TIMEOUT.as_secs()
            )));
        }
    }
    let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
    while call(&format!("reading {what}"), api.get_opt(name))
        .await?
        .is_some()
    {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "{what} is still there {}s after its deletion",
                CALL_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

/// Polls until the token controller has filled `token` and `ca.crt` of a token Secret
/// whose UID differs from `previous_uid`; applies the Secret again (with `carried`) if it
/// vanishes meanwhile.
pub async fn wait_for_token(
    client: &Client,
    id: &Identity,
    carried: &Carried,
    previous_uid: Option<&str>,
    timeout: Duration,
) -> Result<MintedToken> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let what = format!("reading Secret {}/{}", id.namespace, id.secret);
        let secret = match read(&what, secrets.get_opt(&id.secret)).await {
            Ok(secret) => secret,
            // An apiserver restarting (an upgrade, a crash) may answer again within the
            // wait: keep polling until its end.
            Err(ReadFailure::Unreachable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(ReadFailure::Unreachable(e) | ReadFailure::Failed(e)) => return Err(e),
        };
        let Some(secret) = secret else {
            reapply_secret(client, id, carried).await?;
            continue;
        };
        if let Some(minted) = filled_token(secret).filter(|m| Some(m.uid.as_str()) != previous_uid)
        {
            return Ok(minted);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "Secret {}/{} was not filled with a token within {}s: the service-account token controller of kube-controller-manager did not fill data.token and data.ca.crt",
                id.namespace,
                id.secret,
                timeout.as_secs()
            ))
            .with_hint("check that kube-controller-manager runs with --service-account-private-key-file and --root-ca-file, or raise --timeout"));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn filled_token(secret: Secret) -> Option<MintedToken> {
    let uid = secret.metadata.uid?;
    let mut data = secret.data?;
    let token = data.remove("token").filter(|t| !t.0.is_empty())?;
    let ca = data.remove("ca.crt").filter(|c| !c.0.is_empty())?;
    let token = String::from_utf8(token.0).ok()?;
    Some(MintedToken {
        uid,
        token: SecretString::from(token),
        ca_pem: ca.0,
    })
}
