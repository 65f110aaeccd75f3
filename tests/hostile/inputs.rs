//! Inputs validated before anything happens: server URLs from every source, durations,
//! namespaces, cluster-config.env values, globs, fleet discovery, .sops.yaml, paths.
//! Each is refused with exit 2 and a message naming the value and where it came from,
//! and nothing in the scene changes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Case, Scene, run_table};
use crate::support::canary;

const ALPHA_CONFIG: &str = "fleet/clusters/alpha/cluster-config.env";

/// kube-dc's arguments for `bootstrap break-glass <args>`.
pub fn bg(args: &[&str]) -> Vec<String> {
    ["bootstrap", "break-glass"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

/// A refusal before anything runs: quick, and nothing may change.
fn refused(name: &str, args: &[&str]) -> Case {
    Case::new(name)
        .args(bg(args))
        .exit(2)
        .within(Duration::from_secs(10))
}

/// An admin kubeconfig whose contexts (`admin`, current, and `alpha-admin`) point at
/// `server`. Its token is no secret of the fleet.
pub fn admin_kubeconfig_text(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: admin\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: admin-token-of-the-test\ncontexts:\n- name: admin\n  context: {{cluster: c, user: u}}\n- name: alpha-admin\n  context: {{cluster: c, user: u}}\n"
    )
}

/// [`admin_kubeconfig_text`] as KUBECONFIG.
pub fn admin_kubeconfig(s: &mut Scene, server: &str) {
    let path = s.write("home/admin.kubeconfig", admin_kubeconfig_text(server));
    s.var("KUBECONFIG", path.to_string_lossy());
}

/// Exit code and stdout+stderr of a finished kube-dc run.
pub fn outcome(out: std::process::Output) -> (Option<i32>, String) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

/// Puts an encrypted break-glass file for `cluster` whose server is `server` and whose
/// token is the canary, encrypted by the real sops to the fixture key.
pub fn break_glass_file(s: &Scene, cluster: &str, server: &str) {
    let plaintext = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: break-glass\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\nusers:\n- name: break-glass\n  user:\n    token: {}\ncontexts:\n- name: break-glass\n  context:\n    cluster: {cluster}\n    user: break-glass\n",
        canary::TOKEN
    );
    let rel = format!("clusters/{cluster}/break-glass-kubeconfig.enc.yaml");
    let mut child = s
        .env
        .sops_cmd()
        .args(["encrypt", "--filename-override", &rel])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sops encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.write(&format!("fleet/{rel}"), out.stdout);
}

/// alpha's cluster-config.env with `line` added.
fn alpha_config_with(line: &'static str) -> impl Fn(&mut Scene) {
    move |s: &mut Scene| {
        let old = std::fs::read_to_string(s.path(ALPHA_CONFIG)).unwrap();
        s.write(ALPHA_CONFIG, format!("{old}{line}\n"));
    }
}

