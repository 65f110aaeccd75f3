//! The table runner of the hostile-input suite. A [`Case`] plants its hostile input in a
//! [`Scene`] (a [`TestEnv`]: fleet copy, HOME, age key), runs kube-dc once, and is judged
//! on five things: exit code, message, no canary in the output, no unexpected file
//! change under the scene, and time. [`run_table`] runs every case of a table and then
//! fails once, listing every case that failed and why.

// Each class of cases uses a different subset of the scene helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, TestEnv, canary, full_disk};

const DEFAULT_BOUND: Duration = Duration::from_secs(20);

/// Where a case runs: the test environment plus what the case adds to kube-dc's process.
pub struct Scene {
    pub env: TestEnv,
    vars: Vec<(String, String)>,
    removed_vars: Vec<String>,
    cwd: Option<PathBuf>,
    stdin: Vec<u8>,
    /// Filesystems mounted by [`Scene::full_filesystem`], unmounted when the scene goes.
    mounts: Vec<PathBuf>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.mounts.iter().for_each(|dir| full_disk::unmount(dir));
    }
}

impl Scene {
    fn new() -> Scene {
        Scene {
            env: TestEnv::new(),
            vars: Vec::new(),
            removed_vars: Vec::new(),
            cwd: None,
            stdin: Vec::new(),
            mounts: Vec::new(),
        }
    }

    /// The scene's root: holds `home/`, `fleet/` and the age key.
    pub fn root(&self) -> &Path {
        self.env.dir.path()
    }

    /// A path below the scene's root, e.g. `fleet/clusters/alpha/cluster-config.env`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes `content` to `rel` (below the scene's root), creating parent directories.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Writes an executable script (e.g. a fake sops or a credential plugin).
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(rel, format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Removes `rel` (file, link or directory tree).
    pub fn remove(&self, rel: &str) {
        let path = self.path(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            Ok(_) => std::fs::remove_file(&path).unwrap(),
            Err(_) => {}
        }
    }

    /// Replaces `rel` with a symlink to `target` (taken literally).
    pub fn symlink(&self, rel: &str, target: impl AsRef<Path>) {
        self.remove(rel);
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    /// Replaces `rel` with a FIFO.
    pub fn fifo(&self, rel: &str) {
        self.remove(rel);
        nix::unistd::mkfifo(
            &self.path(rel),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }

    /// Makes `rel` (a directory) a full filesystem, for real (see [`full_disk`]): only
    /// after [`full_disk::private_mount_namespace`] in the test thread.
    pub fn full_filesystem(&mut self, rel: &str) {
        let dir = self.path(rel);
        full_disk::mount_full_tmpfs(&dir, &[]);
        self.mounts.push(dir);
    }

    /// Sets an environment variable for kube-dc (over the hermetic defaults).
    pub fn var(&mut self, key: &str, value: impl Into<String>) {
        self.vars.push((key.into(), value.into()));
    }

    /// Removes a variable of the hermetic defaults (e.g. `SOPS_AGE_KEY_FILE`).
    pub fn unset(&mut self, key: &str) {
        self.removed_vars.push(key.into());
    }

    /// Runs kube-dc in `rel` (below the scene's root) instead of the fleet.
    pub fn cwd(&mut self, rel: &str) {
        self.cwd = Some(self.path(rel));
    }

    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) {
        self.stdin = bytes.into();
    }

    /// Commits the fleet as it is now (makes it a Git repo first if needed).
    pub fn commit_all(&self) {
        if !self.path("fleet/.git").exists() {
            self.env.git(&["init", "-q", "-b", "main"]);
        }
        self.env.git(&["add", "-A"]);
        self.env
            .git(&["commit", "-q", "--allow-empty", "-m", "scene"]);
    }

    fn command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new(support::kube_dc_bin());
        cmd.env_clear()
            .envs(self.env.base_env())
            .env("SOPS_AGE_KEY_FILE", &self.env.age_key);
        for key in &self.removed_vars {
            cmd.env_remove(key);
        }
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.cwd.as_deref().unwrap_or(&self.env.fleet))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a run past its bound is killed with its children.
            .process_group(0);
        cmd
    }
}

type Setup = Box<dyn Fn(&mut Scene)>;

/// One hostile input and what kube-dc must do with it.
pub struct Case {
    name: String,
    setup: Vec<Setup>,
    args: Vec<String>,
    exit: Option<i32>,
    says: Vec<String>,
    bound: Duration,
    may_change: Vec<String>,
}

