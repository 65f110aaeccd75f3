//! Secrets in error text: decrypted content, sops' output and credential plugins' output
//! never reach kube-dc's output unless redacted and bounded, and misbehaving sops and
//! plugins cost bounded time. Every hostile text carries a canary, which the harness
//! looks for in all output.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Case, Scene, run_table};
use crate::inputs::bg;
use crate::support::canary::{MARKER, OTHER, TOKEN};

/// The token planted in hostile plaintexts: the fixture's canary JWT behind the marker.
/// The marker of TOKEN is at its end, and the YAML library shortens the lines it quotes
/// to 80 characters: a quote of TOKEN shows its start but not the marker.
const PLANTED: &str = "KDCcanary-planted.eyJhbGciOiJSUzI1NiIsImtpZCI6ImNhbmFyeSJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.KDCcanary-fixture-token-not-a-credential";

#[test]
fn the_planted_token_shows_its_marker_first() {
    assert!(PLANTED.starts_with(MARKER) && PLANTED.ends_with(TOKEN));
}

const BG: &str = "clusters/alpha/break-glass-kubeconfig.enc.yaml";
/// The deadline kube-dc gives sops and credential plugins, plus room to start and report.
const PAST_DEADLINE: Duration = Duration::from_secs(50);

/// A kubeconfig for alpha whose `users[0].user` holds the canary token and `extra` lines.
fn kubeconfig_with(extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: 'https://127.0.0.1:6443'}}\nusers:\n- name: u\n  user:\n    token: {PLANTED}\n{extra}"
    )
}

/// `plaintext` encrypted for the fleet path `rel` by the real sops with the fixture's
/// .sops.yaml and key.
pub fn sops_encrypted(s: &Scene, rel: &str, plaintext: &str) -> Vec<u8> {
    let mut child = s
        .env
        .sops_cmd()
        .args(["encrypt", "--filename-override", rel])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(plaintext.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sops cannot encrypt the hostile plaintext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes alpha's break-glass file decrypt to `plaintext`.
fn seal(s: &Scene, plaintext: &str) {
    s.write(&format!("fleet/{BG}"), sops_encrypted(s, BG, plaintext));
}

fn status_alpha() -> [&'static str; 4] {
    ["bootstrap", "break-glass", "status", "alpha"]
}

/// alpha's file decrypts (real sops) to `plaintext`; `args` must fail naming the file.
fn decrypted(name: &str, plaintext: String, args: &[&str]) -> Case {
    Case::new(format!("decrypts to {name}: {}", args.join(" ")))
        .setup(move |s: &mut Scene| seal(s, &plaintext))
        .args(args.iter().copied())
        .exit(1)
        .says(format!("{BG} does not hold a usable kubeconfig"))
        .may_change("home/.kube-dc/")
}

#[test]
fn a_decrypted_file_that_is_no_kubeconfig_is_described_not_quoted() {
    let oops = kubeconfig_with("    username: [oops]\n");
    let use_alpha = crate::support::USE_ALPHA;
    let mut cases = vec![
        decrypted(
            "username: [oops] after token:",
            oops.clone(),
            &status_alpha(),
        )
        .says("line 18, column 13: a value has the wrong type"),
        // status --all reports problems and exits 0; --check makes them exit 1.
        decrypted(
            "username: [oops] after token:",
            oops.clone(),
            &[
                "bootstrap",
                "break-glass",
                "status",
                "--all",
                "--output",
                "json",
            ],
        )
        .exit(0),
        decrypted(
            "username: [oops] after token:",
            oops.clone(),
            &["bootstrap", "break-glass", "status", "--all", "--check"],
        ),
        decrypted("username: [oops] after token:", oops, &use_alpha),
    ];
    for (name, extra) in [
        ("a second token key", "    tokenFile: [1]\n".to_string()),
        ("as: a mapping", format!("    as: {{who: {PLANTED}}}\n")),
        ("as-groups: a scalar", format!("    as-groups: {PLANTED}\n")),
        ("exec: a string", format!("    exec: {PLANTED}\n")),
        (
            "extensions: a scalar",
            format!("    extensions: {PLANTED}\n"),
        ),
        (
            "client-key-data: a list",
            format!("    client-key-data: [{PLANTED}]\n"),
        ),
    ] {
        cases.push(decrypted(name, kubeconfig_with(&extra), &status_alpha()));
    }
    let shapes = [
        (
            "token: a list",
            kubeconfig_with("")
                .replace(&format!("token: {PLANTED}"), &format!("token: [{PLANTED}]")),
        ),
        (
            "token: a mapping",
            kubeconfig_with("").replace(
                &format!("token: {PLANTED}"),
                &format!("token: {{v: {PLANTED}}}"),
            ),
        ),
        (
            "users: a scalar",
            format!("apiVersion: v1\nkind: Config\ncurrent-context: c\nusers: {PLANTED}\n"),
        ),
        (
            "current-context: a list",
            format!("kind: Config\ncurrent-context: [{PLANTED}]\n"),
        ),
        (
            "contexts: a list of strings",
            format!("kind: Config\ncurrent-context: c\ncontexts: [{PLANTED}]\n"),
        ),
        (
            "server: a mapping",
            kubeconfig_with("").replace(
                "server: 'https://127.0.0.1:6443'",
                &format!("server: {{x: {PLANTED}}}"),
            ),
        ),
    ];
    for (name, plaintext) in shapes {
        cases.push(decrypted(name, plaintext, &status_alpha()));
    }
    cases.push(
        decrypted(
            "no current-context",
            kubeconfig_with("").replace("current-context: c\n", ""),
            &status_alpha(),
        )
        .says("no current-context"),
    );
    cases.push(
        decrypted(
            "the token as certificate-authority-data",
            kubeconfig_with("").replace(
                "server: 'https://127.0.0.1:6443'",
                &format!(
                    "server: 'https://127.0.0.1:6443', certificate-authority-data: '{PLANTED}'"
                ),
            ),
            &status_alpha(),
        )
        .says("certificate-authority-data"),
    );
    run_table(cases);
}

/// A `sops` on KUBE_DC_SOPS that answers `--version` like sops 3.11 and does `body`
/// otherwise. A mock: the real sops cannot be made to print a kubeconfig on stderr, store
/// YAML it cannot parse, or hang.
pub fn fake_sops(s: &mut Scene, body: &str) {
    let script = s.script(
        "home/fake-sops",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ echo 'sops 3.11.0 (latest)'; exit 0; }}; done\n{body}"
        ),
    );
    s.var("KUBE_DC_SOPS", script.to_string_lossy());
    // Decrypt with the binary even where kube-dc can decrypt in-process.
    s.var("KUBE_DC_SOPS_DECRYPT", "binary");
}

