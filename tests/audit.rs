//! Every `use` is accountable (issue 16): a reason is required, the session is recorded in
//! the cluster with the break-glass credential (best effort, bounded), journaled locally,
//! listed by the next rotation's commit, and announced through the fleet's `on_use` hook.
//! Control-plane tests put their objects in namespaces of their own and run one at a time.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::canary::MARKER;
use support::control_plane::ControlPlane;
use support::{TestEnv, bg, serial, shared_control_plane, show, text};

const PERSON: &str = "Ann Auditor <ann@example.test>";

fn kubectl(cp: &ControlPlane, args: &[&str]) -> String {
    let out = cp
        .kubectl(cp.admin_kubeconfig())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", show(&out));
    text(&out.stdout)
}

/// A fleet in Git whose `alpha` lives in `namespace` on the control plane, adopted, with
/// the fleet repo's Git identity set to [`PERSON`].
fn adopted(cp: &ControlPlane, namespace: &str) -> TestEnv {
    let env = TestEnv::new().with_git();
    let config = env.fleet.join("clusters/alpha/cluster-config.env");
    let mut body = std::fs::read_to_string(&config).unwrap();
    body.push_str(&format!(
        "\nBREAK_GLASS_NAMESPACE={namespace}\nKUBE_API_EXTERNAL_URL={}\n",
        cp.server_url()
    ));
    std::fs::write(&config, body).unwrap();
    env.git(&["config", "user.name", "Ann Auditor"]);
    env.git(&["config", "user.email", "ann@example.test"]);
    env.git(&["commit", "-qam", "alpha on the test control plane"]);
    kubectl(cp, &["create", "namespace", namespace]);
    let out = bg(&env, cp, &admin(cp, &["adopt", "alpha"]));
    assert!(out.status.success(), "{}\n{}", show(&out), cp.log_tail());
    env
}

/// `args` with the control plane's admin kubeconfig and its context (the fixture names
/// another).
fn admin(cp: &ControlPlane, args: &[&str]) -> Vec<String> {
    let context = kubectl(cp, &["config", "current-context"]);
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    full.extend([
        "--kubeconfig".into(),
        cp.admin_kubeconfig().to_string_lossy().into_owned(),
        "--kube-context".into(),
        context.trim().to_string(),
    ]);
    full
}

fn annotation(cp: &ControlPlane, namespace: &str) -> Value {
    let raw = kubectl(
        cp,
        &[
            "get",
            "serviceaccount",
            "break-glass",
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.annotations.kube-dc\\.io/last-session}",
        ],
    );
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("annotation {raw:?}: {e}"))
}