impl Case {
    pub fn new(name: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            setup: Vec::new(),
            args: Vec::new(),
            exit: None,
            says: Vec::new(),
            bound: DEFAULT_BOUND,
            may_change: Vec::new(),
        }
    }

    /// Plants the hostile input (runs before the snapshot that changes are judged against).
    pub fn setup(mut self, f: impl Fn(&mut Scene) + 'static) -> Case {
        self.setup.push(Box::new(f));
        self
    }

    /// kube-dc's arguments (without the program name).
    pub fn args<I, S>(mut self, args: I) -> Case
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The exit code kube-dc must end with (required).
    pub fn exit(mut self, code: i32) -> Case {
        self.exit = Some(code);
        self
    }

    /// Text that must appear in stdout or stderr (repeatable; all must appear).
    pub fn says(mut self, text: impl Into<String>) -> Case {
        self.says.push(text.into());
        self
    }

    /// The longest the run may take; it is killed (and fails) past it.
    pub fn within(mut self, bound: Duration) -> Case {
        self.bound = bound;
        self
    }

    /// A path below the scene's root that may be created, changed or removed; a trailing
    /// `/` allows everything below a directory.
    pub fn may_change(mut self, rel: impl Into<String>) -> Case {
        self.may_change.push(rel.into());
        self
    }

    /// Everything wrong with a finished run, given the paths it changed.
    fn judge(&self, run: &Run, changes: Vec<String>) -> Vec<String> {
        let expected_exit = self.exit.unwrap_or(0);
        let mut problems = Vec::new();
        if run.timed_out {
            problems.push(format!("still running after {:?}: killed", self.bound));
        } else if run.code != Some(expected_exit) {
            problems.push(format!("exit {:?}, expected {expected_exit}", run.code));
        }
        if run.left_running {
            problems.push("a process it started was still running after it exited".into());
        }
        let output = format!("{}{}", run.stdout, run.stderr);
        for text in &self.says {
            if !output.contains(text.as_str()) {
                problems.push(format!("the output does not say {text:?}"));
            }
        }
        if let Some(piece) = canary::leaked(&output) {
            problems.push(format!("the output contains a canary secret ({piece:?})"));
        }
        for path in changes {
            if !self.may_change.iter().any(|allowed| covers(allowed, &path)) {
                problems.push(format!("{path} changed"));
            }
        }
        problems
    }

    /// Runs the case; `Err` says everything that went wrong.
    fn run(&self) -> Result<(), String> {
        self.exit
            .ok_or("the case names no expected exit code (call .exit(n))")?;
        let mut scene = Scene::new();
        for setup in &self.setup {
            setup(&mut scene);
        }
        let before = snapshot(scene.root());
        let run = execute(scene.command(&self.args), &scene.stdin, self.bound)?;
        let after = snapshot(scene.root());
        let problems = self.judge(&run, changed(&before, &after));
        if problems.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}\n  took {:?}\n  stdout: {}\n  stderr: {}",
            problems.join("\n  "),
            run.elapsed,
            excerpt(&run.stdout),
            excerpt(&run.stderr)
        ))
    }
}

/// Starts kube-dc in a fresh scene prepared by `setup`, for tests that act on it while it
/// runs; its output is collected by the caller's [`std::process::Child`] pipes.
pub fn start(setup: impl Fn(&mut Scene), args: &[String]) -> (Scene, std::process::Child) {
    let mut scene = Scene::new();
    setup(&mut scene);
    let child = scene
        .command(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start kube-dc");
    (scene, child)
}

/// Runs every case (none stops another) and fails once with all failures listed.
pub fn run_table(cases: Vec<Case>) {
    assert!(!cases.is_empty(), "an empty table tests nothing");
    let total = cases.len();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            case.run()
                .err()
                .map(|why| format!("case {:?}:\n  {why}", case.name))
        })
        .collect();
    eprintln!("{} of {total} hostile cases passed", total - failures.len());
    assert!(
        failures.is_empty(),
        "{} of {total} hostile cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
    /// A process kube-dc started still held its output 5 s after it exited.
    left_running: bool,
}

