//! Many clusters of one fleet on one control plane, as the batch tests and benchmarks
//! place them: each in its own namespace (BREAK_GLASS_NAMESPACE), all reached with the
//! control plane's admin context.
#![allow(dead_code)]

use super::control_plane::ControlPlane;
use super::{TestEnv, show, text};

/// Replaces the fixture's clusters with `c01`..`c<n>`, each with its namespace on the
/// control plane, commits them and adopts each one; returns their names.
pub fn adopt_many(env: &TestEnv, cp: &ControlPlane, n: usize) -> Vec<String> {
    env.git(&["rm", "-rq", "clusters"]);
    let context = text(
        &cp.kubectl(cp.admin_kubeconfig())
            .args(["config", "current-context"])
            .output()
            .unwrap()
            .stdout,
    );
    let names: Vec<String> = (1..=n).map(|i| format!("c{i:02}")).collect();
    for name in &names {
        let dir = env.fleet.join("clusters").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "KUBE_API_EXTERNAL_URL={}\nKUBE_CONTEXT={}\nBREAK_GLASS_NAMESPACE=bg-{name}\n",
            cp.server_url(),
            context.trim()
        );
        std::fs::write(dir.join("cluster-config.env"), config).unwrap();
        create_namespace(cp, &format!("bg-{name}"));
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "clusters on the test control plane"]);
    for name in &names {
        let out = env
            .kube_dc()
            .args(["bootstrap", "break-glass", "adopt", name])
            .args(["--kubeconfig", cp.admin_kubeconfig().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "adopt {name}: {}", show(&out));
    }
    names
}

/// The token the cluster `name` (placed by [`adopt_many`]) holds now.
pub fn live_token(cp: &ControlPlane, name: &str) -> String {
    cp.secret_token(&format!("bg-{name}"), "break-glass-token")
}

/// Creates `namespace` on the control plane unless it exists.
pub fn create_namespace(cp: &ControlPlane, namespace: &str) {
    let out = cp
        .kubectl(cp.admin_kubeconfig())
        .args(["create", "namespace", namespace])
        .output()
        .unwrap();
    assert!(
        out.status.success() || text(&out.stderr).contains("AlreadyExists"),
        "{}",
        show(&out)
    );
}
