//! Shared harness for the integration tests: a hermetic environment (own HOME, no
//! inherited sops keys or Git config), a copy of fleet-fixture/, and the real tools.
//! Each test crate uses a different subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const FIXTURE_KEY: &str = "TEST-ONLY-age-key.txt";
/// `use` of the fixture's cluster alpha running `true`, with the reason `use` requires.
pub const USE_ALPHA: [&str; 8] = [
    "bootstrap",
    "break-glass",
    "use",
    "alpha",
    "--reason",
    "test",
    "--",
    "true",
];

pub mod canary;
pub mod fault_proxy;
pub mod full_disk;
pub mod many_clusters;
pub mod remote;
pub mod running;
pub mod schema;

/// Sends `sig` (e.g. `-STOP`) to process `pid`.
pub fn kill(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A finished command's exit code and output, for assertion messages.
pub fn show(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool the tests need. Never a skip: a missing tool fails the test with the fix.
pub fn tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kube-dc/tools/bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cache)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is required by this test but was not found on PATH or in ~/.cache/kube-dc/tools/bin; run `scripts/test.sh` (or scripts/install-test-deps.sh)")
        })
}

/// Runs `cmd` with `input` on its stdin; it must succeed. Its output.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", show(&out));
    out
}

/// The kube-dc binary as tests run it: a generated wrapper that `exec`s the real binary
/// (same pid, same arguments) while copying its stdout and stderr to the suite's transcript
/// directory, so that `scripts/test.sh` can check everything kube-dc printed in the whole
/// suite for canary secrets. The tee processes ignore job-control signals, so signalling
/// kube-dc's process group behaves as without the wrapper.
pub fn kube_dc_bin() -> PathBuf {
    static WRAPPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WRAPPER.get_or_init(write_wrapper).clone()
}

/// Where the transcripts go: `$KUBE_DC_TRANSCRIPT_DIR` (set by scripts/test.sh), else
/// target/tmp/transcripts.
pub fn transcript_dir() -> PathBuf {
    std::env::var_os("KUBE_DC_TRANSCRIPT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transcripts"))
}