/// (reason, message) of the Events about the break-glass ServiceAccount.
fn events(cp: &ControlPlane, namespace: &str) -> Vec<(String, String)> {
    let raw = kubectl(
        cp,
        &[
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            "involvedObject.kind=ServiceAccount,involvedObject.name=break-glass",
            "-o",
            "json",
        ],
    );
    let list: Value = serde_json::from_str(&raw).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn use_leaves_an_event_and_an_annotation_naming_the_person_and_reason() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp, "audit-recorded");
    let out = bg(
        &env,
        cp,
        &[
            "use",
            "alpha",
            "--reason",
            "INC-7 OIDC down",
            "--",
            "kubectl",
            "get",
            "ns",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let said = show(&out);
    assert!(
        said.contains("record:   Event BreakGlassSessionStarted"),
        "{said}"
    );
    assert!(said.contains(&format!("person:   {PERSON}")), "{said}");

    let last = annotation(cp, "audit-recorded");
    assert_eq!(last["who"], PERSON, "{last:#}");
    assert_eq!(last["reason"], "INC-7 OIDC down", "{last:#}");
    assert!(last["start"].is_string(), "{last:#}");
    assert!(
        last["end"].is_string(),
        "the end is added after the command: {last:#}"
    );
    assert_eq!(last["exit_code"], 0, "{last:#}");

    let events = events(cp, "audit-recorded");
    let started = events
        .iter()
        .find(|(reason, _)| reason == "BreakGlassSessionStarted")
        .unwrap_or_else(|| panic!("no start Event in {events:?}"));
    assert!(
        started.1.contains(PERSON) && started.1.contains("INC-7 OIDC down"),
        "{started:?}"
    );
    assert!(
        events
            .iter()
            .any(|(reason, _)| reason == "BreakGlassSessionEnded"),
        "{events:?}"
    );

    // status --live shows it next to the last-used date.
    let out = bg(&env, cp, &admin(cp, &["status", "alpha", "--live"]));
    let report = show(&out);
    let row = report
        .lines()
        .find(|l| l.contains("last session"))
        .unwrap_or_else(|| panic!("no last session row:\n{report}"));
    assert!(
        row.contains(PERSON) && row.contains("INC-7 OIDC down") && row.contains("(exit 0)"),
        "{row}"
    );
}

#[test]
fn a_record_the_cluster_refuses_is_reported_and_the_session_still_runs() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp, "audit-denied");
    // The break-glass account loses every right: the Event and the annotation are forbidden.
    kubectl(
        cp,
        &["delete", "clusterrolebinding", "break-glass-audit-denied"],
    );
    let marker = env.home.join("ran");
    let started = Instant::now();
    let out = bg(
        &env,
        cp,
        &[
            "use",
            "alpha",
            "--reason",
            "INC-8 RBAC broken",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(marker.exists(), "the command did not run: {}", show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let said = show(&out);
    assert!(said.contains("record:   FAILED"), "{said}");
    assert!(said.contains("forbidden"), "{said}");
}

/// The record gets a bounded time: an apiserver that accepts connections and then never
/// answers delays the session by that bound, not more, and the banner says why.
#[test]
fn a_stalled_apiserver_delays_the_session_by_the_records_bound_only() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp, "audit-stalled");
    // Connections complete in the backlog; nothing ever reads or answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = format!("https://{}", silent.local_addr().unwrap());
    let plain = std::fs::read_to_string(env.decrypt_to_file("alpha", "bg.yaml")).unwrap();
    let redirected = plain.replace(cp.server_url(), &stalled);
    assert_ne!(plain, redirected, "the server URL is not in the kubeconfig");
    std::fs::write(env.break_glass_file("alpha"), encrypt(&env, &redirected)).unwrap();

    let marker = env.home.join("ran");
    let started = Instant::now();
    let out = bg(
        &env,
        cp,
        &[
            "use",
            "alpha",
            "--reason",
            "INC-13 stalled",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{}", show(&out));
    assert!(marker.exists(), "the command did not run: {}", show(&out));
    // Start and end record, 6 s each, plus the process itself.
    assert!(took < Duration::from_secs(16), "{took:?}");
    let said = show(&out);
    assert!(said.contains("record:   FAILED"), "{said}");
    assert!(
        said.contains("deadline has elapsed") || said.contains("no answer"),
        "{said}"
    );
}

/// The fleet's sops encryption of `plain` for alpha's break-glass file.
fn encrypt(env: &TestEnv, plain: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = env
        .sops_cmd()
        .args([
            "encrypt",
            "--filename-override",
            "clusters/alpha/break-glass-kubeconfig.enc.yaml",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plain.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sops: {}", show(&out));
    out.stdout
}

#[test]
fn rotation_lists_the_sessions_since_the_last_one_and_the_journal_holds_no_token() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp, "audit-rotated");
    let token = cp.secret_token("audit-rotated", "break-glass-token");
    for reason in ["INC-9 first look", "INC-9 second look"] {
        let out = bg(
            &env,
            cp,
            &["use", "alpha", "--reason", reason, "--", "true"],
        );
        assert!(out.status.success(), "{}", show(&out));
    }
    let journal = journal_text(&env.home);
    assert!(journal.contains("INC-9 first look"), "{journal}");
    assert!(!journal.contains(&token), "the journal holds the token");
    assert!(!journal.contains(MARKER));

    // Until the rotation, --check fails and names the last session: from the cluster's
    // annotation with --live, from the journal without.
    for check in checks(cp) {
        let out = bg(&env, cp, &check);
        assert_eq!(out.status.code(), Some(1), "{check:?}: {}", show(&out));
        assert!(
            show(&out).contains("INC-9 second look"),
            "{check:?}: {}",
            show(&out)
        );
    }

    let out = bg(&env, cp, &admin(cp, &["rotate", "alpha"]));
    assert!(out.status.success(), "{}", show(&out));
    let message = env.git(&["log", "-1", "--format=%B"]);
    for reason in ["INC-9 first look", "INC-9 second look"] {
        let line = message
            .lines()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("{reason} not in:\n{message}"));
        assert!(line.contains(PERSON), "{line}");
        assert!(line.contains("(exit 0)"), "start and end times: {line}");
    }

    for check in checks(cp) {
        let out = bg(&env, cp, &check);
        assert!(out.status.success(), "{check:?}: {}", show(&out));
    }
    // Each session is in exactly one rotation commit.
    let out = bg(&env, cp, &admin(cp, &["rotate", "alpha"]));
    assert!(out.status.success(), "{}", show(&out));
    let message = env.git(&["log", "-1", "--format=%B"]);
    assert!(!message.contains("INC-9"), "{message}");
}

/// `status --live --check` (the cluster's annotation) and `status --check` (the journal).
fn checks(cp: &ControlPlane) -> [Vec<String>; 2] {
    [
        admin(cp, &["status", "alpha", "--live", "--check"]),
        ["status", "alpha", "--check"].map(String::from).to_vec(),
    ]
}

fn journal_text(home: &Path) -> String {
    let dir = home.join(".kube-dc/journal");
    let mut all = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    all
}

/// `use alpha` of the fixture fleet (no cluster behind it: the record fails fast).
fn use_fixture(env: &TestEnv, reason: Option<&str>, command: &[&str]) -> Output {
    let mut cmd = env.kube_dc();
    cmd.args(["bootstrap", "break-glass", "use", "alpha"]);
    if let Some(reason) = reason {
        cmd.args(["--reason", reason]);
    }
    cmd.arg("--").args(command);
    cmd.output().unwrap()
}

#[test]
fn without_a_terminal_and_without_a_reason_use_refuses_naming_the_flag() {
    let env = TestEnv::new();
    let out = use_fixture(&env, None, &["true"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("--reason"), "{}", show(&out));
    let out = use_fixture(&env, Some("two\nlines"), &["true"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("control character"), "{}", show(&out));
}

/// Runs kube-dc under a pseudo-terminal (python's pty), typing `typed`; returns what the
/// terminal showed and the exit code.
fn on_a_terminal(env: &TestEnv, args: &[&str], typed: &str) -> (String, i32) {
    const SCRIPT: &str = r#"
import os, subprocess, sys, json
args = json.loads(sys.argv[1]); typed = sys.argv[2].encode()
master, slave = os.openpty()
p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
os.write(master, typed)
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
code = p.wait(timeout=30)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(code)
"#;
    let mut argv = vec![support::kube_dc_bin().to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, &serde_json::to_string(&argv).unwrap(), typed])
        .env_clear()
        .envs(env.base_env())
        .env("SOPS_AGE_KEY_FILE", &env.age_key)
        .current_dir(&env.fleet)
        .output()
        .expect("python3 is needed to run kube-dc under a pseudo-terminal");
    (text(&out.stdout), out.status.code().unwrap_or(-1))
}

#[test]
fn on_a_terminal_use_asks_for_a_reason_and_refuses_an_empty_one() {
    let env = TestEnv::new();
    let args = ["bootstrap", "break-glass", "use", "alpha", "--", "true"];
    let (shown, code) = on_a_terminal(&env, &args, "\n\n\n");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("reason for breaking glass"), "{shown}");
    assert_eq!(
        shown.matches("not accepted: the reason is empty").count(),
        3,
        "{shown}"
    );

    let (shown, code) = on_a_terminal(&env, &args, "\nINC-10 typed\n");
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("not accepted: the reason is empty"),
        "{shown}"
    );
    assert!(shown.contains("reason:   INC-10 typed"), "{shown}");
}

