//! `use` removes the decrypted kubeconfig on every exit path: signals to kube-dc, and a
//! SIGKILL (swept by the next run). Uses the fixture's alpha file: no cluster needed.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::TestEnv;

fn start_session(env: &TestEnv, marker: &str) -> Child {
    Command::new(support::kube_dc_bin())
        .env_clear()
        .envs(env.base_env())
        .env("SOPS_AGE_KEY_FILE", &env.age_key)
        .current_dir(&env.fleet)
        // The child records its pid so the test can check it is gone too.
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
        ])
        .arg(format!("echo $$ > {marker}; exec sleep 60"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Everything in the session directory: kubeconfigs and their child records.
fn session_entries(env: &TestEnv) -> Vec<PathBuf> {
    match std::fs::read_dir(env.home.join(".kube-dc/break-glass")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn session_files(env: &TestEnv) -> Vec<PathBuf> {
    let mut files = session_entries(env);
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    support::poll(what, Duration::from_secs(20), || ready().then_some(()));
}

fn alive(pid: i32) -> bool {
    // Zombies count as gone: they hold no file and run no code.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Starts a session, waits for its file and child, and returns (session, file, child pid).
fn running_session(env: &TestEnv) -> (Child, PathBuf, i32) {
    let marker = env.dir.path().join("child.pid");
    let _ = std::fs::remove_file(&marker);
    let session = start_session(env, marker.to_str().unwrap());
    wait_until("the session child", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n'))
    });
    let child: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let files = session_files(env);
    assert_eq!(files.len(), 1, "{files:?}");
    (session, files[0].clone(), child)
}

#[test]
fn session_file_is_private_while_the_session_runs() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let (mut session, file, _) = running_session(&env);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert!(
        file.starts_with(&env.home),
        "not under HOME: {}",
        file.display()
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("kind: Config")
    );
    session.kill().unwrap();
    session.wait().unwrap();
}

#[test]
fn sigint_sigterm_sighup_remove_the_file_and_reach_the_child() {
    for (signal, number) in [("-INT", 2), ("-TERM", 15), ("-HUP", 1)] {
        let env = TestEnv::new();
        let (mut session, file, child) = running_session(&env);
        let status = Command::new("kill")
            .args([signal, &session.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = session.wait().unwrap();
        assert_eq!(exit.code(), Some(128 + number), "{signal}");
        assert!(!file.exists(), "{signal}: {} still exists", file.display());
        assert_eq!(session_entries(&env), Vec::<PathBuf>::new(), "{signal}");
        wait_until("the child to exit", || !alive(child));
        let mut stderr = String::new();
        std::io::Read::read_to_string(session.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains("kube-dc bootstrap break-glass rotate alpha"),
            "{signal}: {stderr}"
        );
    }
}

#[test]
fn after_sigkill_the_next_run_sweeps_the_file() {
    let env = TestEnv::new();
    let (mut session, file, child) = running_session(&env);
    session.kill().unwrap(); // SIGKILL: kube-dc cannot clean up
    session.wait().unwrap();
    assert!(file.exists(), "nothing should have removed it yet");
    let _ = Command::new("kill")
        .args(["-KILL", &child.to_string()])
        .status();

    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file.exists(), "the stale session file was not swept");
    assert_eq!(session_entries(&env), Vec::<PathBuf>::new());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("removed 1 decrypted break-glass kubeconfig(s) left by killed sessions"),
        "{stderr}"
    );
}

fn status_alpha(env: &TestEnv) -> String {
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn after_sigkill_the_file_stays_while_the_child_runs() {
    let env = TestEnv::new();
    let (mut session, file, child) = running_session(&env);
    // The child records itself before it runs any code of its own: by the time it wrote
    // its marker, the record is there, so no SIGKILL can fall between the two.
    assert_eq!(
        session_entries(&env).len(),
        2,
        "{:?}",
        session_entries(&env)
    );
    session.kill().unwrap(); // SIGKILL: kube-dc cannot clean up, its shell runs on
    session.wait().unwrap();
    let stderr = status_alpha(&env);
    assert!(file.exists(), "swept under the running child: {stderr}");
    assert!(!stderr.contains("removed"), "{stderr}");
    assert!(alive(child));
    let _ = Command::new("kill")
        .args(["-KILL", &child.to_string()])
        .status();
    wait_until("the child to exit", || !alive(child));
    let stderr = status_alpha(&env);
    assert!(!file.exists(), "not swept after the child ended: {stderr}");
    assert_eq!(session_entries(&env), Vec::<PathBuf>::new());
    assert!(stderr.contains("removed 1 decrypted"), "{stderr}");
}

#[test]
fn a_looser_session_directory_is_repaired() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let dir = env.home.join(".kube-dc/break-glass");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .kube_dc()
        .args(crate::support::USE_ALPHA)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("was mode 755; repaired to 700"));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}
