//! Exec credential plugins (`users[].user.exec` in an admin kubeconfig, e.g. kubelogin,
//! `aws eks get-token`), run by kube-dc before kube sees the kubeconfig. kube would run
//! them without a deadline (a plugin waiting for a dead identity provider hangs kube-dc)
//! and quote their whole output in its errors. Here a plugin runs under a deadline with
//! bounded output; its answer becomes a plain token or client certificate, and a failure
//! names the command and exit status and shows its redacted stderr, never its stdout.
//!
//! What the plugin sees follows client-go: the kubeconfig's `env` on top of ours,
//! `KUBERNETES_EXEC_INFO` (an `ExecCredential` with `spec.interactive` and, with
//! `provideClusterInfo`, `spec.cluster`), stdin only when interactive.

use std::io::IsTerminal;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use kube::config::{
    AuthInfo, ExecAuthCluster, ExecConfig, ExecInteractiveMode, Kubeconfig, NamedCluster,
};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::redact;
use crate::subprocess::{self, Ended, Finished, Limits};

/// Enough for a token refresh against a slow identity provider.
const DEADLINE: Duration = Duration::from_secs(30);
/// A person at the terminal may have to log in in a browser first.
const INTERACTIVE_DEADLINE: Duration = Duration::from_secs(120);
const LIMITS: Limits = Limits {
    stdout: 1 << 20,
    stderr: 64 << 10,
};
const API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];
const EXEC_INFO_ENV: &str = "KUBERNETES_EXEC_INFO";

/// Runs the exec plugin of `context`'s user, if kube would, and puts its credential in
/// place of the `exec` entry. A context or user that does not exist is left to kube.
pub async fn resolve(kubeconfig: &mut Kubeconfig, context: &str, origin: &str) -> Result<()> {
    let Some(ctx) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
    else {
        return Ok(());
    };
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .cloned();
    let Some(user) = ctx.user else {
        return Ok(());
    };
    let Some(auth) = kubeconfig
        .auth_infos
        .iter_mut()
        .find(|u| u.name == user)
        .and_then(|u| u.auth_info.as_mut())
    else {
        return Ok(());
    };
    refuse_provider_commands(auth, &user, origin)?;
    let Some(exec) = auth.exec.take() else {
        return Ok(());
    };
    if has_other_credential(auth) {
        return Ok(()); // kube prefers those and would never run the plugin
    }
    let plugin = Plugin {
        exec: &exec,
        user: &user,
        origin,
    };
    plugin.run(cluster.as_ref()).await?.apply(auth);
    Ok(())
}

/// The `gcp` auth-provider runs `cmd-path` with no deadline inside kube; kubectl dropped
/// it in 1.26 for the `gke-gcloud-auth-plugin` exec plugin.
fn refuse_provider_commands(auth: &AuthInfo, user: &str, origin: &str) -> Result<()> {
    match &auth.auth_provider {
        Some(p) if p.name == "gcp" && p.config.contains_key("cmd-path") => Err(Error::usage(
            format!("user {user:?} of {origin} uses the gcp auth-provider with cmd-path, which kube-dc does not run"),
        )
        .with_hint("use the exec plugin gke-gcloud-auth-plugin instead (as kubectl >= 1.26 requires)")),
        _ => Ok(()),
    }
}

/// kube's order: auth-provider, basic auth, token, token file, then exec.
fn has_other_credential(auth: &AuthInfo) -> bool {
    auth.auth_provider.is_some()
        || (auth.username.is_some() && auth.password.is_some())
        || auth.token.is_some()
        || auth.token_file.is_some()
}

struct Plugin<'a> {
    exec: &'a ExecConfig,
    user: &'a str,
    origin: &'a str,
}

/// What a plugin answered, in `status`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    api_version: Option<String>,
    kind: Option<String>,
    status: Option<AnswerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

enum Credential {
    Token(SecretString),
    Certificate {
        cert_pem: String,
        key_pem: SecretString,
    },
}

