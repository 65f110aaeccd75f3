//! The user's age identities, found where sops 3.11 looks (`age/keysource.go`
//! `loadIdentities`): an SSH key (`SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`,
//! `~/.ssh/id_rsa`), `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, the output of
//! `SOPS_AGE_KEY_CMD`, and `sops/age/keys.txt` under the user config directory.
//! Loaded once per process environment: the key command runs at most once.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How long `SOPS_AGE_KEY_CMD` may take (a password manager may ask for a touch).
const KEY_CMD_DEADLINE: Duration = Duration::from_secs(30);

pub enum Identity {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl Identity {
    pub fn as_dyn(&self) -> &dyn age::Identity {
        match self {
            Identity::X25519(i) => i,
            Identity::Ssh(i) => i,
        }
    }
}

#[derive(Default)]
pub struct Keyring {
    pub identities: Vec<Identity>,
    /// Identities found that only the sops binary can use (passphrase, plugin, ...).
    pub needs_binary: Vec<String>,
    /// Sources that failed to load, named but never quoted.
    pub problems: Vec<String>,
    /// Places looked at that had no key, as sops lists them.
    pub empty_places: Vec<String>,
}

/// The identities of this process's environment, loaded on first use and again only if
/// the variables that locate them change (tests change them within one process).
pub fn keyring() -> Arc<Keyring> {
    static CACHE: Mutex<Option<([u8; 32], Arc<Keyring>)>> = Mutex::new(None);
    let env = Env::from_process();
    let digest = env.digest();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    match cache.as_ref() {
        Some((seen, ring)) if *seen == digest => ring.clone(),
        _ => {
            let ring = Arc::new(Keyring::load(&env));
            *cache = Some((digest, ring.clone()));
            ring
        }
    }
}

/// The environment the keyring is read from (a struct so tests can build one).
pub struct Env {
    pub ssh_key_file: Option<PathBuf>,
    pub age_key: Option<Zeroizing<String>>,
    pub age_key_file: Option<PathBuf>,
    pub age_key_cmd: Option<String>,
    pub home: Option<PathBuf>,
    pub config_dir: Result<PathBuf, String>,
}

impl Default for Env {
    /// Nothing set: no key anywhere.
    fn default() -> Env {
        Env {
            ssh_key_file: None,
            age_key: None,
            age_key_file: None,
            age_key_cmd: None,
            home: None,
            config_dir: Err("not set".into()),
        }
    }
}

impl Env {
    /// Tells one environment from another without keeping `SOPS_AGE_KEY` itself.
    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
        };
        let parts = [
            path(&self.ssh_key_file),
            self.age_key.as_ref().map(|k| k.as_bytes().to_vec()),
            path(&self.age_key_file),
            self.age_key_cmd.as_ref().map(|c| c.as_bytes().to_vec()),
            path(&self.home),
            path(&self.config_dir.as_ref().ok().cloned()),
        ];
        for part in parts {
            match part {
                Some(bytes) => {
                    hash.update((bytes.len() as u64).to_le_bytes());
                    hash.update(Zeroizing::new(bytes));
                }
                None => hash.update(u64::MAX.to_le_bytes()),
            }
        }
        hash.finalize().into()
    }

    fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name);
        let home = var("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        Env {
            ssh_key_file: var("SOPS_AGE_SSH_PRIVATE_KEY_FILE").map(PathBuf::from),
            age_key: std::env::var("SOPS_AGE_KEY").ok().map(Zeroizing::new),
            age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            age_key_cmd: std::env::var("SOPS_AGE_KEY_CMD").ok(),
            config_dir: user_config_dir(home.as_deref(), var("XDG_CONFIG_HOME")),
            home,
        }
    }
}

