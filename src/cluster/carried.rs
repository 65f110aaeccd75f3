//! Labels and annotations of the break-glass objects that adopt and rotate must keep.
//!
//! Clusters adopted by the Go kube-dc tool carry its labels
//! (`app.kubernetes.io/managed-by: kube-dc-cli`, `kube-dc.com/identity-layer: break-glass`
//! on all three objects) and its `kube-dc.com/source` annotation (on the ServiceAccount);
//! fleets select the objects by them. Our server-side apply would overwrite the
//! `managed-by` value, and rotation deletes and re-creates the ServiceAccount and Secret,
//! losing the rest. So before either, the kept keys are read from the cluster and applied
//! again with ours: every `kube-dc.com/` label and annotation, and an existing
//! `managed-by` value (we only set ours on objects that have none).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::Api;

use super::api::call;
use super::identity::Identity;
use crate::error::Result;

/// The label whose existing value is kept (ours goes only on objects without one).
pub(super) const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";

/// The kept labels and annotations of each object; empty for objects that do not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    service_account: Kept,
    binding: Kept,
    secret: Kept,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Kept {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl Carried {
    /// Reads the three objects of `id` as the cluster holds them now.
    pub async fn read(client: &Client, id: &Identity) -> Result<Carried> {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &id.namespace);
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &id.namespace);
        let what = |kind: &str, name: &str| format!("reading {kind} {name} (its labels)");
        let account = call(
            &what("ServiceAccount", &id.service_account),
            accounts.get_opt(&id.service_account),
        )
        .await?;
        let binding = call(
            &what("ClusterRoleBinding", &id.binding),
            bindings.get_opt(&id.binding),
        )
        .await?;
        let secret = call(&what("Secret", &id.secret), secrets.get_opt(&id.secret)).await?;
        Ok(Carried {
            service_account: Kept::from(account.map(|o| o.metadata)),
            binding: Kept::from(binding.map(|o| o.metadata)),
            secret: Kept::from(secret.map(|o| o.metadata)),
        })
    }

    /// Puts the kept keys on the metadata of the objects to apply, over ours.
    pub fn onto(
        &self,
        account: &mut ObjectMeta,
        binding: &mut ObjectMeta,
        secret: &mut ObjectMeta,
    ) {
        self.service_account.onto(account);
        self.binding.onto(binding);
        self.secret.onto(secret);
    }
}

impl Kept {
    fn from(meta: Option<ObjectMeta>) -> Kept {
        let meta = meta.unwrap_or_default();
        Kept {
            labels: kept(meta.labels, true),
            annotations: kept(meta.annotations, false),
        }
    }

    fn onto(&self, meta: &mut ObjectMeta) {
        let labels = meta.labels.get_or_insert_default();
        labels.extend(self.labels.clone());
        if !self.annotations.is_empty() {
            let annotations = meta.annotations.get_or_insert_default();
            annotations.extend(self.annotations.clone());
        }
    }
}

fn kept(map: Option<BTreeMap<String, String>>, labels: bool) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key.starts_with("kube-dc.com/") || (labels && key == MANAGED_BY_KEY))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            labels: pairs(labels),
            annotations: pairs(annotations),
            ..Default::default()
        }
    }

    #[test]
    fn the_go_tools_labels_and_annotation_are_kept_over_ours() {
        let go_labels = [
            (MANAGED_BY_KEY, "kube-dc-cli"),
            ("kube-dc.com/identity-layer", "break-glass"),
            ("team", "ops"),
        ];
        let go_annotations = [
            ("kube-dc.com/source", "note"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ];
        let carried = Carried {
            service_account: Kept::from(Some(meta(&go_labels, &go_annotations))),
            binding: Kept::from(Some(meta(&go_labels, &[]))),
            secret: Kept::from(None),
        };
        let ours = [(MANAGED_BY_KEY, "kube-dc")];
        let own_annotation = [("kubernetes.io/service-account.name", "break-glass")];
        let (mut account, mut binding) = (meta(&ours, &[]), meta(&ours, &[]));
        let mut secret = meta(&ours, &own_annotation);
        carried.onto(&mut account, &mut binding, &mut secret);
        let kept_labels = pairs(&go_labels[..2]);
        assert_eq!(account.labels, kept_labels, "only the kept keys, over ours");
        assert_eq!(account.annotations, pairs(&go_annotations[..1]));
        assert_eq!(binding.labels, kept_labels);
        assert_eq!(binding.annotations, pairs(&[]));
        // A new object keeps ours, and its own annotations.
        assert_eq!(secret, meta(&ours, &own_annotation));
    }

    #[test]
    fn nothing_is_carried_from_objects_without_them() {
        let ours = meta(&[(MANAGED_BY_KEY, "kube-dc")], &[]);
        let (mut a, mut b, mut c) = (ours.clone(), ours.clone(), ours.clone());
        Carried::default().onto(&mut a, &mut b, &mut c);
        assert_eq!([a, b, c], [ours.clone(), ours.clone(), ours]);
    }
}
