//! `break-glass check` through real `git commit`s: via hooks/pre-commit installed with
//! `core.hooksPath`, and via the real pre-commit framework running .pre-commit-hooks.yaml.
//! The hook runs with no sops on PATH and no age key: it must never need them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use support::{TestEnv, repo_root};

const BG_BETA: &str = "clusters/beta/break-glass-kubeconfig.enc.yaml";
const BG_ALPHA: &str = "clusters/alpha/break-glass-kubeconfig.enc.yaml";

/// A fixture fleet under Git with hooks/pre-commit installed through core.hooksPath.
fn fleet_with_hook() -> TestEnv {
    let env = TestEnv::new().with_git();
    let hooks = repo_root().join("hooks");
    env.git(&["config", "core.hooksPath", hooks.to_str().unwrap()]);
    env
}

fn kube_dc_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kube-dc"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `git` as an operator with kube-dc on PATH but no sops and no age key.
fn git_as_operator(env: &TestEnv, args: &[&str], path: &str) -> Output {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .env_clear()
        .envs(env.base_env())
        .env("PATH", path)
        .current_dir(&env.fleet);
    cmd.output().unwrap()
}

fn operator_path() -> String {
    format!("{}:/usr/bin:/bin", kube_dc_dir().display())
}

/// Commits what is staged; returns (committed?, hook output).
fn commit(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let before = env.git(&["rev-parse", "HEAD"]);
    let mut all = vec!["commit", "-q", "-m", "change"];
    all.extend_from_slice(args);
    let out = git_as_operator(env, &all, &operator_path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let moved = env.git(&["rev-parse", "HEAD"]) != before;
    assert_eq!(out.status.success(), moved, "{text}");
    (moved, text)
}

fn write(env: &TestEnv, rel: &str, content: &str) {
    let path = env.fleet.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn stage(env: &TestEnv, rel: &str, content: &str) {
    write(env, rel, content);
    env.git(&["add", "--", rel]);
}

fn sa_jwt() -> String {
    let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        enc(r#"{"alg":"RS256","kid":"test"}"#),
        enc(
            r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/service-account.name":"break-glass","sub":"system:serviceaccount:kube-system:break-glass"}"#
        ),
        "dGVzdC1zaWduYXR1cmUtbm90LXZlcmlmaWVkLWJ5LXRoZS1jaGVjaw"
    )
}

fn plaintext_kubeconfig(cluster: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: https://{cluster}.example.test:6443\ncontexts:\n- name: {cluster}\n  context: {{cluster: {cluster}, user: break-glass}}\ncurrent-context: {cluster}\nusers:\n- name: break-glass\n  user:\n    token: {}\n",
        sa_jwt()
    )
}

/// Real sops encryption of a kubeconfig for `rel`, to `.sops.yaml`'s recipients or to `age`.
fn encrypt(env: &TestEnv, rel: &str, age: Option<&str>) -> String {
    let mut cmd = env.sops_cmd();
    cmd.args([
        "encrypt",
        "--filename-override",
        rel,
        "--input-type",
        "yaml",
        "--output-type",
        "yaml",
    ]);
    if let Some(recipient) = age {
        cmd.args(["--age", recipient]);
    }
    let mut child = cmd
        .arg("/dev/stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext_kubeconfig("beta").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn public_key(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string()
}

fn assert_blocked(text: &str, rule: &str, path: &str) {
    assert!(
        text.contains(&format!("{path}:")) && text.contains(rule),
        "expected {rule} for {path}:\n{text}"
    );
    assert!(
        !text.contains(&sa_jwt()),
        "a token was printed in full:\n{text}"
    );
}

#[test]
fn correct_commit_passes() {
    let env = fleet_with_hook();
    stage(&env, BG_BETA, &encrypt(&env, BG_BETA, None));
    stage(
        &env,
        "clusters/beta/cluster-config.env",
        "CLUSTER_NAME=beta\n",
    );
    let (committed, text) = commit(&env, &[]);
    assert!(committed, "{text}");
}

#[test]
fn rule1_plaintext_break_glass_file_is_blocked() {
    let env = fleet_with_hook();
    stage(&env, BG_BETA, &plaintext_kubeconfig("beta"));
    let (committed, text) = commit(&env, &[]);
    assert!(!committed);
    assert_blocked(&text, "not-encrypted", BG_BETA);
    assert_blocked(&text, "clear-credential", BG_BETA);
    assert!(text.contains("sops encrypt --in-place"), "{text}");
}

#[test]
fn rule1_encrypted_file_with_a_clear_token_is_blocked() {
    let env = fleet_with_hook();
    let original = std::fs::read_to_string(env.fleet.join(BG_ALPHA)).unwrap();
    let tampered: String = original
        .lines()
        .map(|l| match l.trim_start().strip_prefix("token: ") {
            Some(_) => format!("        token: {}", sa_jwt()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    stage(&env, BG_ALPHA, &tampered);
    let (committed, text) = commit(&env, &[]);
    assert!(!committed);
    assert_blocked(&text, "clear-credential", BG_ALPHA);
    assert!(!text.contains("not-encrypted"), "{text}");
    // sops refuses to encrypt a file that has sops metadata: the fix is a new file.
    assert!(!text.contains("sops encrypt --in-place"), "{text}");
    assert!(text.contains("break-glass rotate alpha"), "{text}");
}

#[test]
fn staged_blob_is_checked_not_the_work_tree() {
    let env = fleet_with_hook();
    // Plaintext staged, then the work-tree copy replaced by an encrypted one.
    stage(&env, BG_BETA, &plaintext_kubeconfig("beta"));
    write(&env, BG_BETA, &encrypt(&env, BG_BETA, None));
    let (committed, text) = commit(&env, &[]);
    assert!(!committed);
    assert_blocked(&text, "not-encrypted", BG_BETA);
    // The other way round the commit is fine: what Git records is encrypted.
    stage(&env, BG_BETA, &encrypt(&env, BG_BETA, None));
    write(&env, BG_BETA, &plaintext_kubeconfig("beta"));
    let (committed, text) = commit(&env, &[]);
    assert!(committed, "{text}");
}

#[test]
fn commit_all_checks_the_index_git_commits() {
    let env = fleet_with_hook();
    // Not staged: `git commit -a` stages it into a temporary index (GIT_INDEX_FILE).
    write(&env, BG_ALPHA, &plaintext_kubeconfig("alpha"));
    let (committed, text) = commit(&env, &["-a"]);
    assert!(!committed);
    assert_blocked(&text, "not-encrypted", BG_ALPHA);
}

#[test]
fn rule2_wrong_recipients_are_blocked_with_updatekeys() {
    let env = fleet_with_hook();
    let stranger = public_key(&env.other_age_key());
    stage(&env, BG_BETA, &encrypt(&env, BG_BETA, Some(&stranger)));
    let (committed, text) = commit(&env, &[]);
    assert!(!committed);
    assert_blocked(&text, "wrong-recipients", BG_BETA);
    assert!(
        text.contains(&format!("sops updatekeys --yes {BG_BETA}")),
        "{text}"
    );
    assert!(text.contains(&stranger), "{text}");
}

#[test]
fn rule2_changing_sops_yaml_rechecks_unchanged_break_glass_files() {
    let env = fleet_with_hook();
    let new_key = public_key(&env.other_age_key());
    let config = std::fs::read_to_string(env.fleet.join(".sops.yaml")).unwrap();
    let old_key = "age1lzrr8t3qcgaq85uypap65mkrfepxm76985e9s26dh2d9fejse92sscaswp";
    stage(&env, ".sops.yaml", &config.replace(old_key, &new_key));
    let (committed, text) = commit(&env, &[]);
    assert!(!committed);
    assert_blocked(&text, "wrong-recipients", BG_ALPHA);
    // A .sops.yaml change that keeps the recipients passes.
    stage(&env, ".sops.yaml", &format!("{config}# reviewed\n"));
    let (committed, text) = commit(&env, &[]);
    assert!(committed, "{text}");
}

#[test]
fn rule3_plaintext_credentials_anywhere_are_blocked() {
    let env = fleet_with_hook();
    let kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t\n";
    for (rel, content, rule) in [
        (
            "ops/admin.yaml",
            kubeconfig.to_string(),
            "plaintext-kubeconfig",
        ),
        (
            "notes/incident.md",
            format!("used `kubectl --token {}`\n", sa_jwt()),
            "service-account-jwt",
        ),
        (
            "kubeconfig-alpha-x7f3.yaml",
            plaintext_kubeconfig("alpha"),
            "decrypted-kubeconfig",
        ),
        (
            "clusters/alpha/.break-glass-kubeconfig.enc.yaml.Xy12ab.tmp",
            "x".into(),
            "leftover-temp-file",
        ),
        (
            "clusters/alpha/bg-encrypt-4711.enc.yaml",
            plaintext_kubeconfig("alpha"),
            "leftover-temp-file",
        ),
    ] {
        stage(&env, rel, &content);
        let (committed, text) = commit(&env, &[]);
        assert!(!committed, "{rel}");
        assert_blocked(&text, rule, rel);
        env.git(&["rm", "-q", "--cached", "--", rel]);
    }
    let jwt = sa_jwt();
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "check", "notes/incident.md"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}…({} chars)", &jwt[..8], jwt.len())),
        "{stdout}"
    );
}

#[test]
fn rule3_passing_cases_and_unrelated_files_are_not_misreported() {
    let env = fleet_with_hook();
    let encrypted_kubeconfig =
        "kind: Config\nusers:\n- name: a\n  user:\n    token: ENC[AES256_GCM,data:abc,type:str]\n";
    stage(&env, "ops/encrypted.yaml", encrypted_kubeconfig);
    stage(
        &env,
        "docs/access.md",
        "# Access\n```yaml\nkind: Config\nusers:\n- user:\n    token: <paste the token>\n```\nA JWT starts with eyJ.\n",
    );
    stage(
        &env,
        "apps/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  token: not-a-secret\n",
    );
    stage(
        &env,
        "clusters/alpha/break-glass-rbac.yaml",
        "kind: ClusterRoleBinding\n",
    );
    for i in 0..200 {
        stage(
            &env,
            &format!("apps/svc{i}/values.yaml"),
            &format!("replicas: {i}\nimage: app:{i}\n"),
        );
    }
    let (committed, text) = commit(&env, &[]);
    assert!(committed, "{text}");
}

#[test]
fn rule4_misplaced_or_misnamed_break_glass_files_are_blocked() {
    let env = fleet_with_hook();
    let ciphertext = std::fs::read_to_string(env.fleet.join(BG_ALPHA)).unwrap();
    for rel in [
        "break-glass-kubeconfig.enc.yaml",
        "clusters/break-glass-kubeconfig.enc.yaml",
        "clusters/my cluster/break-glass-kubeconfig.enc.yaml", // not a cluster name
        "clusters/beta/break-glass-kubeconfig.yaml",
    ] {
        stage(&env, rel, &ciphertext);
        let (committed, text) = commit(&env, &[]);
        assert!(!committed, "{rel}");
        assert_blocked(&text, "misplaced-break-glass", rel);
        assert!(text.contains("git mv"), "{text}");
        env.git(&["rm", "-q", "--cached", "--", rel]);
    }
    // A directory with only its break-glass file is a cluster, as the Go tool writes them
    // (`adopt` needs no cluster-config.env), at any level.
    for rel in [
        "clusters/gamma/break-glass-kubeconfig.enc.yaml",
        "clusters/region/dc/Prod_1/break-glass-kubeconfig.enc.yaml",
    ] {
        stage(&env, rel, &encrypt(&env, rel, None));
    }
    let (committed, text) = commit(&env, &[]);
    assert!(committed, "{text}");
}

#[test]
fn hook_without_kube_dc_fails_with_a_clear_message() {
    let env = fleet_with_hook();
    stage(&env, "README.md", "hello\n");
    let out = git_as_operator(&env, &["commit", "-q", "-m", "x"], "/usr/bin:/bin");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kube-dc is not on PATH"), "{stderr}");
}

#[test]
fn json_output_and_exit_codes() {
    let env = TestEnv::new().with_git();
    stage(&env, BG_BETA, &plaintext_kubeconfig("beta"));
    let out = env
        .kube_dc()
        .env_remove("SOPS_AGE_KEY_FILE")
        .args([
            "bootstrap",
            "break-glass",
            "check",
            "--staged",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<(&str, u64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(rules, vec![("not-encrypted", 1), ("clear-credential", 14)]);
    assert_eq!(report["findings"][0]["path"], BG_BETA);
    assert!(
        report["findings"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("sops encrypt")
    );

    env.git(&["rm", "-q", "--cached", "--", BG_BETA]);
    env.kube_dc()
        .args(["bootstrap", "break-glass", "check", "--staged"])
        .assert()
        .code(0);
    // Usage errors: a path outside the fleet, a broken .sops.yaml.
    env.kube_dc()
        .args(["bootstrap", "break-glass", "check", "/etc"])
        .assert()
        .code(2);
    write(&env, ".sops.yaml", "creation_rules:\n  - path_regex: '('\n");
    env.kube_dc()
        .args(["bootstrap", "break-glass", "check"])
        .assert()
        .code(2);
}

/// The interpreter that has the `pre_commit` package, found in the developer's environment
/// (pyenv shims and venvs need it); the test itself then runs hermetically.
fn pre_commit_python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import pre_commit, sys; print(sys.executable)"])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
        _ => panic!(
            "the `pre-commit` tool (PyPI) is required by this test but `python3 -c 'import pre_commit'` failed; run scripts/install-test-deps.sh"
        ),
    }
}

#[test]
fn pre_commit_framework_runs_the_hook_manifest() {
    let python = pre_commit_python();
    let env = TestEnv::new().with_git();
    // A Git repo holding this checkout's hook manifest and script, as pre-commit would clone it.
    let hook_repo = env.dir.path().join("kube-dc-hooks");
    std::fs::create_dir_all(hook_repo.join("hooks")).unwrap();
    std::fs::copy(
        repo_root().join(".pre-commit-hooks.yaml"),
        hook_repo.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("hooks/pre-commit"),
        hook_repo.join("hooks/pre-commit"),
    )
    .unwrap();
    let in_hook_repo = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .env_clear()
            .envs(env.base_env())
            .current_dir(&hook_repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    in_hook_repo(&["init", "-q", "-b", "main"]);
    in_hook_repo(&["add", "-A"]);
    in_hook_repo(&["commit", "-q", "-m", "hooks"]);
    let rev = in_hook_repo(&["rev-parse", "HEAD"]);
    stage(
        &env,
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: kube-dc-break-glass-check\n",
            hook_repo.display(),
            rev.trim()
        ),
    );
    env.git(&["commit", "-q", "-m", "pre-commit config"]);
    let pre_commit_env = |cmd: &mut Command| {
        cmd.env_clear()
            .envs(env.base_env())
            .env("PATH", operator_path())
            .env("PRE_COMMIT_HOME", env.dir.path().join("pre-commit-cache"))
            .current_dir(&env.fleet);
    };
    let mut install = Command::new(&python);
    install.args(["-m", "pre_commit", "install"]);
    pre_commit_env(&mut install);
    let out = install.output().unwrap();
    assert!(
        out.status.success(),
        "pre-commit install: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run_commit = || {
        let mut cmd = Command::new("git");
        cmd.args(["commit", "-m", "change"]);
        pre_commit_env(&mut cmd);
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    stage(&env, BG_BETA, &plaintext_kubeconfig("beta"));
    let (ok, text) = run_commit();
    assert!(!ok, "{text}");
    assert!(
        text.contains("kube-dc break-glass check") && text.contains("Failed"),
        "{text}"
    );
    assert_blocked(&text, "not-encrypted", BG_BETA);

    stage(&env, BG_BETA, &encrypt(&env, BG_BETA, None));
    let (ok, text) = run_commit();
    assert!(ok, "{text}");
    assert!(text.contains("Passed"), "{text}");
}
