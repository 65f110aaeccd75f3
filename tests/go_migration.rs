//! Moving over from the Go kube-dc tool, with nothing edited: a fleet whose break-glass
//! files that tool wrote (tests/fixtures/go-fleet, scripts/regenerate-go-fixture.sh: its
//! `.sops.yaml` rule for every `*.enc.yaml` encrypts only data/stringData, its clusters
//! `Prod`, `my_cluster` and `region/dc/c1` have no cluster-config.env), and cluster objects
//! labelled and annotated as that tool creates them, applied with kubectl.

mod support;

use std::time::Duration;

use support::control_plane::ControlPlane;
use support::{TestEnv, bg, run_with_stdin, serial, shared_control_plane, show, text};

const GO_CLUSTERS: [&str; 3] = ["Prod", "my_cluster", "region/dc/c1"];
const BG_USER: &str = "system:serviceaccount:kube-system:break-glass";
/// The fields the Go tool encrypts in a break-glass kubeconfig.
const GO_ENCRYPTED_REGEX: &str = "^(token|client-key-data|client-certificate-data|password)$";

#[test]
fn status_use_and_check_take_the_go_written_files_as_they_are() {
    let env = TestEnv::go_fleet();
    // The files are encrypted per the rule the Go tool passes, server in clear.
    for cluster in GO_CLUSTERS {
        let file = std::fs::read_to_string(env.break_glass_file(cluster)).unwrap();
        assert!(file.contains("token: ENC["), "{cluster}: {file}");
        assert!(file.contains(GO_ENCRYPTED_REGEX), "{cluster}: {file}");
    }
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "status", "--all"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // Each says that only the credential fields are encrypted.
    let one = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "status", "my_cluster"])
        .output()
        .unwrap();
    let expected = format!("encrypted_regex: {GO_ENCRYPTED_REGEX}");
    assert!(text(&one.stdout).contains(&expected), "{}", show(&one));
    for cluster in GO_CLUSTERS {
        assert!(
            text(&out.stdout).contains(cluster),
            "{cluster}: {}",
            show(&out)
        );
    }
    let out = env
        .kube_dc()
        .args([
            "bootstrap",
            "break-glass",
            "use",
            "region/dc/c1",
            "--reason",
            "INC-1",
        ])
        .args([
            "--",
            "sh",
            "-c",
            "grep -q 'server: https://kube-api.region-dc-c1' \"$KUBECONFIG\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    // The pre-commit check passes them, staged as the first commit of a repo.
    env.git(&["init", "-q", "-b", "main"]);
    env.git(&["add", "-A"]);
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "check", "--staged"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

/// Labels and the annotation the Go tool puts on the objects (the annotation's text is
/// ours); kubectl client-side apply, as the Go tool applies them.
fn apply_go_objects(cp: &ControlPlane) {
    let labels = "labels: {app.kubernetes.io/managed-by: kube-dc-cli, kube-dc.com/identity-layer: break-glass}";
    let manifest = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: break-glass\n  namespace: kube-system\n  {labels}\n  annotations: {{kube-dc.com/source: created by the Go kube-dc tool}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: break-glass\n  {labels}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\nsubjects: [{{kind: ServiceAccount, name: break-glass, namespace: kube-system}}]\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: break-glass-token\n  namespace: kube-system\n  annotations: {{kubernetes.io/service-account.name: break-glass}}\n  {labels}\ntype: kubernetes.io/service-account-token\n"
    );
    let mut apply = cp.kubectl(cp.admin_kubeconfig());
    apply.args(["apply", "-f", "-"]);
    run_with_stdin(apply, manifest.as_bytes());
}

fn kubectl_get(cp: &ControlPlane, object: &str, jsonpath: &str) -> String {
    let out = cp
        .kubectl(cp.admin_kubeconfig())
        .args(["get", "-n", "kube-system", object, "-o"])
        .arg(format!("jsonpath={jsonpath}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{object}: {}", show(&out));
    text(&out.stdout)
}

fn assert_go_labels(cp: &ControlPlane, when: &str) {
    for object in [
        "serviceaccount/break-glass",
        "clusterrolebinding/break-glass",
        "secret/break-glass-token",
    ] {
        let managed = kubectl_get(
            cp,
            object,
            "{.metadata.labels.app\\.kubernetes\\.io/managed-by}",
        );
        let layer = kubectl_get(
            cp,
            object,
            "{.metadata.labels.kube-dc\\.com/identity-layer}",
        );
        assert_eq!(
            (managed.as_str(), layer.as_str()),
            ("kube-dc-cli", "break-glass"),
            "{when}: {object}"
        );
    }
    let source = kubectl_get(
        cp,
        "serviceaccount/break-glass",
        "{.metadata.annotations.kube-dc\\.com/source}",
    );
    assert_eq!(source, "created by the Go kube-dc tool", "{when}");
}

/// Writes `cluster`'s file as the Go tool does for the live token: its kubeconfig layout
/// (as in the committed fixture) and its --encrypted-regex, with the real sops.
fn write_go_file(env: &TestEnv, cp: &ControlPlane, cluster: &str) {
    let token = cp.secret_token("kube-system", "break-glass-token");
    let ca = std::fs::read(cp.ca_cert()).unwrap();
    let ca = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca);
    let slug = cluster.replace('/', "-");
    let plain = format!(
        "apiVersion: v1\nclusters:\n    - cluster:\n        certificate-authority-data: {ca}\n        server: {server}\n      name: kube-dc-{slug}-break-glass\ncontexts:\n    - context:\n        cluster: kube-dc-{slug}-break-glass\n        user: break-glass@{slug}\n      name: break-glass/{cluster}\ncurrent-context: break-glass/{cluster}\nkind: Config\nusers:\n    - name: break-glass@{slug}\n      user:\n        token: {token}\n",
        server = cp.server_url()
    );
    let rel = format!("clusters/{cluster}/break-glass-kubeconfig.enc.yaml");
    let mut encrypt = env.sops_cmd();
    encrypt.args([
        "encrypt",
        "--encrypted-regex",
        GO_ENCRYPTED_REGEX,
        "--filename-override",
        &rel,
        "--input-type",
        "yaml",
        "--output-type",
        "yaml",
        "/dev/stdin",
    ]);
    let out = run_with_stdin(encrypt, plain.as_bytes());
    std::fs::write(env.fleet.join(&rel), &out.stdout).unwrap();
}

#[test]
fn adopt_rotate_and_self_rotation_keep_the_go_tools_labels() {
    let _serial = serial();
    let cp = shared_control_plane();
    cp.remove_break_glass_objects();
    apply_go_objects(cp);
    support::poll(
        "the token controller to fill the Secret",
        Duration::from_secs(30),
        || {
            cp.secret_field("kube-system", "break-glass-token", "{.data.token}")
                .filter(|t| !t.is_empty())
        },
    );
    let env = TestEnv::go_fleet();
    write_go_file(&env, cp, "Prod");
    let env = env.with_git();
    let admin = ["--kubeconfig", cp.admin_kubeconfig().to_str().unwrap()];
    let server = ["--server", cp.server_url()];

    // Nothing changed: adopt leaves the Go-written file and Git as they are.
    let file = std::fs::read(env.break_glass_file("Prod")).unwrap();
    let head = env.git(&["rev-parse", "HEAD"]);
    let out = bg(
        &env,
        cp,
        &[&["adopt", "Prod"][..], &admin, &server].concat(),
    );
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    assert!(
        text(&out.stdout).contains("already up to date"),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read(env.break_glass_file("Prod")).unwrap(), file);
    assert_eq!(env.git(&["rev-parse", "HEAD"]), head, "adopt committed");
    assert_go_labels(cp, "after adopt");

    // `use` with the Go-written file reaches the cluster as break-glass.
    let out = bg(
        &env,
        cp,
        &[
            "use",
            "Prod",
            "--reason",
            "INC-2",
            "--",
            "kubectl",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stdout).contains(BG_USER), "{}", show(&out));

    // rotate: the old token is revoked, the labels stay.
    let old = env.decrypt_to_file("Prod", "old.kubeconfig");
    let out = bg(
        &env,
        cp,
        &[&["rotate", "Prod"][..], &admin, &server].concat(),
    );
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    cp.assert_rejected(&old);
    let new = env.decrypt_to_file("Prod", "new.kubeconfig");
    assert_eq!(text(&cp.whoami(&new).stdout), BG_USER);
    assert_go_labels(cp, "after rotate");

    // Self-rotation with only the file and the key.
    let out = bg(&env, cp, &["rotate", "Prod", "--via", "break-glass"]);
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    cp.assert_rejected(&new);
    let newest = env.decrypt_to_file("Prod", "newest.kubeconfig");
    assert_eq!(text(&cp.whoami(&newest).stdout), BG_USER);
    assert_go_labels(cp, "after self-rotation");
}