#[test]
fn server_urls_are_https_from_every_source() {
    let flag = |url: &str, why: &str| {
        refused(
            &format!("--server {url:?}"),
            &["adopt", "alpha", "--server", url],
        )
        .says("--server")
        .says(why)
    };
    let configured = |line: &'static str, why: &str| {
        refused(
            &format!("config {line:?}"),
            &["adopt", "alpha", "--dry-run"],
        )
        .setup(alpha_config_with(line))
        .says("cluster-config.env:5: KUBE_API_EXTERNAL_URL=")
        .says(why)
    };
    run_table(vec![
        flag("kube:6443", "no scheme"),
        flag("garbage", "no scheme"),
        flag("", "empty"),
        flag("http://127.0.0.1:6443", "plain http"),
        flag("ftp://kube.example", "only https"),
        flag("https://user:pw@kube.example", "user info"),
        flag("https://kube.example:99999", "port"),
        flag("https://kube.example/?a=b", "query"),
        flag("https://kube\u{1b}[2J.example", "control"),
        flag(&format!("https://{}", "a".repeat(5000)), "longer than"),
        refused(
            "rotate --server http://",
            &["rotate", "alpha", "--server", "http://kube.example:6443"],
        )
        .says("plain http"),
        refused(
            "--no-verify does not let garbage through",
            &["adopt", "alpha", "--no-verify", "--server", "garbage"],
        )
        .says("no scheme"),
        configured(
            "KUBE_API_EXTERNAL_URL=http://kube.example:6443",
            "plain http",
        ),
        configured("KUBE_API_EXTERNAL_URL=kube.example:6443", "no scheme"),
        configured("KUBE_API_EXTERNAL_URL=garbage", "no scheme"),
        configured(
            "KUBE_API_EXTERNAL_URL='https://kube.example:6443/#x'",
            "fragment",
        ),
        refused("config URL refused by rotate too", &["rotate", "alpha"])
            .setup(alpha_config_with("KUBE_API_EXTERNAL_URL=http://k:6443"))
            .says("KUBE_API_EXTERNAL_URL=\"http://k:6443\" is refused"),
        refused(
            "config URL refused with --no-verify",
            &["adopt", "alpha", "--no-verify"],
        )
        .setup(alpha_config_with("KUBE_API_EXTERNAL_URL=garbage"))
        .says("garbage"),
        // beta has no file and no URL of its own here: the context's server is next.
        refused(
            "the kube context's server",
            &["adopt", "beta", "--no-commit"],
        )
        .setup(|s: &mut Scene| {
            s.write(
                "fleet/clusters/beta/cluster-config.env",
                "CLUSTER_NAME=beta\n",
            );
            admin_kubeconfig(s, "http://127.0.0.1:9");
        })
        .says("the server of kube context \"admin\" is refused")
        .says("plain http"),
        // The URL in the existing file is decrypted content: refused but never quoted.
        refused(
            "the existing file's server",
            &["adopt", "beta", "--no-commit"],
        )
        .setup(|s: &mut Scene| {
            s.write(
                "fleet/clusters/beta/cluster-config.env",
                "CLUSTER_NAME=beta\n",
            );
            break_glass_file(s, "beta", "http://127.0.0.1:9");
            admin_kubeconfig(s, "https://127.0.0.1:9");
        })
        .says("the server URL in clusters/beta/break-glass-kubeconfig.enc.yaml is refused")
        .says("plain http"),
        refused(
            "self-rotation checks the file's server before logging in",
            &["rotate", "beta", "--via", "break-glass", "--no-commit"],
        )
        .setup(|s: &mut Scene| {
            s.write(
                "fleet/clusters/beta/cluster-config.env",
                "CLUSTER_NAME=beta\n",
            );
            break_glass_file(s, "beta", "kube.example:6443");
        })
        .says("the server URL in clusters/beta/break-glass-kubeconfig.enc.yaml is refused")
        .says("no scheme"),
    ]);
}

