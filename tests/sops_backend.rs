//! The sops backend against the real `sops` and `age`: round trip, no plaintext on disk,
//! each failure mapped to its message, and fail-closed encryption.

mod support;

use std::path::Path;

use kube_dc::breakglass::sealed_file;
use kube_dc::fleet::{Fleet, Source};
use kube_dc::kubeconfig::BreakGlassCredential;
use kube_dc::sops::Sops;
use secrecy::{ExposeSecret, SecretString};
use support::{TestEnv, files_under};

const TOKEN: &str = "test-token-9f8e7d6c5b4a";

fn credential() -> BreakGlassCredential {
    BreakGlassCredential {
        server: "https://kube-api.beta.example.test:6443".into(),
        ca_pem: b"-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n".to_vec(),
        token: SecretString::from(TOKEN),
    }
}

/// Runs `f` with the test's environment for sops (our process env is what sops inherits).
/// Tests in this file run one at a time because the environment is process-wide.
fn with_sops_env<T>(env: &TestEnv, key: Option<&Path>, f: impl AsyncFnOnce(Sops, Fleet) -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: serialized by LOCK; no other thread of this test binary reads the env meanwhile.
    unsafe {
        for (k, _) in std::env::vars() {
            if k.starts_with("SOPS_") {
                std::env::remove_var(k);
            }
        }
        std::env::set_var("HOME", &env.home);
        std::env::set_var("KUBE_DC_SOPS", &env.sops);
        match key {
            Some(k) => std::env::set_var("SOPS_AGE_KEY_FILE", k),
            None => std::env::remove_var("SOPS_AGE_KEY_FILE"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fleet = Fleet::open(&env.fleet, Source::Flag).unwrap();
        let sops = Sops::locate(fleet.root()).await.unwrap();
        f(sops, fleet).await
    })
}

#[test]
fn round_trip_through_real_sops_and_age() {
    let env = TestEnv::new();
    with_sops_env(&env, Some(&env.age_key), async |sops, fleet| {
        let beta = fleet.cluster("beta").unwrap();
        sealed_file::seal(&sops, &beta, &credential())
            .await
            .unwrap();
        let text = std::fs::read_to_string(env.break_glass_file("beta")).unwrap();
        assert!(
            !text.contains(TOKEN),
            "token in clear in the encrypted file"
        );
        assert!(
            text.contains("sops:") && text.contains("ENC[AES256_GCM"),
            "{text}"
        );
        let back = sealed_file::open(&sops, &beta).await.unwrap();
        assert_eq!(back.token.expose_secret(), TOKEN);
        assert_eq!(back.server, credential().server);
        assert_eq!(back.ca_pem, credential().ca_pem);
    });
    // And the real sops CLI (not our code) reads it back.
    let out = env
        .sops_cmd()
        .args(["decrypt", "clusters/beta/break-glass-kubeconfig.enc.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(TOKEN));
}

#[test]
fn no_plaintext_file_in_the_fleet_during_or_after_encryption() {
    let env = TestEnv::new();
    // A sops wrapper records the fleet tree while the real sops holds the plaintext.
    let snapshot = env.dir.path().join("during.txt");
    let wrapper = env.dir.path().join("sops-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfind {fleet} -type f >> {snap}\ngrep -rl {TOKEN} {fleet} >> {snap}.leaks\nexec {sops} \"$@\"\n",
            fleet = env.fleet.display(),
            snap = snapshot.display(),
            sops = env.sops.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let before = files_under(&env.fleet);
    let mut env = env;
    env.sops = wrapper;
    with_sops_env(&env, Some(&env.age_key), async |sops, fleet| {
        sealed_file::seal(&sops, &fleet.cluster("eu/dc1").unwrap(), &credential())
            .await
            .unwrap();
    });
    let during = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        during.lines().count() >= before.len(),
        "the wrapper ran: {during}"
    );
    for line in during.lines() {
        let rel = Path::new(line)
            .strip_prefix(&env.fleet)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            before.contains(&rel),
            "unexpected file {rel} in the fleet while sops ran"
        );
    }
    let leaks = std::fs::read_to_string(snapshot.with_extension("txt.leaks")).unwrap_or_default();
    assert!(
        leaks.is_empty(),
        "files holding the token while sops ran: {leaks}"
    );
    let mut after = before.clone();
    after.push("clusters/eu/dc1/break-glass-kubeconfig.enc.yaml".into());
    after.sort();
    assert_eq!(files_under(&env.fleet), after);
    assert!(
        !std::fs::read_to_string(env.break_glass_file("eu/dc1"))
            .unwrap()
            .contains(TOKEN)
    );
}

#[test]
fn rule_with_data_only_encrypted_regex_fails_closed() {
    let env = TestEnv::new();
    // The rule the Go tool leaked tokens with: only data/stringData get encrypted.
    let config = std::fs::read_to_string(env.fleet.join(".sops.yaml")).unwrap();
    let recipient = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("age: "))
        .unwrap()
        .to_string();
    std::fs::write(
        env.fleet.join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: ^clusters/\n    encrypted_regex: ^(data|stringData)$\n    age: {recipient}\n"),
    )
    .unwrap();
    let old = std::fs::read(env.break_glass_file("alpha")).unwrap();
    let err = with_sops_env(&env, Some(&env.age_key), async |sops, fleet| {
        sealed_file::seal(&sops, &fleet.cluster("alpha").unwrap(), &credential())
            .await
            .unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        msg.contains("refusing to write clusters/alpha/break-glass-kubeconfig.enc.yaml"),
        "{msg}"
    );
    assert!(
        msg.contains("users[0].user.token") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN), "the error shows the token: {msg}");
    assert_eq!(
        std::fs::read(env.break_glass_file("alpha")).unwrap(),
        old,
        "old file replaced"
    );
}

fn decrypt_error(env: &TestEnv, key: Option<&Path>, cluster: &str) -> String {
    with_sops_env(env, key, async |sops, fleet| {
        sealed_file::open(&sops, &fleet.cluster(cluster).unwrap())
            .await
            .unwrap_err()
            .to_string()
    })
}

#[test]
fn no_age_key_says_where_keys_are_looked_for() {
    let env = TestEnv::new();
    let msg = decrypt_error(&env, None, "alpha");
    assert!(
        msg.contains(
            "cannot decrypt clusters/alpha/break-glass-kubeconfig.enc.yaml: no usable age key"
        ),
        "{msg}"
    );
    // The in-process reader lists where it looked, as sops does.
    assert!(
        msg.contains("Did not find keys in") && msg.contains("SOPS_AGE_KEY_FILE"),
        "{msg}"
    );
}

#[test]
fn wrong_age_key_is_named_as_such() {
    let env = TestEnv::new();
    let other = env.other_age_key();
    let msg = decrypt_error(&env, Some(&other), "alpha");
    assert!(
        msg.contains("your age key is not one of the file's recipients"),
        "{msg}"
    );
    assert!(msg.contains("sops updatekeys"), "{msg}");
}

#[test]
fn tampered_value_and_mac_mismatch() {
    let env = TestEnv::new();
    let path = env.break_glass_file("alpha");
    let original = std::fs::read_to_string(&path).unwrap();
    // Flip one character inside the encrypted token value.
    let token_line = original
        .lines()
        .find(|l| l.trim_start().starts_with("token: ENC["))
        .unwrap();
    let data_at = token_line.find("data:").unwrap() + 5;
    let mut tampered_line = token_line.to_string();
    let c = if &token_line[data_at..data_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered_line.replace_range(data_at..data_at + 1, c);
    std::fs::write(&path, original.replace(token_line, &tampered_line)).unwrap();
    let msg = decrypt_error(&env, Some(&env.age_key), "alpha");
    assert!(
        msg.contains("a value failed authentication (the file was tampered with or corrupted)"),
        "{msg}"
    );

    // Removing a line breaks the MAC.
    let without_kind: String = original
        .lines()
        .filter(|l| !l.starts_with("kind:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without_kind).unwrap();
    let msg = decrypt_error(&env, Some(&env.age_key), "alpha");
    assert!(msg.contains("MAC mismatch"), "{msg}");
}

#[test]
fn plaintext_file_is_reported_as_not_encrypted() {
    let env = TestEnv::new();
    std::fs::write(
        env.break_glass_file("beta"),
        "apiVersion: v1\nkind: Config\n",
    )
    .unwrap();
    let msg = decrypt_error(&env, Some(&env.age_key), "beta");
    assert!(msg.contains("the file is not SOPS-encrypted"), "{msg}");
}

#[test]
fn no_matching_creation_rule() {
    let env = TestEnv::new();
    std::fs::write(
        env.fleet.join(".sops.yaml"),
        "creation_rules:\n  - path_regex: ^nothing$\n    age: age1x\n",
    )
    .unwrap();
    let err = with_sops_env(&env, Some(&env.age_key), async |sops, fleet| {
        sealed_file::seal(&sops, &fleet.cluster("beta").unwrap(), &credential())
            .await
            .unwrap_err()
    });
    assert!(
        err.to_string()
            .contains("no .sops.yaml creation rule matches this path"),
        "{err}"
    );
    assert!(!env.break_glass_file("beta").exists());
}

#[test]
fn sops_missing_or_too_old() {
    let env = TestEnv::new();
    let fake = env.dir.path().join("old-sops");
    std::fs::write(&fake, "#!/bin/sh\necho 'sops 3.8.1'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // status decrypts in-process; the binary path is the one that needs sops.
    let out = env
        .kube_dc()
        .env("KUBE_DC_SOPS", &fake)
        .env("KUBE_DC_SOPS_DECRYPT", "binary")
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    // status reports the problem in its report (stdout) and fails once on stderr.
    let said = support::show(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("is sops 3.8; kube-dc needs sops >= 3.10"),
        "{said}"
    );

    let out = env
        .kube_dc()
        .env_remove("KUBE_DC_SOPS")
        .env("PATH", env.dir.path())
        .env("KUBE_DC_SOPS_DECRYPT", "binary")
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .output()
        .unwrap();
    let said = support::show(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("sops is not installed"), "{said}");
}
