//! A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) on
//! loopback for integration tests. std only.
//!
//! ```ignore
//! #[path = "support/control_plane.rs"]
//! mod control_plane;
//! let cp = control_plane::ControlPlane::start();
//! let out = cp.kubectl(cp.admin_kubeconfig()).args(["get", "ns"]).output().unwrap();
//! ```
//!
//! Binaries come from `$KUBE_DC_K8S_BIN`, else from `scripts/control-plane/build.sh`
//! (builds once from the Go module proxy, then answers from its cache in well under a second).
//! `start` never skips: when the control plane cannot start it panics with the log tail.
//! Teardown happens in `Drop` (success, failure, unwinding panic); `up.sh --owner-pid`
//! adds a watchdog that tears down when this test process dies without unwinding
//! (Ctrl-C, SIGKILL, `panic = "abort"`). Set `KUBE_DC_CP_KEEP=1` to keep the state dir.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A running control plane; stopped (and its directory removed) on drop.
pub struct ControlPlane {
    dir: PathBuf,
    bin_dir: PathBuf,
    env: HashMap<String, String>,
    pids: Vec<(String, u32)>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scripts_dir() -> PathBuf {
    repo_root().join("scripts").join("control-plane")
}

fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `what()` once it is `Some`, polled every 50 ms for up to `limit`; fails naming `waiting_for`.
pub fn poll<T>(
    waiting_for: &str,
    limit: std::time::Duration,
    mut what: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = what() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited {limit:?} for {waiting_for}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The directory holding etcd, kube-apiserver, kube-controller-manager and kubectl.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBE_DC_K8S_BIN").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let script = scripts_dir().join("build.sh");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "{} failed, so the Kubernetes control plane for this test cannot be built.\n\
             It needs Go >= 1.26 and the Go module proxy (or set KUBE_DC_K8S_BIN to a directory \
             with etcd, kube-apiserver, kube-controller-manager and kubectl).\n{}",
            script.display(),
            show(&out)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("").trim();
    if last.is_empty() {
        panic!("{} printed no bin dir\n{}", script.display(), show(&out));
    }
    PathBuf::from(last)
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "kube-dc-cp-{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    ))
}

/// Parse up.sh's `DIR/env`: `KEY='value'` lines (values never contain quotes).
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

fn parse_pids(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter_map(|l| {
            let (name, pid) = l.trim().split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

/// True if `pid` exists and is not a zombie (Linux /proc).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // "pid (comm) S ..." — comm may contain spaces and parentheses.
            let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            !after.starts_with('Z')
        }
        Err(_) => false,
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

impl ControlPlane {
    /// Start a fresh control plane in a new temp dir. Panics (with the log tail) if it
    /// cannot start. Takes a few seconds when the binaries are cached.
    pub fn start() -> ControlPlane {
        let bin_dir = bin_dir();
        let dir = unique_dir();
        let up = scripts_dir().join("up.sh");
        let out = Command::new(&up)
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .env("KUBE_DC_K8S_BIN", &bin_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", up.display()));
        if !out.status.success() {
            panic!(
                "the Kubernetes control plane did not start ({} {}).\n{}",
                up.display(),
                dir.display(),
                show(&out)
            );
        }
        let env_text = fs::read_to_string(dir.join("env")).unwrap_or_else(|e| {
            panic!(
                "up.sh succeeded but {}/env is unreadable: {e}\n{}",
                dir.display(),
                show(&out)
            )
        });
        let pids = parse_pids(&fs::read_to_string(dir.join("pids")).unwrap_or_default());
        let cp = ControlPlane {
            dir,
            bin_dir,
            env: parse_env(&env_text),
            pids,
        };
        for key in [
            "KUBE_APISERVER_URL",
            "ADMIN_KUBECONFIG",
            "NOBODY_KUBECONFIG",
        ] {
            if cp.env.get(key).is_none_or(|v| v.is_empty()) {
                panic!("{} misses {key}:\n{env_text}", cp.dir.join("env").display());
            }
        }
        cp
    }

    /// The state directory (PKI, etcd data, logs, kubeconfigs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `https://127.0.0.1:PORT`
    pub fn server_url(&self) -> &str {
        &self.env["KUBE_APISERVER_URL"]
    }

    /// Kubeconfig of `kube-dc-admin` in group `system:masters`.
    pub fn admin_kubeconfig(&self) -> &Path {
        Path::new(&self.env["ADMIN_KUBECONFIG"])
    }

    /// Kubeconfig of `nobody`: authenticated, no RBAC rights.
    pub fn nobody_kubeconfig(&self) -> &Path {
        Path::new(&self.env["NOBODY_KUBECONFIG"])
    }

    /// PEM of the cluster CA (the one in every kubeconfig and in token Secrets' ca.crt).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("pki").join("ca.crt")
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// `(name, pid)` of every process started for this control plane (incl. the watchdog).
    pub fn pids(&self) -> &[(String, u32)] {
        &self.pids
    }

    /// The built kubectl with `KUBECONFIG=kubeconfig` and an isolated `HOME`.
    pub fn kubectl(&self, kubeconfig: impl AsRef<Path>) -> Command {
        let home = self.dir.join("home");
        let _ = fs::create_dir_all(&home);
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.env("KUBECONFIG", kubeconfig.as_ref())
            .env("HOME", &home)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .arg("--request-timeout=20s")
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl auth whoami` with `kubeconfig`: stdout is the user name on success.
    pub fn whoami(&self, kubeconfig: impl AsRef<Path>) -> Output {
        self.kubectl(kubeconfig)
            .args([
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"))
    }

    /// Polls `whoami` with `kubeconfig` until the apiserver rejects it as unauthorized,
    /// for at most 30 s (it caches successful token reviews for 10 s).
    pub fn assert_rejected(&self, kubeconfig: impl AsRef<Path>) {
        let kubeconfig = kubeconfig.as_ref();
        let rejected = poll(
            &format!("{} to be rejected", kubeconfig.display()),
            std::time::Duration::from_secs(30),
            || Some(self.whoami(kubeconfig)).filter(|out| !out.status.success()),
        );
        let err = String::from_utf8_lossy(&rejected.stderr);
        assert!(
            err.contains("Unauthorized") || err.contains("must be logged in"),
            "{} was refused, but not as unauthorized: {}",
            kubeconfig.display(),
            show(&rejected)
        );
    }

    /// Deletes the break-glass objects of `kube-system` (token Secret, ServiceAccount,
    /// ClusterRoleBinding, rotation Lease), so a test starts from a cluster that never saw
    /// them.
    pub fn remove_break_glass_objects(&self) {
        for object in [
            "secret/break-glass-token",
            "serviceaccount/break-glass",
            "clusterrolebinding/break-glass",
            "lease/break-glass-rotation",
        ] {
            let out = self
                .kubectl(self.admin_kubeconfig())
                .args(["delete", "-n", "kube-system", object])
                .args(["--ignore-not-found", "--wait"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
            assert!(out.status.success(), "{}", show(&out));
        }
    }

    /// A field (`jsonpath`, e.g. `{.metadata.uid}`) of a Secret, read with the admin
    /// login; `None` when the Secret does not exist.
    pub fn secret_field(&self, namespace: &str, name: &str, jsonpath: &str) -> Option<String> {
        let out = self
            .kubectl(self.admin_kubeconfig())
            .args(["get", "secret", "-n", namespace, name])
            .arg(format!("-o=jsonpath={jsonpath}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The token a token Secret holds now, decoded (for comparisons; never print it).
    pub fn secret_token(&self, namespace: &str, name: &str) -> String {
        use base64::Engine;
        let data = self
            .secret_field(namespace, name, "{.data.token}")
            .unwrap_or_else(|| panic!("Secret {namespace}/{name} does not exist"));
        let token = base64::prelude::BASE64_STANDARD
            .decode(data)
            .expect("base64 token");
        String::from_utf8(token).expect("a UTF-8 token")
    }

    /// SIGKILLs kube-apiserver and starts it again with the same command line, as up.sh
    /// starts it (its own session, log appended, pid recorded for down.sh and the
    /// watchdog); returns once it answers /readyz again. `between` runs while it is down.
    pub fn restart_apiserver(&self, between: impl FnOnce()) {
        let pids = self.dir.join("pids");
        let pid = parse_pids(&fs::read_to_string(&pids).unwrap())
            .into_iter()
            .rev()
            .find(|(name, pid)| name == "kube-apiserver" && pid_alive(*pid))
            .expect("a running kube-apiserver")
            .1;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        while pid_alive(pid) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        between();
        let log = || {
            fs::OpenOptions::new()
                .append(true)
                .open(self.dir.join("logs/kube-apiserver.log"))
                .unwrap()
        };
        let mut child = Command::new("setsid")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            .spawn()
            .unwrap();
        let mut record = fs::OpenOptions::new().append(true).open(&pids).unwrap();
        std::io::Write::write_all(
            &mut record,
            format!("kube-apiserver {}\n", child.id()).as_bytes(),
        )
        .unwrap();
        // Reaped when down.sh (or the watchdog) stops it.
        std::thread::spawn(move || child.wait());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ready = self
                .kubectl(self.admin_kubeconfig())
                .args(["get", "--raw", "/readyz"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kube-apiserver did not come back:\n{}",
                self.log_tail()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// The last lines of every log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "watchdog",
        ] {
            let path = self.dir.join("logs").join(format!("{name}.log"));
            if path.exists() {
                s.push_str(&format!(
                    "----- last 30 lines of {} -----\n",
                    path.display()
                ));
                s.push_str(&tail(&path, 30));
                s.push('\n');
            }
        }
        s
    }

    /// Stop now (also what `Drop` does).
    fn stop(&mut self) {
        if !self.dir.exists() {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "control plane logs ({}):\n{}",
                self.dir.display(),
                self.log_tail()
            );
        }
        let keep = std::env::var_os("KUBE_DC_CP_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        let mut cmd = Command::new(scripts_dir().join("down.sh"));
        cmd.arg(&self.dir).stdin(Stdio::null());
        if keep {
            cmd.arg("--keep");
            eprintln!("KUBE_DC_CP_KEEP: keeping {}", self.dir.display());
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: down.sh {} failed\n{}",
                self.dir.display(),
                show(&out)
            ),
            Err(e) => eprintln!("warning: cannot run down.sh: {e}"),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}
