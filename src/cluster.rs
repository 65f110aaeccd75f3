//! The Kubernetes side of break-glass, through the `kube` crate: the three objects, the
//! token the service-account token controller fills in, and checks of what a credential
//! can do. Every call is bounded in time so an unreachable apiserver fails, never hangs.

pub mod lease;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::{credential_plugin, kubeconfig, redact};

const FIELD_MANAGER: &str = "kube-dc";
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kube-dc");
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Names of the break-glass objects on a cluster.
#[derive(Debug, Clone)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
    pub secret: String,
    pub binding: String,
}

const DEFAULT_NAMESPACE: &str = "kube-system";

impl Default for Identity {
    fn default() -> Self {
        Identity::in_namespace(DEFAULT_NAMESPACE)
    }
}

impl Identity {
    /// The names used in `namespace`. The ClusterRoleBinding is cluster-wide, so outside
    /// kube-system its name carries the namespace to stay unique.
    pub fn in_namespace(namespace: &str) -> Identity {
        let binding = match namespace {
            DEFAULT_NAMESPACE => "break-glass".to_string(),
            other => format!("break-glass-{other}"),
        };
        Identity {
            namespace: namespace.into(),
            service_account: "break-glass".into(),
            secret: "break-glass-token".into(),
            binding,
        }
    }

    /// The cluster's identity: `BREAK_GLASS_NAMESPACE` from its config (a DNS-1123 label,
    /// checked when the config was read), else kube-system.
    pub fn for_config(config: &crate::cluster_config::ClusterConfig) -> Identity {
        match config.namespace() {
            Some(namespace) => Identity::in_namespace(namespace.as_str()),
            None => Identity::in_namespace(DEFAULT_NAMESPACE),
        }
    }

    /// The user name the apiserver gives the token: what the audit log records.
    pub fn username(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// The stand-in account of self-rotation (`rotate --via break-glass`), with its own
    /// ServiceAccount, binding and token Secret: a legacy token dies with its
    /// ServiceAccount, so a second Secret of `break-glass` could not outlive the revocation.
    pub fn temporary(&self) -> Identity {
        let service_account = format!("{}-next", self.service_account);
        Identity {
            namespace: self.namespace.clone(),
            secret: format!("{service_account}-token"),
            binding: format!("{}-next", self.binding),
            service_account,
        }
    }
}

/// The token Secret once the token controller has filled it.
pub struct MintedToken {
    pub uid: String,
    pub token: SecretString,
    pub ca_pem: Vec<u8>,
}

/// How to reach a cluster as an administrator: a kubeconfig (or the default one) and a
/// context (or its current one).
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
}

/// A connected client and where it points.
pub struct Connection {
    pub client: Client,
    pub server: String,
    pub context: String,
}

impl AdminAccess {
    pub async fn connect(&self) -> Result<Connection> {
        let (mut kubeconfig, origin) = self.load_kubeconfig()?;
        let context = self
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| {
                Error::usage(format!("{origin} has no current-context"))
                    .with_hint("pass --kube-context")
            })?;
        require_context(&kubeconfig, &context, &origin)?;
        credential_plugin::resolve(&mut kubeconfig, &context, &origin).await?;
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                Error::usage(format!(
                    "cannot use context {context:?} of {origin}: {}",
                    kubeconfig::describe(&e)
                ))
            })?;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        Ok(Connection {
            client: client_for(config)?,
            server,
            context,
        })
    }

    fn load_kubeconfig(&self) -> Result<(Kubeconfig, String)> {
        let read = |path: &Path| {
            Kubeconfig::read_from(path).map_err(|e| {
                Error::usage(format!(
                    "cannot read kubeconfig {}: {}",
                    path.display(),
                    kubeconfig::describe(&e)
                ))
            })
        };
        match &self.kubeconfig {
            Some(path) => Ok((read(path)?, path.display().to_string())),
            None => Kubeconfig::read().map(|k| (k, "the default kubeconfig".to_string())).map_err(|e| {
                Error::usage(format!("cannot read the default kubeconfig ($KUBECONFIG or ~/.kube/config): {}", kubeconfig::describe(&e)))
                    .with_hint("pass --kubeconfig <file> and/or --kube-context <context> for an admin login to the cluster")
            }),
        }
    }
}

