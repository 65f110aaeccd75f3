//! What a credential is and may do (SelfSubjectReview, SelfSubjectAccessReview), and
//! what the cluster holds for it (`status --live`), read-only but for clearing the
//! last-used label after our own check.

use std::future::Future;

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::api::{call, is_transport};
use super::identity::Identity;
use crate::error::{Error, Result};

/// Why a read for a report failed: one cluster that cannot be reached is a row of the
/// report, told apart from an apiserver that answered with an error.
pub enum ReadFailure {
    /// No answer: connection refused, TLS, DNS, or the deadline passed.
    Unreachable(Error),
    /// The apiserver answered with an error (e.g. forbidden).
    Failed(Error),
}

/// [`call`], telling "no answer" from "answered with an error".
pub(super) async fn read<T>(
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
