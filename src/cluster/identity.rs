//! The names of the break-glass objects on a cluster, and the account they make.

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