/// A context that is not in the kubeconfig is named as such (kube would report it as a
/// missing current context).
fn require_context(kubeconfig: &Kubeconfig, context: &str, origin: &str) -> Result<()> {
    if kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Ok(());
    }
    let known: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .take(10)
        .map(|c| c.name.as_str())
        .collect();
    let hint = match known.as_slice() {
        [] => {
            format!("{origin} defines no contexts: pass --kubeconfig <file> with an admin context")
        }
        names => format!("contexts in {origin}: {}", names.join(", ")),
    };
    Err(Error::usage(format!(
        "kube context {} is not in {origin}",
        crate::input::quoted(context)
    ))
    .with_hint(hint))
}

/// A client for a kubeconfig held in memory, e.g. the freshly minted break-glass one.
pub async fn connect_with(kubeconfig: Kubeconfig) -> Result<Client> {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| {
            Error::failed(format!(
                "the minted kubeconfig is not usable: {}",
                kubeconfig::describe(&e)
            ))
        })?;
    client_for(config)
}

fn client_for(mut config: Config) -> Result<Client> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(CALL_TIMEOUT);
    config.write_timeout = Some(CALL_TIMEOUT);
    config.reset_reader_on_write = true;
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    Client::try_from(config).map_err(|e| {
        Error::failed(format!(
            "cannot build a client for {server}: {}",
            error_chain(&e)
        ))
    })
}

