//! Keys, a `.sops.yaml` with one creation rule per (rule kind, recipients) pair, and the
//! real sops to encrypt and decrypt with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_dc::sops_reader::{Env, Keyring};

use crate::support::tool;

/// Every kind of rule sops has for choosing what to encrypt, as `.sops.yaml` lines.
pub const RULES: &[(&str, &str)] = &[
    ("default", ""),
    ("unencrypted_suffix", "unencrypted_suffix: _clear"),
    ("encrypted_suffix", "encrypted_suffix: _secret"),
    (
        "encrypted_regex",
        "encrypted_regex: ^(data|token|password|secret_key|metadata)$",
    ),
    (
        "unencrypted_regex",
        "unencrypted_regex: ^(name|kind|server|config)$",
    ),
    (
        "mac_only_encrypted",
        "encrypted_regex: ^(data|token|password)$\n    mac_only_encrypted: true",
    ),
];

/// Recipient sets: one age key, two age keys, an age key and an ssh-ed25519 key.
pub const RECIPIENTS: &[&str] = &["one", "two", "ssh"];

/// Which identity a reader uses.
#[derive(Clone, Copy, Debug)]
pub enum Identity {
    First,
    Second,
    Ssh,
    Stranger,
    Nothing,
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub sops: PathBuf,
    age: [(PathBuf, String); 3],
    ssh: (PathBuf, String),
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("kube-dc-sops-reader-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let age = [0, 1, 2].map(|i| age_key(&dir.path().join(format!("age-{i}.txt"))));
        let ssh = ssh_key(&dir.path().join("id_ed25519"));
        let fixture = Fixture {
            dir,
            sops: tool("sops"),
            age,
            ssh,
        };
        fixture.write_config();
        fixture
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn recipients(&self, set: &str) -> String {
        match set {
            "one" => self.age[0].1.clone(),
            "two" => format!("{},{}", self.age[0].1, self.age[1].1),
            "ssh" => format!("{},{}", self.age[0].1, self.ssh.1),
            other => panic!("unknown recipient set {other}"),
        }
    }

    fn write_config(&self) {
        let mut config = String::from("creation_rules:\n");
        for (rule, lines) in RULES {
            for set in RECIPIENTS {
                config.push_str(&format!(
                    "  - path_regex: ^{rule}/{set}/\n    age: \"{}\"\n",
                    self.recipients(set)
                ));
                if !lines.is_empty() {
                    config.push_str(&format!("    {lines}\n"));
                }
            }
        }
        config.push_str(&format!(
            "  - path_regex: ^shamir/\n    shamir_threshold: 2\n    key_groups:\n      - age: [\"{}\"]\n      - age: [\"{}\"]\n",
            self.age[0].1, self.age[1].1
        ));
        std::fs::write(self.root().join(".sops.yaml"), config).unwrap();
    }

    /// The real sops in this fixture's directory, with only the given identity.
    pub fn sops(&self, identity: Identity) -> Command {
        let mut cmd = Command::new(&self.sops);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.root().join("home"))
            .current_dir(self.root());
        match identity {
            Identity::First | Identity::Second | Identity::Stranger => {
                cmd.env("SOPS_AGE_KEY_FILE", &self.age[identity_index(identity)].0);
            }
            Identity::Ssh => {
                cmd.env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &self.ssh.0);
            }
            Identity::Nothing => {}
        }
        cmd
    }

    /// The in-process reader's keyring for the same identity.
    pub fn keyring(&self, identity: Identity) -> Keyring {
        let mut env = Env {
            home: Some(self.root().join("home")),
            ..Env::default()
        };
        match identity {
            Identity::First | Identity::Second | Identity::Stranger => {
                env.age_key_file = Some(self.age[identity_index(identity)].0.clone());
            }
            Identity::Ssh => env.ssh_key_file = Some(self.ssh.0.clone()),
            Identity::Nothing => {}
        }
        Keyring::load(&env)
    }

    /// Encrypts `plaintext` as the fleet-relative `rel` (its rule picks the recipients).
    pub fn encrypt(&self, rel: &str, plaintext: &str) -> Vec<u8> {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, plaintext).unwrap();
        let out = self
            .sops(Identity::Nothing)
            .args(["encrypt", rel])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sops encrypt {rel} failed: {}\nplaintext:\n{plaintext}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `sops decrypt` of the file at `rel`.
    pub fn sops_decrypt(&self, rel: &str, identity: Identity) -> Output {
        self.sops(identity).args(["decrypt", rel]).output().unwrap()
    }
}

fn identity_index(identity: Identity) -> usize {
    match identity {
        Identity::First => 0,
        Identity::Second => 1,
        _ => 2,
    }
}

fn age_key(path: &Path) -> (PathBuf, String) {
    let out = Command::new(tool("age-keygen"))
        .arg("-o")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "age-keygen failed");
    let text = std::fs::read_to_string(path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_string();
    (path.to_path_buf(), recipient)
}

fn ssh_key(path: &Path) -> (PathBuf, String) {
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path.to_path_buf(), public.trim().to_string())
}