fn execute(mut cmd: Command, stdin: &[u8], bound: Duration) -> Result<Run, String> {
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start kube-dc: {e}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    // A writer thread, so that a kube-dc that never reads cannot block the harness.
    std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut input, &stdin);
    });
    let stdout = reader(child.stdout.take().expect("piped stdout"));
    let stderr = reader(child.stderr.take().expect("piped stderr"));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > bound {
            timed_out = true;
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    // The pipes close when the transcript copies have passed on the last bytes; a child
    // that kube-dc left running could hold them open, so that wait is bounded too.
    let collect_by = Instant::now() + Duration::from_secs(5);
    let stdout = stdout.recv_timeout(collect_by.saturating_duration_since(Instant::now()));
    let stderr = stderr.recv_timeout(collect_by.saturating_duration_since(Instant::now()));
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let left_running = stdout.is_err() || stderr.is_err();
    Ok(Run {
        code: status.code(),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
        elapsed,
        timed_out,
        left_running,
    })
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

/// What a path is, without opening anything but regular files (a FIFO must not block
/// the harness either).
#[derive(PartialEq, Eq, Debug)]
enum Entry {
    File { mode: u32, content: Vec<u8> },
    Link(PathBuf),
    Dir(u32),
    Other(u32),
}

/// Every entry below `root`, by relative path, links not followed.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.mode();
            let kind = meta.file_type();
            let value = if kind.is_symlink() {
                Entry::Link(std::fs::read_link(&path).unwrap_or_default())
            } else if kind.is_dir() {
                walk(root, &path, out);
                Entry::Dir(mode)
            } else if kind.is_file() {
                Entry::File {
                    mode,
                    content: std::fs::read(&path).unwrap_or_default(),
                }
            } else {
                debug_assert!(kind.is_fifo() || kind.is_socket() || kind.is_char_device());
                Entry::Other(mode)
            };
            out.insert(rel, value);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Git may refresh its index while only reading; that is not a change to the fleet.
const NOT_A_CHANGE: &[&str] = &["fleet/.git/index"];

fn changed(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut paths: Vec<String> = before
        .iter()
        .filter(|(path, entry)| after.get(*path) != Some(entry))
        .map(|(path, _)| path.clone())
        .collect();
    paths.extend(after.keys().filter(|p| !before.contains_key(*p)).cloned());
    paths.retain(|p| !NOT_A_CHANGE.contains(&p.as_str()));
    paths.sort();
    paths
}

fn covers(allowed: &str, path: &str) -> bool {
    match allowed.strip_suffix('/') {
        Some(dir) => path == dir || path.starts_with(allowed),
        None => path == allowed,
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 1500;
    let text = text.trim_end();
    if text.len() <= MAX {
        return text.to_string();
    }
    let cut = (0..=MAX)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

/// The runner must be able to fail: each judgement is shown to catch what it is for.
mod self_check {
    use super::*;

    fn use_alpha(shell: &str) -> Case {
        Case::new("self-check")
            .args([
                "bootstrap",
                "break-glass",
                "use",
                "alpha",
                "--reason",
                "test",
                "--",
                "sh",
                "-c",
                shell,
            ])
            .may_change("home/.kube-dc/")
    }

    #[test]
    fn a_well_behaved_run_passes() {
        use_alpha("exit 3")
            .exit(3)
            .says("BREAK-GLASS ACTIVE")
            .run()
            .unwrap();
    }

    #[test]
    fn each_judgement_catches_its_fault() {
        let err = use_alpha("exit 3").exit(0).run().unwrap_err();
        assert!(err.contains("exit Some(3), expected 0"), "{err}");
        let err = use_alpha("true")
            .exit(0)
            .says("no such text")
            .run()
            .unwrap_err();
        assert!(err.contains("does not say \"no such text\""), "{err}");
        let err = use_alpha("echo x > \"$HOME/planted\"")
            .exit(0)
            .run()
            .unwrap_err();
        assert!(err.contains("home/planted changed"), "{err}");
        let started = Instant::now();
        let err = use_alpha("sleep 30")
            .exit(0)
            .within(Duration::from_secs(1))
            .run()
            .unwrap_err();
        assert!(err.contains("killed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// Judged on a made-up run: a real one would put the canary into the suite's
    /// transcripts, which scripts/check-canaries.sh rightly rejects.
    #[test]
    fn a_canary_in_the_output_fails_the_case() {
        let run = Run {
            code: Some(0),
            stdout: format!("token: {}\n", canary::TOKEN),
            stderr: String::new(),
            elapsed: Duration::from_millis(5),
            timed_out: false,
            left_running: false,
        };
        let problems = use_alpha("true").exit(0).judge(&run, Vec::new());
        assert!(
            problems.iter().any(|p| p.contains("canary secret")),
            "{problems:?}"
        );
    }
}