#[test]
fn namespaces_and_config_values_are_checked_where_read() {
    let namespace = |value: &'static str| {
        refused(
            &format!("BREAK_GLASS_NAMESPACE {value:?}"),
            &["adopt", "alpha", "--dry-run"],
        )
        .setup(alpha_config_with(value))
        .says("cluster-config.env:5: BREAK_GLASS_NAMESPACE=")
        .says("is refused")
    };
    let config = |name: &str, text: &'static [u8], says: &str| {
        refused(name, &["adopt", "alpha", "--dry-run"])
            .setup(move |s: &mut Scene| {
                s.write(ALPHA_CONFIG, text);
            })
            .says("cluster-config.env")
            .says(says)
    };
    run_table(vec![
        namespace("BREAK_GLASS_NAMESPACE=../x"),
        namespace("BREAK_GLASS_NAMESPACE=Kube-System"),
        namespace("BREAK_GLASS_NAMESPACE='a/b'"),
        namespace("BREAK_GLASS_NAMESPACE=-ops"),
        namespace(
            "BREAK_GLASS_NAMESPACE=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        refused("namespace refused by rotate", &["rotate", "alpha"])
            .setup(alpha_config_with("BREAK_GLASS_NAMESPACE=kube_system"))
            .says("BREAK_GLASS_NAMESPACE=\"kube_system\" is refused"),
        config(
            "escape sequence in a value",
            b"KUBE_CONTEXT=\"alpha\x1b[2Jadmin\"\n",
            "cluster-config.env:1: the value of KUBE_CONTEXT contains the control character U+001B",
        ),
        config(
            "NUL in a value",
            b"A=1\nKUBE_CONTEXT=a\\\x00b\n",
            ":2: the value of KUBE_CONTEXT contains the control character U+0000",
        ),
        config("carriage return inside a value", b"A='x\ry'\n", "U+000D"),
        config("not UTF-8", b"A=\xff\xfe\n", "not UTF-8"),
        config(
            "unterminated quote",
            b"A='open\n",
            "unterminated single quote",
        ),
        config(
            "text after the value",
            b"KUBE_CONTEXT=alpha admin\n",
            "unexpected text after the value",
        ),
    ]);
}

#[test]
fn durations_are_bounded() {
    run_table(vec![
        refused(
            "adopt --timeout 584542046090y",
            &["adopt", "alpha", "--timeout", "584542046090y"],
        )
        .says("--timeout")
        .says("between 1s and 1h"),
        refused(
            "rotate --timeout 584542046090y",
            &["rotate", "alpha", "--timeout", "584542046090y"],
        )
        .says("--timeout"),
        refused(
            "rotate --timeout 0s",
            &["rotate", "alpha", "--timeout", "0s"],
        )
        .says("between"),
        refused(
            "rotate --timeout 2h",
            &["rotate", "alpha", "--timeout", "2h"],
        )
        .says("between"),
        refused("adopt --timeout ''", &["adopt", "alpha", "--timeout", ""]).says("--timeout"),
        refused(
            "adopt --timeout soon",
            &["adopt", "alpha", "--timeout", "soon"],
        )
        .says("--timeout"),
        refused(
            "status --max-age 584542046090y",
            &["status", "--all", "--max-age", "584542046090y"],
        )
        .says("--max-age")
        .says("100 years"),
        refused(
            "status --max-age 0s",
            &["status", "--all", "--max-age", "0s"],
        )
        .says("--max-age"),
        refused(
            "status --max-age=-5d",
            &["status", "--all", "--max-age=-5d"],
        )
        .says("--max-age"),
        refused(
            "status --max-age 99999999999999999999d",
            &["status", "alpha", "--max-age", "99999999999999999999d"],
        )
        .says("--max-age"),
    ]);
}

