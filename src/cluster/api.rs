//! Reaching a cluster: the admin login from a kubeconfig context, a client for a
//! credential, and every API call bounded in time with errors that say what failed
//! (redacted: a credential plugin's output never reaches a message).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{Error, Result};
use crate::{credential_plugin, kubeconfig, redact};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(20);

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
pub(super) async fn call<T>(what: &str, fut: impl Future<Output = kube::Result<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(api_error(what, e)),
        Err(_) => Err(Error::failed(format!(
            "{what}: no answer from the apiserver within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

pub(super) fn api_error(what: &str, e: kube::Error) -> Error {
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
pub(super) fn is_transport(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
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