/// Runs one API call with an overall deadline, naming what it was doing on failure.
async fn call<T>(what: &str, fut: impl Future<Output = kube::Result<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(api_error(what, e)),
        Err(_) => Err(Error::failed(format!(
            "{what}: no answer from the apiserver within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

fn api_error(what: &str, e: kube::Error) -> Error {
    match &e {
        kube::Error::Api(status) if status.code == 403 => {
            Error::failed(format!("{what}: forbidden: {}", redact::untrusted(status.message.as_bytes())))
                .with_hint("the kube context used must be a cluster admin (e.g. your admin context or RKE2's rke2.yaml)")
        }
        kube::Error::Api(status) if status.code == 401 => {
            Error::failed(format!("{what}: unauthorized (the apiserver rejected the credentials): {}", redact::untrusted(status.message.as_bytes())))
        }
        _ if is_transport(&e) => {
            Error::failed(format!(
                "{what}: cannot reach the apiserver: {}",
                error_chain(&e)
            ))
                .with_hint("check the server URL and that the cluster is reachable from here")
        }
        _ => Error::failed(format!("{what}: {}", error_chain(&e))),
    }
}

/// The request never got an answer: connection refused, TLS, DNS.
fn is_transport(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// Why a read for a report failed: one cluster that cannot be reached is a row of the
/// report, told apart from an apiserver that answered with an error.
pub enum ReadFailure {
    /// No answer: connection refused, TLS, DNS, or the deadline passed.
    Unreachable(Error),
    /// The apiserver answered with an error (e.g. forbidden).
    Failed(Error),
}

/// [`call`], telling "no answer" from "answered with an error".
async fn read<T>(
    what: &str,
    fut: impl Future<Output = kube::Result<T>>,
) -> std::result::Result<T, ReadFailure> {
    let mut answered = false;
    let outcome = call(what, async {
        let result = fut.await;
        answered = !matches!(&result, Err(e) if is_transport(e));
        result
    })
    .await;
    outcome.map_err(|e| match answered {
        true => ReadFailure::Failed(e),
        false => ReadFailure::Unreachable(e),
    })
}

/// The break-glass ServiceAccount and token Secret as the cluster holds them now.
pub struct LiveObjects {
    pub service_account: Option<ServiceAccount>,
    pub secret: Option<Secret>,
}

/// Reads the ServiceAccount and the token Secret of `id`, changing nothing.
pub async fn read_objects(
    client: &Client,
    id: &Identity,
) -> std::result::Result<LiveObjects, ReadFailure> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
    let what = format!(
        "reading ServiceAccount {}/{}",
        id.namespace, id.service_account
    );
    let service_account = read(&what, accounts.get_opt(&id.service_account)).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    let what = format!("reading Secret {}/{}", id.namespace, id.secret);
    let secret = read(&what, secrets.get_opt(&id.secret)).await?;
    Ok(LiveObjects {
        service_account,
        secret,
    })
}

/// "a: b: c" from an error and its sources (hyper's top-level text alone says little),
/// redacted and bounded: kube's errors can carry a credential plugin's output.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    redact::untrusted(text.as_bytes())
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
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

/// Server-side apply of the three objects, ServiceAccount first.
pub async fn apply(client: &Client, id: &Identity) -> Result<()> {
    let manifest = Manifest::new(id);
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
    let secret = pinned_to(manifest.secret, &account);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    call(
        &format!("applying Secret {}/{}", id.namespace, id.secret),
        secrets.patch(&id.secret, &params, &Patch::Apply(&secret)),
    )
    .await?;
    Ok(())
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
/// whose UID differs from `previous_uid`.
pub async fn wait_for_token(
    client: &Client,
    id: &Identity,
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
        if let Some(minted) = secret
            .and_then(filled_token)
            .filter(|m| Some(m.uid.as_str()) != previous_uid)
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

/// The label the apiserver puts on a Secret-based token's Secret when the token is used.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";

/// Removes [`LAST_USED_LABEL`] from the token Secret, so the next use is recorded anew.
pub async fn forget_last_use(client: &Client, id: &Identity) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
    let patch = serde_json::json!({ "metadata": { "labels": { LAST_USED_LABEL: null } } });
    let what = format!(
        "clearing {LAST_USED_LABEL} on Secret {}/{}",
        id.namespace, id.secret
    );
    call(
        &what,
        secrets.patch(&id.secret, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    .map(|_| ())
}

/// Who the apiserver says the client is.
pub async fn whoami(client: &Client) -> Result<String> {
    whoami_unless_rejected(client).await?.ok_or_else(|| {
        Error::failed(
            "asking the apiserver who we are (SelfSubjectReview): unauthorized (the apiserver rejected the credentials)",
        )
    })
}

/// As [`whoami`], but `None` when the apiserver rejects the credential (401): the URL,
/// the CA and the apiserver worked, only the token did not.
pub async fn whoami_unless_rejected(client: &Client) -> Result<Option<String>> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let asked = async {
        match reviews
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
        {
            Ok(review) => Ok(Some(review)),
            Err(kube::Error::Api(status)) if status.code == 401 => Ok(None),
            Err(e) => Err(e),
        }
    };
    let Some(review) = call("asking the apiserver who we are (SelfSubjectReview)", asked).await?
    else {
        return Ok(None);
    };
    let user = review
        .status
        .and_then(|s: SelfSubjectReviewStatus| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| {
            Error::failed("the apiserver returned a SelfSubjectReview without a user name")
        })?;
    Ok(Some(user))
}

/// Whether the client may do everything (`*` on `*`): cluster-admin.
pub async fn is_cluster_admin(client: &Client) -> Result<bool> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("*".into()),
                group: Some("*".into()),
                resource: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = call(
        "checking cluster-admin rights (SelfSubjectAccessReview)",
        reviews.create(&PostParams::default(), &review),
    )
    .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Field manager of the session annotation: not [`FIELD_MANAGER`], so the server-side
/// apply of adopt and rotate never takes it over or removes it.
const AUDIT_FIELD_MANAGER: &str = "kube-dc-audit";

/// Sets `key` on the ServiceAccount of `id` to `value` with a merge patch, returning the
/// account's UID (for an Event that names it).
pub async fn annotate_account(
    client: &Client,
    id: &Identity,
    key: &str,
    value: &str,
) -> Result<Option<String>> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
    let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
    let params = PatchParams {
        field_manager: Some(AUDIT_FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let what = format!(
        "annotating ServiceAccount {}/{}",
        id.namespace, id.service_account
    );
    let account = call(
        &what,
        accounts.patch(&id.service_account, &params, &Patch::Merge(&patch)),
    )
    .await?;
    Ok(account.metadata.uid)
}

/// Creates a core/v1 Event about the ServiceAccount of `id` (shown by `kubectl describe`).
pub async fn account_event(
    client: &Client,
    id: &Identity,
    uid: Option<String>,
    reason: &str,
    message: &str,
) -> Result<()> {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", id.service_account)),
            namespace: Some(id.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ServiceAccount".into()),
            name: Some(id.service_account.clone()),
            namespace: Some(id.namespace.clone()),
            uid,
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some("Warning".into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some(FIELD_MANAGER.into()),
            host: None,
        }),
        ..Event::default()
    };
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), &id.namespace);
    let what = format!(
        "creating an Event on ServiceAccount {}/{}",
        id.namespace, id.service_account
    );
    call(&what, events.create(&PostParams::default(), &event))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_are_redacted_and_bounded() {
        let plugin_output = format!(
            "auth exec command failed: {{\"status\":{{\"token\":\"KDCcanary-1\"}}}}\n{}",
            "more\n".repeat(500)
        );
        let e = std::io::Error::other(plugin_output);
        let text = error_chain(&e);
        assert!(!text.contains("KDCcanary"), "{text}");
        assert!(
            text.lines().count() <= crate::redact::MAX_LINES + 1,
            "{text}"
        );
    }
}
