//! One cluster to adopt or rotate, how it is reached, and what the run leaves behind.

use std::time::Duration;

use crate::breakglass::interrupt::Interrupts;
use crate::cluster::lease::WaitPolicy;
use crate::cluster::{AdminAccess, Identity};
use crate::error::{Error, Result};
use crate::fleet::Cluster;
use crate::input::ServerUrl;

/// `cluster-config.env` key naming the kube context with admin rights on the cluster.
pub const CONTEXT_KEY: &str = "KUBE_CONTEXT";

/// One cluster to adopt or rotate, and how.
pub struct Target {
    pub cluster: Cluster,
    pub access: AdminAccess,
    /// `--server`: the URL to embed, overriding every other source.
    pub server: Option<ServerUrl>,
    pub token_timeout: Duration,
    pub verify: bool,
    pub identity: Identity,
    /// Ctrl-C handling of the run this target belongs to.
    pub interrupts: Interrupts,
    /// What to do when another run holds the cluster's rotation lock.
    pub lock_wait: WaitPolicy,
}

impl Target {
    /// Reading the cluster's config checks its values (server URL, namespace) before
    /// anything runs.
    pub fn new(
        cluster: Cluster,
        access: AdminAccess,
        server: Option<ServerUrl>,
        token_timeout: Duration,
        verify: bool,
    ) -> Result<Target> {
        let identity = Identity::for_config(&cluster.config()?);
        Ok(Target {
            cluster,
            access,
            server,
            token_timeout,
            verify,
            identity,
            interrupts: Interrupts::default(),
            lock_wait: WaitPolicy::default(),
        })
    }
}

/// What adopt/rotate leave behind, for the summary and the commit message.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub server: String,
    pub secret_uid: String,
    /// False when adopt found the file already up to date and left it untouched.
    pub written: bool,
}

/// `--kube-context` (with `{cluster}` filled in), else `KUBE_CONTEXT` from the cluster's
/// config, else the current context — but only for a single cluster: for many, one
/// current context cannot be right for all, so it is an error rather than a guess.
pub fn admin_context(
    cluster: &Cluster,
    flag: Option<&str>,
    single: bool,
) -> Result<Option<String>> {
    if let Some(template) = flag {
        return Ok(Some(template.replace("{cluster}", cluster.name().as_str())));
    }
    if let Some(context) = cluster.config()?.get(CONTEXT_KEY) {
        return Ok(Some(context.to_string()));
    }
    if single {
        return Ok(None);
    }
    Err(
        Error::usage(format!("no admin context for {}", cluster.name())).with_hint(format!(
            "set {CONTEXT_KEY} in {} or pass --kube-context '{{cluster}}-admin'",
            cluster.config_path().display()
        )),
    )
}