/// Go's `os.UserConfigDir` (sops reads `XDG_CONFIG_HOME` on macOS too).
fn user_config_dir(
    home: Option<&Path>,
    xdg: Option<std::ffi::OsString>,
) -> Result<PathBuf, String> {
    if let Some(dir) = xdg.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() || cfg!(target_os = "macos") {
            Ok(dir)
        } else {
            Err("the path in $XDG_CONFIG_HOME is relative".into())
        };
    }
    let home = home.ok_or("neither $XDG_CONFIG_HOME nor $HOME is set")?;
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Application Support")
    } else {
        home.join(".config")
    })
}

impl Keyring {
    pub fn load(env: &Env) -> Keyring {
        let mut ring = Keyring::default();
        ring.load_ssh(env);
        if let Some(key) = &env.age_key {
            ring.add_identity_text("SOPS_AGE_KEY", key.as_bytes());
        } else {
            ring.empty_places.push("SOPS_AGE_KEY".into());
        }
        match &env.age_key_file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => ring.add_identity_text("SOPS_AGE_KEY_FILE", &Zeroizing::new(bytes)),
                Err(e) => ring.problems.push(format!(
                    "cannot read SOPS_AGE_KEY_FILE {}: {e}",
                    path.display()
                )),
            },
            None => ring.empty_places.push("SOPS_AGE_KEY_FILE".into()),
        }
        match &env.age_key_cmd {
            Some(cmd) => match run_key_command(cmd) {
                Ok(out) => ring.add_identity_text("SOPS_AGE_KEY_CMD", &out),
                Err(e) => ring.problems.push(e),
            },
            None => ring.empty_places.push("SOPS_AGE_KEY_CMD".into()),
        }
        ring.load_default_file(env);
        ring
    }

    fn load_ssh(&mut self, env: &Env) {
        match &env.ssh_key_file {
            Some(path) => self.add_ssh_key(path),
            None => self
                .empty_places
                .push("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into()),
        }
        let Some(home) = &env.home else {
            self.problems.push("$HOME is not set".into());
            return;
        };
        for name in ["id_ed25519", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if path.exists() {
                self.add_ssh_key(&path);
            } else {
                self.empty_places.push(path.display().to_string());
            }
        }
    }

    fn add_ssh_key(&mut self, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) => {
                self.problems
                    .push(format!("cannot read SSH key {}: {e}", path.display()));
                return;
            }
        };
        let name = Some(path.display().to_string());
        match age::ssh::Identity::from_buffer(BufReader::new(bytes.as_slice()), name) {
            Ok(id @ age::ssh::Identity::Unencrypted(_)) => self.identities.push(Identity::Ssh(id)),
            Ok(age::ssh::Identity::Encrypted(_)) => self.needs_binary.push(format!(
                "the passphrase-protected SSH key {}",
                path.display()
            )),
            Ok(age::ssh::Identity::Unsupported(_)) | Err(_) => self
                .problems
                .push(format!("{} is not an SSH key age can use", path.display())),
        }
    }

    fn load_default_file(&mut self, env: &Env) {
        let dir = match &env.config_dir {
            Ok(dir) => dir,
            Err(e) => {
                if self.identities.is_empty() {
                    self.problems.push(format!(
                        "user config directory could not be determined: {e}"
                    ));
                }
                return;
            }
        };
        let path = dir.join("sops/age/keys.txt");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let place = path.display().to_string();
                self.add_identity_text(&place, &Zeroizing::new(bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.empty_places.push(path.display().to_string());
            }
            Err(e) => self
                .problems
                .push(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// sops' `unwrapIdentities`: an age-encrypted identity file (needs a passphrase), or
    /// one identity per line, `#` comments and empty lines skipped; one bad line voids
    /// the whole source, as in sops.
    fn add_identity_text(&mut self, place: &str, bytes: &[u8]) {
        if bytes.starts_with(b"age-encryption") || bytes.starts_with(b"-----BEGIN AGE") {
            self.needs_binary
                .push(format!("the passphrase-protected identity in {place}"));
            return;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.problems.push(format!("{place} is not text"));
            return;
        };
        let mut found = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("AGE-PLUGIN-") || line.starts_with("AGE-SECRET-KEY-PQ-") {
                self.needs_binary
                    .push(format!("a plugin or post-quantum identity in {place}"));
                continue;
            }
            let parsed = line
                .strip_prefix("AGE-SECRET-KEY-1")
                .and_then(|_| line.parse::<age::x25519::Identity>().ok());
            match parsed {
                Some(id) => found.push(Identity::X25519(id)),
                None => {
                    self.problems
                        .push(format!("{place} has a line that is not an age identity"));
                    return;
                }
            }
        }
        if found.is_empty() {
            self.empty_places.push(place.to_string());
        }
        self.identities.extend(found);
    }
}

/// Runs `SOPS_AGE_KEY_CMD` (split like a shell would, no shell), stdin and stderr closed,
/// within the deadline; returns its stdout.
fn run_key_command(cmd: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let failed = |why: String| format!("SOPS_AGE_KEY_CMD failed: {why}");
    let words = shlex::split(cmd).unwrap_or_default();
    let (program, args) = words
        .split_first()
        .ok_or_else(|| failed("it cannot be parsed".into()))?;
    let mut command = Command::new(program);
    crate::subprocess::dies_with_us(&mut command);
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    let Some(mut stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("its stdout could not be read".into()));
    };
    let reader = std::thread::spawn(move || {
        // Room for any identity list, so the buffer never grows (growing leaves copies).
        let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < KEY_CMD_DEADLINE => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "it did not finish within {}s and was stopped",
                    KEY_CMD_DEADLINE.as_secs()
                )));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    if !status.success() {
        return Err(failed(format!("it exited with {status}")));
    }
    reader
        .join()
        .map_err(|_| failed("reading its output panicked".into()))?
        .map_err(|e| failed(format!("cannot read its output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway key made for this test.
    const KEY: &str = "AGE-SECRET-KEY-1H208GL7AN7GMY2GG660Z593TS3756SVEL8NNSYT0RF4JHE2Q9T9SLJ3QEV";

    fn env_with_key(text: &str) -> Env {
        Env {
            age_key: Some(Zeroizing::new(text.into())),
            config_dir: Err("none".into()),
            ..Env::default()
        }
    }

    #[test]
    fn reads_identity_lines_like_sops() {
        let ring = Keyring::load(&env_with_key(&format!("# created: now\n{KEY}\r\n\n")));
        assert_eq!(ring.identities.len(), 1);
        let ring = Keyring::load(&env_with_key(&format!("{KEY}\nnot a key\n")));
        assert!(ring.identities.is_empty(), "one bad line voids the source");
        assert!(
            ring.problems
                .iter()
                .any(|p| p.contains("not an age identity"))
        );
        let ring = Keyring::load(&env_with_key("AGE-PLUGIN-YUBIKEY-1XYZ\n"));
        assert_eq!(ring.needs_binary.len(), 1);
    }

    #[test]
    fn key_command_output_is_read_once_per_keyring() {
        let env = Env {
            age_key_cmd: Some(format!("printf '%s\\n' {KEY}")),
            config_dir: Err("none".into()),
            ..Env::default()
        };
        assert_eq!(Keyring::load(&env).identities.len(), 1);
        let env = Env {
            age_key_cmd: Some("false".into()),
            config_dir: Err("none".into()),
            ..Env::default()
        };
        let problems = Keyring::load(&env).problems;
        assert!(
            problems
                .iter()
                .any(|p| p.contains("SOPS_AGE_KEY_CMD failed"))
        );
    }

    #[test]
    fn config_dir_follows_go() {
        let home = Path::new("/home/u");
        assert_eq!(
            user_config_dir(Some(home), None).unwrap(),
            if cfg!(target_os = "macos") {
                home.join("Library/Application Support")
            } else {
                home.join(".config")
            }
        );
        assert_eq!(
            user_config_dir(Some(home), Some("/x".into())).unwrap(),
            PathBuf::from("/x")
        );
    }
}
