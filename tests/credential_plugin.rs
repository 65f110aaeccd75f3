//! An admin kubeconfig whose user is an exec credential plugin, against a real control
//! plane: kube-dc runs the plugin itself (under a deadline) and logs in with the client
//! certificate it returns, for adopt and for status --live.

mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use support::control_plane::ControlPlane;
use support::{TestEnv, bg, serial, shared_control_plane, show};

/// The control plane's admin kubeconfig as JSON.
fn admin_config(cp: &ControlPlane) -> Value {
    let yaml = std::fs::read_to_string(cp.admin_kubeconfig()).unwrap();
    serde_saphyr::from_str(&yaml).unwrap()
}

fn pem(config: &Value, field: &str) -> String {
    let data = config["users"][0]["user"][field].as_str().unwrap();
    String::from_utf8(STANDARD.decode(data).unwrap()).unwrap()
}

/// A kubeconfig for the control plane whose user runs a plugin that answers with the
/// admin's client certificate, and records what kube-dc gave it.
fn plugin_kubeconfig(env: &TestEnv, cp: &ControlPlane) -> (PathBuf, PathBuf) {
    let admin = admin_config(cp);
    let dir = env.dir.path();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": pem(&admin, "client-certificate-data"),
            "clientKeyData": pem(&admin, "client-key-data"),
        }
    });
    std::fs::write(dir.join("credential.json"), credential.to_string()).unwrap();
    let seen = dir.join("plugin-saw");
    let plugin = dir.join("plugin.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$FROM_KUBECONFIG\" \"$KUBERNETES_EXEC_INFO\" >> '{}'\ncat '{}'\n",
            seen.display(),
            dir.join("credential.json").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "plugin",
        "contexts": [{"name": "plugin", "context": {"cluster": "cp", "user": "oidc"}}],
        "clusters": [{"name": "cp", "cluster": cluster}],
        "users": [{"name": "oidc", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": plugin,
            "env": [{"name": "FROM_KUBECONFIG", "value": "yes"}],
            "interactiveMode": "Never",
            "provideClusterInfo": true,
        }}}],
    });
    let path = dir.join("plugin.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    (path, seen)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn adopt_and_status_live_log_in_through_an_exec_plugin() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let (kubeconfig, seen) = plugin_kubeconfig(&env, cp);
    let out = bg(
        &env,
        cp,
        &[
            "adopt",
            "beta",
            "--kubeconfig",
            path_arg(&kubeconfig),
            "--server",
            cp.server_url(),
        ],
    );
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    env.break_glass_login(cp, "beta", "beta.kubeconfig");

    let out = bg(
        &env,
        cp,
        &[
            "status",
            "beta",
            "--live",
            "-o",
            "json",
            "--kubeconfig",
            path_arg(&kubeconfig),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Read through the plugin's login: the objects are there and hold the file's token.
    assert_eq!(report["live"]["token_matches"], true, "{}", show(&out));

    let calls = std::fs::read_to_string(&seen).unwrap();
    let server = cp.server_url();
    for call in calls.lines() {
        let (env_value, info) = call.split_once('|').unwrap();
        assert_eq!(env_value, "yes", "{calls}");
        let info: Value = serde_json::from_str(info).unwrap();
        assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(info["kind"], "ExecCredential");
        assert_eq!(info["spec"]["interactive"], false);
        assert_eq!(info["spec"]["cluster"]["server"], server);
        assert!(info["spec"]["cluster"]["certificate-authority-data"].is_string());
    }
    assert_eq!(calls.lines().count(), 2, "one run per command: {calls}");
}