impl Credential {
    fn apply(self, auth: &mut AuthInfo) {
        match self {
            Credential::Token(token) => auth.token = Some(token),
            Credential::Certificate { cert_pem, key_pem } => {
                use secrecy::ExposeSecret;
                auth.client_certificate_data = Some(BASE64_STANDARD.encode(cert_pem));
                auth.client_key_data = Some(SecretString::from(
                    BASE64_STANDARD.encode(key_pem.expose_secret()),
                ));
            }
        }
    }
}

impl Plugin<'_> {
    async fn run(&self, cluster: Option<&NamedCluster>) -> Result<Credential> {
        let command = self.exec.command.as_deref().filter(|c| !c.is_empty());
        let command = command.ok_or_else(|| {
            Error::usage(format!(
                "user {:?} of {}: exec has no command",
                self.user, self.origin
            ))
        })?;
        let api_version = self.api_version()?;
        let interactive = self.interactive()?;
        let info = self.exec_info(api_version, interactive, cluster)?;
        let mut cmd = Command::new(command);
        subprocess::dies_with_us(cmd.as_std_mut());
        cmd.args(self.exec.args.iter().flatten())
            .envs(self.env())
            .env(EXEC_INFO_ENV, info)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if interactive {
            cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            // Its own process group, so the deadline kills whatever it started too.
            cmd.stdin(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0);
        }
        let child = cmd.spawn().map_err(|e| self.not_started(&e))?;
        let deadline = if interactive {
            INTERACTIVE_DEADLINE
        } else {
            DEADLINE
        };
        let ended = subprocess::collect(child, None, LIMITS, deadline)
            .await
            .map_err(|e| Error::failed(format!("{}: {e}", self.name())))?;
        match ended {
            Ended::TimedOut { stderr } => Err(Error::failed(format!(
                "{} did not finish within {}s and was stopped; it said:\n{}",
                self.name(),
                deadline.as_secs(),
                self.said(&stderr, interactive)
            ))
            .with_hint(
                "the plugin may be waiting for an unreachable identity provider or for input; pass --kubeconfig/--kube-context for an admin login that does not need it",
            )),
            Ended::Finished(out) => self.answer(&out, api_version, interactive),
        }
    }

    fn name(&self) -> String {
        let command = self.exec.command.as_deref().unwrap_or_default();
        format!(
            "credential plugin `{}` (user {:?} of {})",
            redact::untrusted(command.as_bytes()),
            self.user,
            self.origin
        )
    }

    fn said(&self, stderr: &[u8], interactive: bool) -> String {
        match interactive {
            true => "  (its output went to the terminal)".into(),
            false => redact::block(stderr),
        }
    }

    fn api_version(&self) -> Result<&str> {
        let version = self.exec.api_version.as_deref().unwrap_or_default();
        API_VERSIONS
            .contains(&version)
            .then_some(version)
            .ok_or_else(|| {
                Error::usage(format!(
                    "user {:?} of {}: exec apiVersion {:?} is not supported",
                    self.user,
                    self.origin,
                    redact::untrusted(version.as_bytes())
                ))
                .with_hint(format!("use {}", API_VERSIONS.join(" or ")))
            })
    }

    /// client-go's rule: `Never` is never, `IfAvailable` (the default) when stdin is a
    /// terminal, `Always` requires one.
    fn interactive(&self) -> Result<bool> {
        let terminal = std::io::stdin().is_terminal();
        match self.exec.interactive_mode {
            Some(ExecInteractiveMode::Never) => Ok(false),
            Some(ExecInteractiveMode::Always) if !terminal => Err(Error::usage(format!(
                "{} needs a terminal (interactiveMode: Always) but stdin is not one",
                self.name()
            ))),
            _ => Ok(terminal),
        }
    }

    fn exec_info(
        &self,
        api_version: &str,
        interactive: bool,
        cluster: Option<&NamedCluster>,
    ) -> Result<String> {
        let mut spec = serde_json::Map::new();
        spec.insert("interactive".into(), interactive.into());
        if self.exec.provide_cluster_info {
            let cluster = cluster.and_then(|c| c.cluster.as_ref()).ok_or_else(|| {
                Error::usage(format!(
                    "{} wants the cluster's details (provideClusterInfo) but the context has no cluster",
                    self.name()
                ))
            })?;
            let info = ExecAuthCluster::try_from(cluster).map_err(|e| {
                Error::usage(format!(
                    "{}: cannot pass the cluster's details: {}",
                    self.name(),
                    crate::kubeconfig::describe(&e)
                ))
            })?;
            let info = serde_json::to_value(info)
                .map_err(|e| Error::failed(format!("{}: {e}", self.name())))?;
            spec.insert("cluster".into(), info);
        }
        let info = serde_json::json!({
            "apiVersion": api_version,
            "kind": "ExecCredential",
            "spec": spec,
        });
        Ok(info.to_string())
    }

    fn env(&self) -> impl Iterator<Item = (&String, &String)> {
        self.exec
            .env
            .iter()
            .flatten()
            .filter_map(|pair| Some((pair.get("name")?, pair.get("value")?)))
    }

    fn not_started(&self, e: &std::io::Error) -> Error {
        let hint = match &self.exec.install_hint {
            Some(hint) => redact::untrusted(hint.as_bytes()),
            None => "install it, put it on PATH, or fix the kubeconfig's exec.command".into(),
        };
        Error::failed(format!("cannot run {}: {e}", self.name())).with_hint(hint)
    }

    /// The credential in the plugin's stdout, which is never quoted.
    fn answer(&self, out: &Finished, api_version: &str, interactive: bool) -> Result<Credential> {
        let bad = |why: String| {
            Error::failed(format!("{} {why}", self.name())).with_hint(
                "run the plugin by hand to see what it prints; it must print an ExecCredential with status.token or a client certificate",
            )
        };
        if !out.status.success() {
            let how = match out.status.code() {
                Some(code) => format!("exit code {code}"),
                None => "a signal".into(),
            };
            return Err(Error::failed(format!(
                "{} failed with {how}; it said:\n{}",
                self.name(),
                self.said(&out.stderr, interactive)
            )));
        }
        if out.stdout_cut {
            return Err(bad(format!(
                "printed more than {} KiB, which is no ExecCredential",
                LIMITS.stdout >> 10
            )));
        }
        let answer: Answer = serde_saphyr::from_slice(&out.stdout).map_err(|e| {
            bad(format!(
                "printed no ExecCredential JSON ({})",
                redact::yaml_error(&e)
            ))
        })?;
        if answer.kind.as_deref() != Some("ExecCredential") {
            return Err(bad(
                "printed something that is not an ExecCredential (kind)".into(),
            ));
        }
        if answer.api_version.as_deref() != Some(api_version) {
            return Err(bad(format!(
                "answered with another apiVersion than the kubeconfig's {api_version}"
            )));
        }
        let status = answer
            .status
            .ok_or_else(|| bad("returned no status".into()))?;
        match (
            status.token,
            status.client_certificate_data,
            status.client_key_data,
        ) {
            (_, Some(cert_pem), Some(key)) if !cert_pem.is_empty() && !key.is_empty() => {
                Ok(Credential::Certificate {
                    cert_pem,
                    key_pem: SecretString::from(key),
                })
            }
            (Some(token), _, _) if !token.is_empty() => {
                Ok(Credential::Token(SecretString::from(token)))
            }
            _ => Err(bad(
                "returned neither status.token nor clientCertificateData with clientKeyData".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const CANARY: &str = "KDCcanary-plugin-token-0123456789";

    fn kubeconfig(script: &str, extra: &str) -> Kubeconfig {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{{name: c, context: {{cluster: k, user: u}}}}]\nclusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:1', certificate-authority-data: Q0E=}}}}]\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: ['-c', {script:?}]\n      env: [{{name: PLUGIN_SECRET, value: from-env}}]\n      interactiveMode: Never\n{extra}"
        );
        Kubeconfig::from_yaml(&yaml).unwrap()
    }

    async fn resolved(script: &str, extra: &str) -> Result<AuthInfo> {
        let mut config = kubeconfig(script, extra);
        resolve(&mut config, "c", "test.yaml").await?;
        Ok(config.auth_infos[0].auth_info.clone().unwrap())
    }

    fn answer(status: &str) -> String {
        format!(
            "printf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{status}}}'"
        )
    }

    #[tokio::test]
    async fn token_replaces_exec() {
        let auth = resolved(&answer(&format!("{{\"token\":\"{CANARY}\"}}")), "")
            .await
            .unwrap();
        assert!(auth.exec.is_none());
        assert_eq!(auth.token.unwrap().expose_secret(), CANARY);
    }

    #[tokio::test]
    async fn client_certificate_replaces_exec() {
        let status = r#"{"clientCertificateData":"-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n","clientKeyData":"KEY"}"#;
        let auth = resolved(&answer(status), "").await.unwrap();
        let cert = BASE64_STANDARD
            .decode(auth.client_certificate_data.unwrap())
            .unwrap();
        assert!(cert.starts_with(b"-----BEGIN CERTIFICATE-----\n"));
        let key = auth.client_key_data.unwrap();
        assert_eq!(key.expose_secret(), BASE64_STANDARD.encode("KEY"));
    }

    #[tokio::test]
    async fn plugin_sees_env_and_exec_info() {
        // The plugin answers with what it was given, as its token.
        let script = r#"printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s|%s"}}' "$PLUGIN_SECRET" "$(printf %s "$KUBERNETES_EXEC_INFO" | tr -d '"')""#;
        let extra = "      provideClusterInfo: true\n";
        let auth = resolved(script, extra).await.unwrap();
        let token = auth.token.unwrap().expose_secret().to_string();
        assert_eq!(
            token,
            "from-env|{apiVersion:client.authentication.k8s.io/v1,kind:ExecCredential,spec:{cluster:{certificate-authority-data:Q0EK,server:https://127.0.0.1:1},interactive:false}}"
        );
    }

    #[tokio::test]
    async fn failures_never_show_stdout_and_show_stderr_redacted() {
        let script = format!(
            "echo '{{\"status\":{{\"token\":\"{CANARY}\"}}}}'; echo 'oidc down; token: {CANARY}' >&2; exit 7"
        );
        let err = resolved(&script, "").await.unwrap_err().to_string();
        assert!(err.contains("credential plugin `sh`"), "{err}");
        assert!(err.contains("exit code 7"), "{err}");
        assert!(err.contains("oidc down; token: [hidden]"), "{err}");
        assert!(!err.contains("KDCcanary"), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_wrong_answers_are_described_not_quoted() {
        for (script, says) in [
            (
                format!("echo 'token: [{CANARY}'"),
                "printed no ExecCredential JSON (line",
            ),
            (
                format!("echo '{CANARY}'"),
                "printed no ExecCredential JSON (line 1",
            ),
            (
                format!("echo '{{\"token\": \"{CANARY}\"}}'"),
                "is not an ExecCredential",
            ),
            (
                format!(
                    "printf '{{\"apiVersion\":\"v9\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{CANARY}\"}}}}'"
                ),
                "another apiVersion",
            ),
            (answer("{}"), "neither status.token"),
            (
                "head -c 2000000 /dev/zero".to_string(),
                "more than 1024 KiB",
            ),
        ] {
            let err = resolved(&script, "").await.unwrap_err().to_string();
            assert!(err.contains(says), "{script}: {err}");
            assert!(!err.contains("KDCcanary"), "{err}");
        }
    }

    #[tokio::test]
    async fn other_credentials_win_and_bad_configs_are_usage_errors() {
        let auth = resolved("exit 1", "    token: static\n").await.unwrap();
        assert_eq!(auth.token.unwrap().expose_secret(), "static");
        let mut config = kubeconfig("exit 0", "");
        let exec = config.auth_infos[0]
            .auth_info
            .as_mut()
            .unwrap()
            .exec
            .as_mut()
            .unwrap();
        exec.api_version = Some("client.authentication.k8s.io/v1alpha1".into());
        let err = resolve(&mut config, "c", "k.yaml").await.unwrap_err();
        assert_eq!(err.exit(), crate::error::Exit::Usage);
        assert!(err.message().contains("v1alpha1"), "{err}");
    }
}