#[test]
fn fleet_discovery_is_explicit() {
    run_table(vec![
        refused(
            "empty KUBE_DC_FLEET inside a fleet",
            &["status", "--all", "--no-decrypt"],
        )
        .setup(|s: &mut Scene| s.var("KUBE_DC_FLEET", ""))
        .says("KUBE_DC_FLEET is empty"),
        refused(
            "empty --repo",
            &["--repo", "", "status", "--all", "--no-decrypt"],
        )
        .says("--repo <PATH>"),
        refused(
            "nonexistent KUBE_DC_FLEET",
            &["status", "--all", "--no-decrypt"],
        )
        .setup(|s: &mut Scene| s.var("KUBE_DC_FLEET", "/nonexistent/fleet"))
        .says("KUBE_DC_FLEET points to /nonexistent/fleet"),
        refused(
            "relative KUBE_DC_FLEET that is no fleet",
            &["status", "--all", "--no-decrypt"],
        )
        .setup(|s: &mut Scene| s.var("KUBE_DC_FLEET", "clusters"))
        .says("not a fleet repo"),
        refused(
            "--repo naming a file",
            &["status", "--all", "--repo", ".sops.yaml"],
        )
        .says("not a fleet repo"),
        refused(
            "KUBE_DC_FLEET with a control character",
            &["status", "--all"],
        )
        .setup(|s: &mut Scene| s.var("KUBE_DC_FLEET", "fle\u{1b}et"))
        .says("KUBE_DC_FLEET"),
        Case::new("relative KUBE_DC_FLEET from another directory")
            .setup(|s: &mut Scene| {
                s.var("KUBE_DC_FLEET", "fleet");
                s.cwd("");
            })
            .args(bg(&["status", "alpha", "--no-decrypt"]))
            .exit(0)
            .says("clusters/alpha/break-glass-kubeconfig.enc.yaml"),
        // A shell leaves `--repo=~/...` unexpanded; the Go tool expands it, so do we.
        Case::new("--repo=~/... from another directory")
            .setup(|s: &mut Scene| s.cwd("home"))
            .args(
                ["--repo=~/../fleet"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(bg(&["status", "alpha", "--no-decrypt"])),
            )
            .exit(0)
            .says("clusters/alpha/break-glass-kubeconfig.enc.yaml"),
        Case::new("KUBE_DC_FLEET=~/...")
            .setup(|s: &mut Scene| {
                s.var("KUBE_DC_FLEET", "~/../fleet");
                s.cwd("");
            })
            .args(bg(&["status", "alpha", "--no-decrypt"]))
            .exit(0)
            .says("clusters/alpha/break-glass-kubeconfig.enc.yaml"),
        refused(
            "KUBE_DC_FLEET=~user/... is not expanded",
            &["status", "--all"],
        )
        .setup(|s: &mut Scene| s.var("KUBE_DC_FLEET", "~nobody/fleet"))
        .says("~nobody/fleet"),
        refused("empty KUBE_DC_SOPS", &["status", "alpha"])
            .setup(|s: &mut Scene| s.var("KUBE_DC_SOPS", ""))
            .says("KUBE_DC_SOPS is set but empty"),
        refused("check on a missing path", &["check", "clusters/nope.yaml"])
            .says("\"clusters/nope.yaml\" does not exist"),
        refused(
            "check on a path outside the fleet",
            &["check", "/etc/hostname"],
        )
        .says("outside the fleet"),
    ]);
}

#[test]
fn globs_are_matched_in_linear_time() {
    let hostile = format!("{}b", "*a".repeat(120));
    let long_name = "a".repeat(240);
    run_table(vec![
        refused(
            "a backtracking glob against a long name",
            &["rotate", &hostile],
        )
        .setup(move |s: &mut Scene| {
            s.write(
                &format!("fleet/clusters/{long_name}/cluster-config.env"),
                "CLUSTER_NAME=long\n",
            );
        })
        .within(Duration::from_secs(5))
        .says("matches no cluster"),
        refused("a glob that matches nothing", &["rotate", "zz*"])
            .says("\"zz*\" matches no cluster"),
        refused("a glob does not cross /", &["rotate", "e*"]).says("matches no cluster"),
    ]);
}

/// A .sops.yaml sops cannot use is a fleet configuration error in every command.
#[test]
fn a_broken_sops_yaml_exits_2_in_every_command() {
    // (variant, the file's text, what the message says)
    type Variant = (&'static str, fn() -> String, &'static str);
    let variants: [Variant; 5] = [
        ("invalid YAML", || "creation_rules: [\n".into(), "unclosed"),
        (
            "no creation_rules",
            || "stores: {}\n".into(),
            "no creation_rules",
        ),
        ("empty", String::new, "no creation_rules"),
        (
            "rule without recipients",
            || "creation_rules:\n  - path_regex: .*\n".into(),
            "creation rule 1 names no keys",
        ),
        (
            "huge",
            || format!("creation_rules: []\n#{}\n", "x".repeat(2 << 20)),
            "never larger than 1048576 bytes",
        ),
    ];
    let commands: [&[&str]; 5] = [
        &["adopt", "alpha", "--dry-run"],
        &["rotate", "alpha", "--dry-run"],
        &["use", "alpha", "--reason", "test", "--", "true"],
        &["status", "alpha"],
        &["check"],
    ];
    let mut cases = Vec::new();
    for (variant, text, says) in variants {
        for command in commands {
            cases.push(
                refused(
                    &format!("{} with {variant} .sops.yaml", command[0]),
                    command,
                )
                .setup(move |s: &mut Scene| {
                    s.write("fleet/.sops.yaml", text());
                })
                .says(".sops.yaml")
                .says(says),
            );
        }
    }
    run_table(cases);
}

#[test]
fn error_paths_say_what_to_do() {
    run_table(vec![
        Case::new("use on a cluster that is not adopted")
            .args(bg(&["use", "beta", "--reason", "test", "--", "true"]))
            .exit(1)
            .says("cluster beta is not adopted")
            .says("kube-dc bootstrap break-glass adopt beta"),
        Case::new("status without an age key says how to provide one")
            .setup(|s: &mut Scene| s.unset("SOPS_AGE_KEY_FILE"))
            .args(bg(&["status", "alpha"]))
            .exit(1)
            .says("no usable age key")
            .says("SOPS_AGE_KEY_FILE")
            .says("(the problem is shown above)"),
        refused(
            "an unknown --kube-context is named",
            &[
                "adopt",
                "alpha",
                "--kube-context",
                "nope-admin",
                "--dry-run",
            ],
        )
        .setup(|s: &mut Scene| admin_kubeconfig(s, "https://127.0.0.1:9"))
        .says("kube context \"nope-admin\" is not in")
        .says("contexts in"),
        refused(
            "an unknown context from KUBE_CONTEXT is named",
            &["adopt", "alpha", "--dry-run"],
        )
        .setup(|s: &mut Scene| {
            admin_kubeconfig(s, "https://127.0.0.1:9");
            s.write(ALPHA_CONFIG, "KUBE_CONTEXT=gone-admin\n");
        })
        .says("kube context \"gone-admin\" is not in"),
        refused("a name with a control character", &["use", "al\u{7}pha"]).says("cluster name"),
        refused("a name that is a path", &["rotate", "../alpha"]).says("../alpha"),
        refused("an absolute name", &["adopt", "/alpha"]).says("absolute"),
        refused("an empty segment", &["rotate", "eu//dc1"]).says("empty segment"),
    ]);
}

/// sops' long explanation appears once, not in the report and again in the error.
#[test]
fn status_without_a_key_prints_sops_text_once() {
    let env = crate::support::TestEnv::new();
    let (code, all) = outcome(
        env.kube_dc()
            .env_remove("SOPS_AGE_KEY_FILE")
            // sops' own text is what must appear once: the binary path prints it.
            .env("KUBE_DC_SOPS_DECRYPT", "binary")
            .args(["bootstrap", "break-glass", "status", "alpha"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        all.matches("Failed to get the data key").count(),
        1,
        "{all}"
    );
    assert_eq!(code, Some(1), "{all}");
}

/// Nothing can be sent over plain HTTP: a listener on the --server port gets no byte.
#[test]
fn adopt_and_rotate_send_nothing_to_a_plain_http_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let with_admin = move |s: &mut Scene| admin_kubeconfig(s, &format!("https://127.0.0.1:{port}"));
    run_table(vec![
        refused(
            "adopt --server http:// (the new token)",
            &["adopt", "alpha", "--server", &url],
        )
        .setup(with_admin)
        .says("plain http"),
        refused(
            "rotate --server http:// (the current token)",
            &["rotate", "alpha", "--server", &url],
        )
        .setup(with_admin)
        .says("plain http"),
    ]);
    assert!(
        listener.accept().is_err(),
        "kube-dc connected to the plain-HTTP server"
    );
}
