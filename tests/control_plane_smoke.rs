//! Smoke test of the test control plane itself: the service-account token controller
//! fills a `kubernetes.io/service-account-token` Secret, the token authenticates with the
//! built kubectl, a user without RBAC rights is forbidden, and nothing is left running.

#[path = "support/control_plane.rs"]
mod control_plane;

use control_plane::{ControlPlane, pid_alive};
use std::fs;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

fn run(cp: &ControlPlane, mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run kubectl: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed: {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            cp.log_tail()
        );
    }
    out
}

fn apply(cp: &ControlPlane, manifest: &str) {
    let mut cmd = cp.kubectl(cp.admin_kubeconfig());
    cmd.args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl apply");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cp.log_tail()
    );
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: smoke
  namespace: default
---
apiVersion: v1
kind: Secret
metadata:
  name: smoke-token
  namespace: default
  annotations:
    kubernetes.io/service-account.name: smoke
type: kubernetes.io/service-account-token
"#;

#[test]
fn token_controller_fills_secret_and_token_authenticates() {
    let cp = ControlPlane::start();
    apply(&cp, MANIFEST);

    // The token controller fills data.token and data.ca.crt.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (token, ca_b64) = loop {
        let mut cmd = cp.kubectl(cp.admin_kubeconfig());
        cmd.args([
            "-n",
            "default",
            "get",
            "secret",
            "smoke-token",
            "-o",
            r#"go-template={{if .data}}{{with index .data "token"}}{{base64decode .}}{{end}} {{index .data "ca.crt"}}{{end}}"#,
        ]);
        let out = run(&cp, cmd, "kubectl get secret smoke-token");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut parts = text.split_whitespace();
        if let (Some(t), Some(ca)) = (parts.next(), parts.next())
            && ca != "<no"
            && !t.is_empty()
        {
            break (t.to_string(), ca.to_string());
        }
        assert!(
            Instant::now() < deadline,
            "the token controller did not fill secret default/smoke-token within 30s (got {text:?})\n{}",
            cp.log_tail()
        );
        sleep(Duration::from_millis(250));
    };
    assert_eq!(token.split('.').count(), 3, "token is not a JWT: {token}");
    let ca_pem = fs::read(cp.ca_cert()).unwrap();
    let ca_text = String::from_utf8_lossy(&ca_pem);
    assert!(ca_text.contains("BEGIN CERTIFICATE"));

    // A kubeconfig that uses only the token and the ca.crt from the Secret.
    let kubeconfig = cp.dir().join("smoke-token.kubeconfig");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {ca_b64}\nusers:\n- name: smoke\n  user:\n    token: {token}\n\
         contexts:\n- name: smoke\n  context:\n    cluster: c\n    user: smoke\n\
         current-context: smoke\n",
        cp.server_url()
    );
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&kubeconfig)
            .unwrap();
        f.write_all(yaml.as_bytes()).unwrap();
    }

    let mut cmd = cp.kubectl(&kubeconfig);
    cmd.args([
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    let out = run(&cp, cmd, "kubectl auth whoami with the token");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "system:serviceaccount:default:smoke"
    );

    // The nobody user is authenticated ...
    let mut cmd = cp.kubectl(cp.nobody_kubeconfig());
    cmd.args([
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    let out = run(&cp, cmd, "kubectl auth whoami as nobody");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "nobody");

    // ... but forbidden.
    let out = cp
        .kubectl(cp.nobody_kubeconfig())
        .args(["get", "secrets", "-n", "kube-system"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nobody could list kube-system secrets"
    );
    assert!(
        stderr.contains("forbidden"),
        "expected 'forbidden', got: {stderr}"
    );
}

#[test]
fn drop_leaves_no_process_running() {
    let cp = ControlPlane::start();
    let dir = cp.dir().to_path_buf();
    let pids = cp.pids().to_vec();
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "watchdog",
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from pids {pids:?}"
        );
    }
    for (name, pid) in &pids {
        assert!(
            pid_alive(*pid),
            "{name} ({pid}) is not running while the control plane is up"
        );
    }
    drop(cp);
    let alive: Vec<_> = pids.iter().filter(|(_, pid)| pid_alive(*pid)).collect();
    assert!(alive.is_empty(), "still running after drop: {alive:?}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