/// `status alpha` with a fake sops that does `body` (the payload file holds `payload`).
fn sops_does(name: &str, payload: &[u8], body: &str) -> Case {
    let (payload, body) = (payload.to_vec(), body.to_string());
    Case::new(format!("sops {name}"))
        .setup(move |s: &mut Scene| {
            let file = s.write("home/payload", &payload);
            fake_sops(s, &body.replace("PAYLOAD", &file.to_string_lossy()));
        })
        .args(status_alpha())
        .exit(1)
}

#[test]
fn sops_output_is_redacted_and_bounded() {
    let kubeconfig = kubeconfig_with(&format!("    client-key-data: {OTHER}\n"));
    let bad = |name: &str, text: &[u8]| {
        sops_does(&format!("decrypts to {name}"), text, "cat PAYLOAD")
            .says(format!("{BG} does not hold a usable kubeconfig"))
    };
    run_table(vec![
        bad("an unterminated quote", format!("users:\n- user:\n    token: '{PLANTED}\n").as_bytes()),
        bad("an unclosed flow mapping", format!("users: [{{name: u, user: {{token: {PLANTED}}}\n").as_bytes()),
        bad("a broken indentation", format!("users:\n  - user:\n      token: {PLANTED}\n    bad\n  : x\n").as_bytes()),
        bad("an unknown alias", format!("token: {PLANTED}\nusers: *nowhere\n").as_bytes()),
        bad("a duplicate key", format!("kind: Config\nkind: {PLANTED}\n").as_bytes()),
        bad("bytes that are not UTF-8", format!("token: {PLANTED}\n\u{1b}[31m").as_bytes().iter().chain(b"\xff\xfe").copied().collect::<Vec<u8>>().as_slice()),
        bad("tabs and control characters", format!("kind: Config\n\tusers:\x07 {PLANTED}\n").as_bytes()),
        bad("nothing", b""),
        sops_does("prints 10 MB of kubeconfig on stdout", kubeconfig.as_bytes(), "yes \"$(cat PAYLOAD)\" | head -c 10000000")
            .says("printed more than 4 MiB"),
        sops_does("fails (128) printing a kubeconfig on stderr", kubeconfig.as_bytes(), "cat PAYLOAD >&2; exit 128")
            .says("no usable age key")
            .says("sops said:")
            .says("token: [hidden]"),
        sops_does("fails (1) printing 20 MB on stderr", kubeconfig.as_bytes(), "yes \"$(cat PAYLOAD)\" | head -c 20000000 >&2; exit 1")
            .says("exit code 1")
            .says("more line(s) not shown"),
        sops_does("fails (51) with escapes and a key on stderr", format!("\u{1b}]0;pwned\u{7}\u{1b}[2Jclient-key-data: {OTHER}\r\nAuthorization: Bearer {OTHER}\n").as_bytes(), "cat PAYLOAD >&2; exit 51")
            .says("MAC mismatch"),
        sops_does("fails (1) 'sops metadata not found' with the plaintext", format!("sops metadata not found\n{kubeconfig}").as_bytes(), "cat PAYLOAD >&2; exit 1")
            .says("not SOPS-encrypted"),
        sops_does("prints a JWT folded over stderr lines", format!("error: {}\n{}\n", &TOKEN[..60], &TOKEN[60..]).as_bytes(), "cat PAYLOAD >&2; exit 2")
            .says("exit code 2"),
        Case::new("sops --version prints a kubeconfig")
            .setup(move |s: &mut Scene| {
                let file = s.write("home/payload", kubeconfig_with(""));
                let script = s.script("home/fake-sops", &format!("cat '{}'", file.display()));
                s.var("KUBE_DC_SOPS", script.to_string_lossy());
                s.var("KUBE_DC_SOPS_DECRYPT", "binary");
            })
            .args(status_alpha())
            .exit(1)
            .says("printed no version"),
        Case::new("use: sops fails printing the plaintext")
            .setup(move |s: &mut Scene| {
                let file = s.write("home/payload", kubeconfig_with(""));
                fake_sops(s, &format!("cat '{}' >&2; exit 128", file.display()));
            })
            .args(crate::support::USE_ALPHA)
            .exit(1)
            .says("no usable age key")
            .may_change("home/.kube-dc/"),
    ]);
}

