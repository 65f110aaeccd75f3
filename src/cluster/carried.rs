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

use super::{Identity, MANAGED_BY, Manifest, call};
use crate::error::Result;

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

    /// Puts the kept keys on the manifest's objects, over ours.
    pub fn onto(&self, manifest: &mut Manifest) {
        self.service_account
            .onto(&mut manifest.service_account.metadata);
        self.binding.onto(&mut manifest.binding.metadata);
        self.secret.onto(&mut manifest.secret.metadata);
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
        .filter(|(key, _)| key.starts_with("kube-dc.com/") || (labels && key == MANAGED_BY.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Option<ObjectMeta> {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        Some(ObjectMeta {
            labels: map(labels),
            annotations: map(annotations),
            ..Default::default()
        })
    }

    #[test]
    fn the_go_tools_labels_and_annotation_are_kept_over_ours() {
        let go_labels = [
            ("app.kubernetes.io/managed-by", "kube-dc-cli"),
            ("kube-dc.com/identity-layer", "break-glass"),
            ("team", "ops"),
        ];
        let carried = Carried {
            service_account: Kept::from(meta(
                &go_labels,
                &[
                    ("kube-dc.com/source", "note"),
                    ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                ],
            )),
            binding: Kept::from(meta(&go_labels, &[])),
            secret: Kept::from(None),
        };
        let mut manifest = Manifest::new(&Identity::default());
        carried.onto(&mut manifest);
        let labels = |m: &ObjectMeta| m.labels.clone().unwrap_or_default();
        let sa = &manifest.service_account.metadata;
        assert_eq!(labels(sa)["app.kubernetes.io/managed-by"], "kube-dc-cli");
        assert_eq!(labels(sa)["kube-dc.com/identity-layer"], "break-glass");
        assert!(!labels(sa).contains_key("team"), "only the kept keys");
        let annotations = sa.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["kube-dc.com/source"]
        );
        assert_eq!(
            labels(&manifest.binding.metadata)["app.kubernetes.io/managed-by"],
            "kube-dc-cli"
        );
        // A new object gets ours, and the Secret keeps its own annotations.
        let secret = &manifest.secret.metadata;
        assert_eq!(labels(secret)["app.kubernetes.io/managed-by"], "kube-dc");
        assert!(
            secret
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(super::super::SA_NAME_ANNOTATION))
        );
    }

    #[test]
    fn nothing_is_carried_from_objects_of_our_own() {
        let mut ours = Manifest::new(&Identity::default());
        let before = ours.to_yaml().unwrap();
        Carried::default().onto(&mut ours);
        assert_eq!(ours.to_yaml().unwrap(), before);
    }
}
