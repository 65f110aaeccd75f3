//! The cluster's record of a `use` session: the ServiceAccount's annotation and an Event
//! on it, written with the break-glass credential itself.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::api::call;
use super::identity::Identity;
use super::objects::FIELD_MANAGER;
use crate::error::Result;

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
