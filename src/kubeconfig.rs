//! The break-glass kubeconfig: built from typed structs (kube's `Kubeconfig`), serialized
//! to YAML only to be piped into sops, and parsed back after decryption.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::fleet::ClusterName;
use crate::redact;

/// What a break-glass kubeconfig holds.
pub struct BreakGlassCredential {
    pub server: String,
    /// PEM bytes of the cluster CA, as the token controller stores them in `ca.crt`.
    pub ca_pem: Vec<u8>,
    pub token: SecretString,
}

impl std::fmt::Debug for BreakGlassCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakGlassCredential")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

pub fn context_name(cluster: &ClusterName) -> String {
    format!("break-glass/{cluster}")
}

fn user_name(cluster: &ClusterName) -> String {
    format!("break-glass@{cluster}")
}

pub fn build(cluster: &ClusterName, cred: &BreakGlassCredential) -> Kubeconfig {
    let context = context_name(cluster);
    Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        clusters: vec![NamedCluster {
            name: cluster.to_string(),
            cluster: Some(Cluster {
                server: Some(cred.server.clone()),
                certificate_authority_data: Some(base64_encode(&cred.ca_pem)),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user_name(cluster),
            auth_info: Some(AuthInfo {
                token: Some(cred.token.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: Some(Context {
                cluster: cluster.to_string(),
                user: Some(user_name(cluster)),
                namespace: Some("kube-system".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(context),
        ..Default::default()
    }
}

/// YAML for sops' stdin; zeroed when dropped.
pub fn to_yaml(config: &Kubeconfig) -> Result<Zeroizing<String>> {
    serde_saphyr::to_string(config)
        .map(Zeroizing::new)
        .map_err(|e| Error::failed(format!("cannot serialize the kubeconfig: {e}")))
}

/// Reads a decrypted break-glass kubeconfig: the current context's server and token.
pub fn parse(yaml: &[u8], origin: &str) -> Result<BreakGlassCredential> {
    let bad =
        |why: String| Error::failed(format!("{origin} does not hold a usable kubeconfig: {why}"));
    let text = std::str::from_utf8(yaml).map_err(|e| bad(e.to_string()))?;
    let config = Kubeconfig::from_yaml(text).map_err(|e| bad(describe(&e)))?;
    let context_name = config
        .current_context
        .clone()
        .ok_or_else(|| bad("no current-context".into()))?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| bad(format!("context {context_name:?} is missing")))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| bad(format!("cluster {:?} is missing", context.cluster)))?;
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("the server URL is empty".into()))?;
    let user = config
        .auth_infos
        .iter()
        .find(|u| Some(&u.name) == context.user.as_ref())
        .and_then(|u| u.auth_info.as_ref());
    let token = user
        .and_then(|u| u.token.clone())
        .filter(|t| !t.expose_secret().is_empty())
        .ok_or_else(|| bad("no token for the context's user".into()))?;
    let ca_pem = match &cluster.certificate_authority_data {
        Some(data) => {
            base64_decode(data).map_err(|e| bad(format!("certificate-authority-data: {e}")))?
        }
        None => Vec::new(),
    };
    Ok(BreakGlassCredential {
        server,
        ca_pem,
        token,
    })
}

/// A load error without its text: the YAML library quotes the document, token included.
pub fn describe(e: &kube::config::KubeconfigError) -> String {
    match e {
        kube::config::KubeconfigError::Parse(e) => redact::yaml_error(e),
        other => redact::untrusted(other.to_string().as_bytes()),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    BASE64_STANDARD
        .decode(text.trim())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse() {
        let name = ClusterName::parse("eu/dc1").unwrap();
        let cred = BreakGlassCredential {
            server: "https://kube-api.example:6443".into(),
            ca_pem: b"-----BEGIN CERTIFICATE-----\nabc\n".to_vec(),
            token: SecretString::from("tok-123"),
        };
        let yaml = to_yaml(&build(&name, &cred)).unwrap();
        assert!(
            yaml.contains("current-context: break-glass/eu/dc1"),
            "{}",
            *yaml
        );
        let back = parse(yaml.as_bytes(), "test").unwrap();
        assert_eq!(back.server, cred.server);
        assert_eq!(back.ca_pem, cred.ca_pem);
        assert_eq!(back.token.expose_secret(), "tok-123");
        assert!(!format!("{back:?}").contains("tok-123"));
    }

    #[test]
    fn parse_errors_never_quote_the_document() {
        let canary = "KDCcanary-token-9f8e7d";
        for yaml in [
            format!(
                "kind: Config\nusers:\n- name: u\n  user:\n    token: {canary}\n    username: [oops]\n"
            ),
            format!(
                "kind: Config\nusers: [{{name: u, user: {{token: {canary}, as: {{x: 1}}}}}}]\n"
            ),
            format!("kind: Config\nusers:\n- name: u\n  user:\n    token: '{canary}\n"),
            format!("kind: Config\nusers: {canary}\n"),
            format!("kind: Config\ncurrent-context: [{canary}]\n"),
            format!(
                "kind: Config\nusers:\n- name: u\n  user:\n    token: {canary}\n    token: dup\n"
            ),
        ] {
            let err = parse(yaml.as_bytes(), "f.yaml").unwrap_err().to_string();
            assert!(
                err.starts_with("f.yaml does not hold a usable kubeconfig: line "),
                "{err}"
            );
            assert!(!err.contains("KDCcanary"), "{yaml}: {err}");
        }
    }

    #[test]
    fn empty_server_is_rejected() {
        let yaml = "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: ''}}]\nusers: [{name: u, user: {token: t}}]\n";
        let err = parse(yaml.as_bytes(), "f.yaml").unwrap_err().to_string();
        assert!(err.contains("server URL is empty"), "{err}");
    }
}