#[test]
fn a_hanging_sops_is_stopped_at_its_deadline() {
    run_table(vec![
        sops_does(
            "hangs after printing the token",
            TOKEN.as_bytes(),
            "cat PAYLOAD >&2; sleep 300",
        )
        .says("did not finish within 30s")
        .within(PAST_DEADLINE),
    ]);
}

/// An admin kubeconfig whose user runs the plugin `home/plugin` (with `body`) and
/// `exec_extra` lines, against a server where nothing listens.
pub fn with_plugin(s: &mut Scene, body: &str, exec_extra: &str) {
    let plugin = s.script("home/plugin", body);
    s.write(
        "home/admin.yaml",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: admin\ncontexts:\n- name: admin\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: 'https://127.0.0.1:9'}}\nusers:\n- name: u\n  user:\n    exec:\n      command: {}\n      env: [{{name: PLUGIN_SECRET, value: {OTHER}}}]\n{exec_extra}",
            plugin.display()
        ),
    );
}

pub const V1: &str =
    "      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: Never\n";

/// What a plugin prints on success: an ExecCredential holding the canary.
fn credential_json() -> String {
    format!(
        r#"{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"{OTHER}"}}}}"#
    )
}

fn adopt_with_plugin(name: &str, body: &str, exec_extra: &str) -> Case {
    let (body, exec_extra) = (body.to_string(), exec_extra.to_string());
    Case::new(format!("adopt: credential plugin {name}"))
        .setup(move |s: &mut Scene| with_plugin(s, &body, &exec_extra))
        .args([
            "bootstrap",
            "break-glass",
            "adopt",
            "alpha",
            "--kubeconfig",
            "../home/admin.yaml",
            "--kube-context",
            "admin",
            "--no-commit",
        ])
        .exit(1)
}