fn with_on_use(env: &TestEnv, command: &str) {
    let yaml = format!("on_use: {}\n", serde_json::to_string(command).unwrap());
    std::fs::write(env.fleet.join(".kube-dc.yaml"), yaml).unwrap();
}

#[test]
fn on_use_gets_the_documented_variables_and_no_secret() {
    let env = TestEnv::new();
    let seen: PathBuf = env.home.join("on-use.env");
    with_on_use(&env, &format!("env > {}", seen.display()));
    let out = env
        .kube_dc()
        .env("KUBECONFIG", "/somewhere/admin.kubeconfig")
        .args([
            "bootstrap",
            "break-glass",
            "use",
            "alpha",
            "--reason",
            "INC-11 paging",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("on_use:   ran"), "{}", show(&out));
    let vars = std::fs::read_to_string(&seen).unwrap();
    assert!(vars.contains("KUBE_DC_CLUSTER=alpha\n"), "{vars}");
    assert!(vars.contains("KUBE_DC_REASON=INC-11 paging\n"), "{vars}");
    assert!(vars.contains("KUBE_DC_PERSON="), "{vars}");
    assert!(vars.contains("KUBE_DC_SERVER=https://"), "{vars}");
    for withheld in ["KUBECONFIG=", "SOPS_AGE_KEY_FILE="] {
        assert!(
            !vars.contains(withheld),
            "{withheld} reached on_use:\n{vars}"
        );
    }
    assert!(!vars.contains(MARKER), "{vars}");
}

#[test]
fn a_hanging_on_use_is_cut_at_its_bound_and_a_failing_one_is_reported() {
    let env = TestEnv::new();
    with_on_use(&env, "sleep 60 & sleep 60");
    let started = Instant::now();
    let out = use_fixture(&env, Some("INC-12"), &["true"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(show(&out).contains("on_use:   FAILED"), "{}", show(&out));
    assert!(show(&out).contains("killed"), "{}", show(&out));

    with_on_use(&env, "echo chat server says no >&2; exit 3");
    let out = use_fixture(&env, Some("INC-12"), &["true"]);
    assert!(out.status.success(), "{}", show(&out));
    let said = show(&out);
    assert!(said.contains("on_use:   FAILED"), "{said}");
    assert!(said.contains("chat server says no"), "{said}");
}

/// Self-rotation commits through the same path: it lists the session too.
#[test]
fn self_rotation_lists_the_sessions_since_the_last_rotation() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = adopted(cp, "audit-self");
    let out = bg(
        &env,
        cp,
        &["use", "alpha", "--reason", "INC-14 self", "--", "true"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = bg(&env, cp, &["rotate", "alpha", "--via", "break-glass"]);
    assert!(out.status.success(), "{}", show(&out));
    let message = env.git(&["log", "-1", "--format=%B"]);
    let line = message
        .lines()
        .find(|l| l.contains("INC-14 self"))
        .unwrap_or_else(|| panic!("the session is not in:\n{message}"));
    assert!(line.contains(PERSON), "{line}");
}