fn write_wrapper() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = transcript_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let real = assert_cmd::cargo::cargo_bin("kube-dc");
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let script = format!(
        "#!/bin/bash\nlog={}/$$\ncopy() {{ trap '' INT TERM HUP QUIT; exec /usr/bin/tee -a \"$1\"; }}\nexec {} \"$@\" > >(copy \"$log.out\") 2> >(copy \"$log.err\" >&2)\n",
        quote(&dir),
        quote(&real)
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kube-dc-transcribed-{}", std::process::id()));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir`, relative, sorted (`.git` excluded).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A temp dir holding `home/` (the HOME of every process we start) and `fleet/`, a copy
/// of fleet-fixture/ whose recipients are the fixture's TEST-ONLY key.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub fleet: PathBuf,
    /// The age identity the tests decrypt with (the fixture's TEST-ONLY key).
    pub age_key: PathBuf,
    pub sops: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("kube-dc-test-")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let fleet = dir.path().join("fleet");
        copy_dir(&repo_root().join("fleet-fixture"), &fleet);
        let age_key = dir.path().join("age-key.txt");
        std::fs::copy(fleet.join(FIXTURE_KEY), &age_key).unwrap();
        TestEnv {
            dir,
            home,
            fleet,
            age_key,
            sops: tool("sops"),
        }
    }

    /// Makes the fleet a Git repo with everything committed.
    pub fn with_git(self) -> TestEnv {
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "fleet"]);
        self
    }

    /// Variables every process gets: nothing from the developer's environment leaks in.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let sops_dir = self.sops.parent().unwrap().to_string_lossy().into_owned();
        vec![
            (
                "PATH".into(),
                format!("{sops_dir}:/usr/local/bin:/usr/bin:/bin"),
            ),
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            (
                "KUBE_DC_SOPS".into(),
                self.sops.to_string_lossy().into_owned(),
            ),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_AUTHOR_NAME".into(), "Test Operator".into()),
            ("GIT_AUTHOR_EMAIL".into(), "operator@example.test".into()),
            ("GIT_COMMITTER_NAME".into(), "Test Operator".into()),
            ("GIT_COMMITTER_EMAIL".into(), "operator@example.test".into()),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    /// [`TestEnv::kube_dc`] as a plain process, to run in the background.
    pub fn kube_dc_process(&self) -> Command {
        let mut cmd = Command::new(kube_dc_bin());
        cmd.env_clear()
            .envs(self.base_env())
            .env("SOPS_AGE_KEY_FILE", &self.age_key)
            .current_dir(&self.fleet);
        cmd
    }

    /// `kube-dc` with the hermetic environment and the fixture key; cwd is the fleet.
    pub fn kube_dc(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(kube_dc_bin());
        cmd.env_clear()
            .envs(self.base_env())
            .env("SOPS_AGE_KEY_FILE", &self.age_key)
            .current_dir(&self.fleet);
        // `KUBE_DC_SOPS_DECRYPT=binary cargo test ...` runs the tests on the sops binary;
        // `KUBE_DC_TEST_WITHOUT_SOPS=1` runs kube-dc with no sops to find (use, status).
        if let Ok(mode) = std::env::var("KUBE_DC_SOPS_DECRYPT") {
            cmd.env("KUBE_DC_SOPS_DECRYPT", mode);
        }
        if std::env::var_os("KUBE_DC_TEST_WITHOUT_SOPS").is_some() {
            cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env_remove("KUBE_DC_SOPS");
        }
        cmd
    }

    /// The real sops, as kube-dc would run it.
    pub fn sops_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.sops);
        cmd.env_clear()
            .envs(self.base_env())
            .env("SOPS_AGE_KEY_FILE", &self.age_key)
            .current_dir(&self.fleet);
        cmd
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .env_clear()
            .envs(self.base_env())
            .current_dir(&self.fleet)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A fresh age identity that is not a recipient of anything.
    pub fn other_age_key(&self) -> PathBuf {
        let path = self.dir.path().join("other-age-key.txt");
        let out = Command::new(tool("age-keygen"))
            .arg("-o")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// Replaces `.sops.yaml` with the one of fleets set up by the Go kube-dc tool: one
    /// rule for every `*.enc.yaml`, encrypting only `data`/`stringData` (it is tuned for
    /// Secret manifests), to the fixture's recipient.
    pub fn with_kube_dc_convention_rule(self) -> TestEnv {
        let rule = format!(
            "creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {}\n",
            self.recipient()
        );
        std::fs::write(self.fleet.join(".sops.yaml"), rule).unwrap();
        self
    }

    /// A fleet as the Go kube-dc tool's users have it (tests/fixtures/go-fleet, written by
    /// that tool: scripts/regenerate-go-fixture.sh) instead of fleet-fixture's clusters.
    pub fn go_fleet() -> TestEnv {
        let env = TestEnv::new();
        std::fs::remove_dir_all(env.fleet.join("clusters")).unwrap();
        copy_dir(&repo_root().join("tests/fixtures/go-fleet"), &env.fleet);
        env
    }

    /// The fixture's age recipient, as `.sops.yaml` names it.
    pub fn recipient(&self) -> String {
        let config = std::fs::read_to_string(self.fleet.join(".sops.yaml")).unwrap();
        config
            .lines()
            .find_map(|l| l.trim().strip_prefix("age: "))
            .unwrap()
            .to_string()
    }

    /// Runs the real sops in the fleet with `args`; it must succeed. Its stdout.
    pub fn sops_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.sops_cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sops {args:?}: {stderr}");
        out.stdout
    }

    pub fn break_glass_file(&self, cluster: &str) -> PathBuf {
        self.fleet
            .join("clusters")
            .join(cluster)
            .join("break-glass-kubeconfig.enc.yaml")
    }
}

pub mod control_plane;