/// `status alpha --live` with the admin kubeconfig of [`with_plugin`].
pub const LIVE_WITH_PLUGIN: [&str; 7] = [
    "status",
    "alpha",
    "--live",
    "--kubeconfig",
    "../home/admin.yaml",
    "--kube-context",
    "admin",
];

fn live_status_with_plugin(name: &str, body: &str) -> Case {
    let body = body.to_string();
    Case::new(format!("status --live: credential plugin {name}"))
        .setup(move |s: &mut Scene| with_plugin(s, &body, V1))
        .args(bg(&LIVE_WITH_PLUGIN))
        .exit(0)
        .may_change("home/.kube-dc/")
}

#[test]
fn credential_plugins_output_never_shows_and_failures_say_why() {
    let json = credential_json();
    let fails = format!("echo '{json}'; echo \"oidc is down; token: $PLUGIN_SECRET\" >&2; exit 1");
    run_table(vec![
        adopt_with_plugin("prints a token and exits 1", &fails, V1)
            .says("credential plugin `")
            .says("failed with exit code 1")
            .says("oidc is down; token: [hidden]"),
        live_status_with_plugin("prints a token and exits 1", &fails)
            .says("failed with exit code 1"),
        adopt_with_plugin("prints garbage with the token", &format!("echo 'here: [{OTHER}'"), V1)
            .says("printed no ExecCredential JSON (line 1"),
        adopt_with_plugin("prints 3 MB", "head -c 3000000 /dev/zero | tr '\\0' a", V1)
            .says("more than 1024 KiB"),
        adopt_with_plugin("answers with another kind", &format!("echo '{{\"kind\":\"Secret\",\"status\":{{\"token\":\"{OTHER}\"}}}}'"), V1)
            .says("not an ExecCredential"),
        adopt_with_plugin("answers without a credential", "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{}}'", V1)
            .says("neither status.token"),
        adopt_with_plugin("prints escapes on stderr and is killed by a signal", &format!("printf '\\033]0;x\\007\\033[2J{OTHER}\\n' >&2; kill -9 $$"), V1)
            .says("failed with a signal"),
        adopt_with_plugin("does not exist", "true", V1)
            .setup(|s: &mut Scene| s.remove("home/plugin"))
            .says("cannot run credential plugin")
            .says("No such file"),
        adopt_with_plugin("works, then the apiserver is unreachable", &format!("echo '{json}'"), V1)
            .says("cannot reach the apiserver"),
        adopt_with_plugin("with an unsupported apiVersion", &format!("echo '{json}'"), "      apiVersion: client.authentication.k8s.io/v1alpha1\n")
            .exit(2)
            .says("v1alpha1\" is not supported"),
        adopt_with_plugin("that must be interactive, without a terminal", &format!("echo '{json}'"), "      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: Always\n")
            .exit(2)
            .says("needs a terminal"),
        Case::new("adopt: the admin kubeconfig is not YAML")
            .setup(|s: &mut Scene| {
                s.write("home/admin.yaml", format!("users: [{{name: u, user: {{token: '{OTHER}}}]\n"));
            })
            .args(["bootstrap", "break-glass", "adopt", "alpha", "--kubeconfig", "../home/admin.yaml", "--kube-context", "admin", "--no-commit"])
            .exit(2)
            .says("cannot read kubeconfig ../home/admin.yaml: line 1"),
    ]);
}

#[test]
fn a_hanging_credential_plugin_is_stopped_at_its_deadline() {
    run_table(vec![
        adopt_with_plugin(
            "hangs (identity provider down)",
            "echo 'waiting for the identity provider' >&2; sleep 300",
            V1,
        )
        .says("did not finish within 30s")
        .says("waiting for the identity provider")
        .within(PAST_DEADLINE),
    ]);
}

#[test]
fn a_hanging_credential_plugin_and_its_children_are_stopped() {
    run_table(vec![
        live_status_with_plugin(
            "hangs with a child holding its output",
            &format!("echo '{OTHER}' >&2; sleep 300 & sleep 300"),
        )
        .says("did not finish within 30s")
        .within(PAST_DEADLINE),
    ]);
}