#[allow(unused_imports, reason = "each test crate uses a different subset")]
pub use control_plane::poll;

use control_plane::ControlPlane;

/// One control plane per test binary, shared by its tests, which take [`serial`] because
/// the break-glass objects have fixed names. A static is never dropped: the control
/// plane's watchdog (`up.sh --owner-pid`) stops it when the test process exits.
/// kube-controller-manager SIGSTOPped, so that the token controller fills no Secret,
/// until this is dropped (also when a test fails).
pub struct TokenControllerStopped(u32);

impl TokenControllerStopped {
    pub fn new(cp: &ControlPlane) -> TokenControllerStopped {
        let (_, pid) = cp
            .pids()
            .iter()
            .find(|(name, _)| name.contains("controller-manager"))
            .expect("kcm pid");
        kill("-STOP", *pid);
        TokenControllerStopped(*pid)
    }
}

impl Drop for TokenControllerStopped {
    fn drop(&mut self) {
        kill("-CONT", self.0);
    }
}

pub fn shared_control_plane() -> &'static ControlPlane {
    static CP: std::sync::OnceLock<ControlPlane> = std::sync::OnceLock::new();
    CP.get_or_init(ControlPlane::start)
}

/// Serializes tests that change the shared cluster; survives a failed (poisoned) test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `kube-dc bootstrap break-glass <args>` with the control plane's kubectl on PATH.
pub fn bg<S: AsRef<std::ffi::OsStr>>(
    env: &TestEnv,
    cp: &ControlPlane,
    args: &[S],
) -> std::process::Output {
    env.kube_dc_with_kubectl(cp)
        .args(["bootstrap", "break-glass"])
        .args(args)
        .output()
        .unwrap()
}

/// Who a working break-glass kubeconfig authenticates as.
pub const BG_USER: &str = "system:serviceaccount:kube-system:break-glass";

impl TestEnv {
    /// Decrypts `cluster`'s break-glass file with the real sops into `name` (see
    /// [`TestEnv::decrypt_to_file`]) and checks that kubectl logs in with it as the
    /// break-glass ServiceAccount; returns the file for further probes.
    pub fn break_glass_login(&self, cp: &ControlPlane, cluster: &str, name: &str) -> PathBuf {
        let kubeconfig = self.decrypt_to_file(cluster, name);
        let who = cp.whoami(&kubeconfig);
        assert_eq!(text(&who.stdout), BG_USER, "{cluster}: {}", show(&who));
        kubeconfig
    }

    /// `kube-dc` that can also find the control plane's kubectl.
    pub fn kube_dc_with_kubectl(&self, cp: &ControlPlane) -> assert_cmd::Command {
        let mut cmd = self.kube_dc();
        let path = self
            .base_env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .unwrap()
            .1;
        cmd.env("PATH", format!("{}:{path}", cp.bin_dir().display()));
        cmd
    }

    /// Decrypts a break-glass file with the real sops (not kube-dc) into a 0600 file
    /// outside the fleet, for kubectl.
    pub fn decrypt_to_file(&self, cluster: &str, name: &str) -> PathBuf {
        let rel = format!("clusters/{cluster}/break-glass-kubeconfig.enc.yaml");
        let out = self.sops_cmd().args(["decrypt", &rel]).output().unwrap();
        assert!(
            out.status.success(),
            "sops decrypt {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        path
    }
}

impl TestEnv {
    /// The token in an encrypted break-glass kubeconfig (e.g. a file from another clone or
    /// from the remote), decrypted with the real sops outside the fleet. For comparisons
    /// only: never print it.
    pub fn token_in_ciphertext(&self, ciphertext: &[u8]) -> String {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = self.dir.path().join(format!(
            "compare-{}.enc.yaml",
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, ciphertext).unwrap();
        let out = self
            .sops_cmd()
            .args(["decrypt", "--input-type", "yaml", "--output-type", "yaml"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "sops decrypt: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: ").map(String::from))
            .expect("a token in the decrypted kubeconfig")
    }
}
