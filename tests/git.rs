//! The git module against real `git`: committing only the break-glass file, hooks,
//! SSH signing, pushing (or not) to a local bare remote, and the one-walk history reader.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use kube_dc::fleet::{ClusterName, Fleet, Source};
use kube_dc::git::{
    Action, Change, CommitOptions, CommitOutcome, GitCli, Keep, Overlap, PushOutcome, PushPolicy,
    Recorder, Repo,
};
use kube_dc::ui::{ColorChoice, Style, Ui};
use support::TestEnv;
use support::remote::git_in as run_git;

const ALPHA: &str = "clusters/alpha/break-glass-kubeconfig.enc.yaml";
const BETA: &str = "clusters/beta/break-glass-kubeconfig.enc.yaml";

/// stderr captured from a `Ui`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn ui() -> (Ui, Captured) {
    let err = Captured::default();
    let style = Style::new(ColorChoice::Never, false);
    let ui = Ui {
        out: Box::new(std::io::sink()),
        err: Box::new(err.clone()),
        out_style: style,
        err_style: style,
        verbose: 0,
    };
    (ui, err)
}

fn git_cli(env: &TestEnv) -> GitCli {
    GitCli::isolated(env.base_env())
}

fn recorder(
    env: &TestEnv,
    args: CommitOptions,
    policy: PushPolicy,
) -> kube_dc::error::Result<Recorder> {
    let fleet = Fleet::open(&env.fleet, Source::Flag).unwrap();
    Recorder::new(&fleet, &args, git_cli(env), policy)
}

fn change<'a>(name: &'a ClusterName, action: Action, rel: &'a str) -> Change<'a> {
    Change {
        cluster: name,
        action,
        server: "https://kube-api.example.test:6443",
        rel,
        incident: None,
        sessions: "",
    }
}

fn commit(
    env: &TestEnv,
    rel: &str,
    action: Action,
    args: CommitOptions,
) -> kube_dc::error::Result<CommitOutcome> {
    let name = ClusterName::parse(rel.split('/').nth(1).unwrap()).unwrap();
    let (mut ui, _) = ui();
    recorder(env, args, PushPolicy::Skip)?.commit(&change(&name, action, rel), &mut ui)
}

fn append(env: &TestEnv, rel: &str, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.fleet.join(rel))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A bare repo next to the fleet, set as `origin` and upstream of `main`.
fn with_remote(env: &TestEnv) -> PathBuf {
    let remote = env.dir.path().join("remote.git");
    run_git(
        env,
        env.dir.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    env.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    env.git(&["push", "-q", "-u", "origin", "main"]);
    remote
}

fn head(env: &TestEnv) -> String {
    env.git(&["rev-parse", "HEAD"]).trim().to_string()
}

#[test]
fn commits_only_the_break_glass_file_and_keeps_other_changes() {
    let env = TestEnv::new().with_git();
    append(&env, "clusters/beta/cluster-config.env", "STAGED=1\n");
    env.git(&["add", "clusters/beta/cluster-config.env"]);
    append(&env, "clusters/alpha/cluster-config.env", "UNSTAGED=1\n");
    append(&env, "notes.txt", "untracked\n");
    append(&env, ALPHA, "# re-encrypted\n");

    let outcome = commit(&env, ALPHA, Action::Rotate, CommitOptions::default()).unwrap();

    let CommitOutcome::Committed(info) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        info.subject,
        "alpha: rotate break-glass token after recovery"
    );
    assert_eq!(info.id, head(&env));
    assert_eq!(
        env.git(&["show", "--format=", "--name-only", "HEAD"]),
        format!("{ALPHA}\n")
    );
    let mut status: Vec<String> = env
        .git(&["status", "--porcelain"])
        .lines()
        .map(String::from)
        .collect();
    status.sort();
    assert_eq!(
        status,
        [
            " M clusters/alpha/cluster-config.env",
            "?? notes.txt",
            "M  clusters/beta/cluster-config.env"
        ]
    );
    assert_eq!(
        env.git(&["diff", "--cached", "--name-only"]),
        "clusters/beta/cluster-config.env\n"
    );
    assert!(
        std::fs::read_to_string(env.fleet.join("clusters/alpha/cluster-config.env"))
            .unwrap()
            .contains("UNSTAGED=1")
    );
}

#[test]
fn commits_a_new_file_with_the_adopt_message_and_nothing_else() {
    let env = TestEnv::new().with_git();
    append(&env, "clusters/eu/dc1/cluster-config.env", "STAGED=1\n");
    env.git(&["add", "clusters/eu/dc1/cluster-config.env"]);
    append(&env, BETA, "sops: {}\n");

    let CommitOutcome::Committed(info) =
        commit(&env, BETA, Action::Adopt, CommitOptions::default()).unwrap()
    else {
        panic!()
    };

    assert_eq!(info.subject, "beta: adopt break-glass kubeconfig");
    assert_eq!(
        env.git(&["show", "--format=", "--name-only", "HEAD"]),
        format!("{BETA}\n")
    );
    assert_eq!(
        env.git(&["status", "--porcelain"]),
        "M  clusters/eu/dc1/cluster-config.env\n"
    );
    // Committing again finds nothing to do.
    assert_eq!(
        commit(&env, BETA, Action::Adopt, CommitOptions::default()).unwrap(),
        CommitOutcome::Unchanged
    );
}

#[test]
fn message_from_flag_then_fleet_settings_then_default() {
    let env = TestEnv::new().with_git();
    std::fs::write(
        env.fleet.join(".kube-dc.yaml"),
        "commit_message: \"break-glass({cluster}): {action} for {server}\"\n",
    )
    .unwrap();
    append(&env, ALPHA, "# 1\n");
    let CommitOutcome::Committed(c) =
        commit(&env, ALPHA, Action::Rotate, CommitOptions::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        c.subject,
        "break-glass(alpha): rotate for https://kube-api.example.test:6443"
    );

    append(&env, ALPHA, "# 2\n");
    let args = CommitOptions {
        message: Some("{cluster} {action} {date}".into()),
        ..CommitOptions::default()
    };
    let CommitOutcome::Committed(c) = commit(&env, ALPHA, Action::Adopt, args).unwrap() else {
        panic!()
    };
    assert_eq!(
        c.subject,
        format!("alpha adopt {}", chrono::Utc::now().format("%Y-%m-%d"))
    );

    let args = CommitOptions {
        message: Some("{clustr}".into()),
        ..CommitOptions::default()
    };
    let err = recorder(&env, args, PushPolicy::Skip)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown placeholder {clustr}"), "{err}");
}

#[test]
fn no_commit_writes_only() {
    let env = TestEnv::new().with_git();
    append(&env, ALPHA, "# 1\n");
    let before = head(&env);
    let args = CommitOptions {
        no_commit: true,
        ..CommitOptions::default()
    };
    assert_eq!(
        commit(&env, ALPHA, Action::Rotate, args).unwrap(),
        CommitOutcome::Skipped
    );
    assert_eq!(head(&env), before);
    assert_eq!(env.git(&["status", "--porcelain"]), format!(" M {ALPHA}\n"));
}

#[test]
fn a_rejecting_pre_commit_hook_leaves_the_file_written_and_uncommitted() {
    let env = TestEnv::new().with_git();
    let hook = env.fleet.join(".git/hooks/pre-commit");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'hook: plaintext credential found' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    append(&env, "clusters/beta/cluster-config.env", "STAGED=1\n");
    env.git(&["add", "clusters/beta/cluster-config.env"]);
    append(&env, ALPHA, "# rotated\n");
    let before = head(&env);

    let err = commit(&env, ALPHA, Action::Rotate, CommitOptions::default())
        .unwrap_err()
        .to_string();

    assert!(err.contains("NOT committed"), "{err}");
    assert!(err.contains("hook: plaintext credential found"), "{err}");
    assert!(err.contains(&format!("commit -- {ALPHA}")), "{err}");
    assert_eq!(head(&env), before);
    assert!(
        std::fs::read_to_string(env.break_glass_file("alpha"))
            .unwrap()
            .ends_with("# rotated\n")
    );
    assert_eq!(
        env.git(&["diff", "--cached", "--name-only"]),
        "clusters/beta/cluster-config.env\n"
    );
}

#[test]
fn ssh_signing_config_is_honoured() {
    let env = TestEnv::new().with_git();
    let key = env.dir.path().join("signing-key");
    let out = Command::new(support::tool("ssh-keygen"))
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "operator@example.test",
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.git(&["config", "gpg.format", "ssh"]);
    env.git(&["config", "user.signingkey", key.to_str().unwrap()]);
    env.git(&["config", "commit.gpgsign", "true"]);
    append(&env, ALPHA, "# signed\n");

    commit(&env, ALPHA, Action::Rotate, CommitOptions::default()).unwrap();

    assert!(
        env.git(&["cat-file", "commit", "HEAD"])
            .contains("-----BEGIN SSH SIGNATURE-----")
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = env.dir.path().join("allowed_signers");
    std::fs::write(&allowed, format!("operator@example.test {public}")).unwrap();
    // `env.git` panics unless the signature verifies against the test key.
    env.git(&[
        "-c",
        &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
        "verify-commit",
        "HEAD",
    ]);
}

#[test]
fn push_flag_pushes_to_the_upstream() {
    let env = TestEnv::new().with_git();
    let remote = with_remote(&env);
    append(&env, ALPHA, "# rotated\n");
    let name = ClusterName::parse("alpha").unwrap();
    let (mut ui, err) = ui();
    let recorder = recorder(&env, CommitOptions::default(), PushPolicy::Push).unwrap();
    recorder
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap();

    let outcome = recorder.push(&mut ui).unwrap();

    assert_eq!(
        outcome,
        PushOutcome::Pushed {
            commits: 1,
            target: "origin/main".into()
        }
    );
    assert_eq!(
        run_git(&env, &remote, &["rev-parse", "main"]).trim(),
        head(&env)
    );
    assert!(
        err.text().contains("pushed 1 commit(s) to origin/main"),
        "{}",
        err.text()
    );
    assert_eq!(recorder.push(&mut ui).unwrap(), PushOutcome::UpToDate);
}

#[test]
fn without_push_and_without_a_terminal_prints_the_exact_command() {
    let env = TestEnv::new().with_git();
    let remote = with_remote(&env);
    let remote_before = run_git(&env, &remote, &["rev-parse", "main"]);
    append(&env, ALPHA, "# rotated\n");
    let name = ClusterName::parse("alpha").unwrap();
    let (mut ui, err) = ui();
    let recorder = recorder(&env, CommitOptions::default(), PushPolicy::Skip).unwrap();
    recorder
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap();

    assert_eq!(recorder.push(&mut ui).unwrap(), PushOutcome::NotPushed);

    assert_eq!(
        run_git(&env, &remote, &["rev-parse", "main"]),
        remote_before
    );
    let workdir = env.fleet.canonicalize().unwrap();
    let command = format!("git -C {} push origin main", workdir.display());
    assert!(
        err.text().contains(&format!(
            "not pushed: 1 commit(s) on main are not on origin/main; to push, run:\n  {command}\n"
        )),
        "{}",
        err.text()
    );
    // The printed command works as printed.
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    run_git(&env, &env.fleet, &args);
    assert_eq!(
        run_git(&env, &remote, &["rev-parse", "main"]).trim(),
        head(&env)
    );
}

/// Another clone of the remote with one commit of `file` pushed; returns the remote's tip.
fn someone_else_pushes(env: &TestEnv, remote: &Path, file: &str, line: &str) -> String {
    let other = env.dir.path().join(format!("other-clone-{}", line.len()));
    run_git(
        env,
        env.dir.path(),
        &[
            "clone",
            "-q",
            remote.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(other.join(file))
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    run_git(env, &other, &["add", file]);
    run_git(
        env,
        &other,
        &["commit", "-q", "-m", "someone else's change"],
    );
    run_git(env, &other, &["push", "-q"]);
    run_git(env, remote, &["rev-parse", "main"])
        .trim()
        .to_string()
}

fn pushing_recorder(env: &TestEnv) -> Recorder {
    let args = CommitOptions::default();
    recorder(env, args, PushPolicy::Push).unwrap()
}

#[test]
fn a_push_behind_the_remote_replays_our_commit_on_top_and_forces_nothing() {
    let env = TestEnv::new().with_git();
    let remote = with_remote(&env);
    let theirs = someone_else_pushes(&env, &remote, "README", "someone else\n");
    append(&env, ALPHA, "# rotated\n");
    let name = ClusterName::parse("alpha").unwrap();
    let (mut ui, err) = ui();
    let recorder = pushing_recorder(&env);
    recorder
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap();
    let outcome = recorder.push(&mut ui).unwrap();

    assert!(
        matches!(outcome, PushOutcome::Pushed { commits: 1, .. }),
        "{outcome:?}"
    );
    assert!(
        err.text()
            .contains("replayed ours on top of them (nothing forced)"),
        "{}",
        err.text()
    );
    let tip = run_git(&env, &remote, &["rev-parse", "main"]);
    assert_eq!(tip, run_git(&env, &env.fleet, &["rev-parse", "HEAD"]));
    assert_eq!(
        run_git(&env, &remote, &["rev-parse", "main~1"]).trim(),
        theirs,
        "their commit is kept under ours"
    );
    assert_eq!(
        run_git(&env, &remote, &["log", "-1", "--format=%s", "main"]).trim(),
        "alpha: rotate break-glass token after recovery"
    );
    assert!(
        env.fleet.join("README").exists(),
        "the work tree has their file"
    );
}

#[test]
fn a_file_changed_on_both_sides_lands_whole_as_the_resolver_says() {
    for keep in [Keep::Local, Keep::Remote] {
        let env = TestEnv::new().with_git();
        let remote = with_remote(&env);
        let theirs_tip = someone_else_pushes(&env, &remote, ALPHA, "# theirs\n");
        let theirs = run_git(&env, &remote, &["show", &format!("main:{ALPHA}")]);
        append(&env, ALPHA, "# ours\n");
        let ours = std::fs::read_to_string(env.fleet.join(ALPHA)).unwrap();
        let name = ClusterName::parse("alpha").unwrap();
        let (mut ui, _) = ui();
        let recorder = pushing_recorder(&env);
        recorder
            .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
            .unwrap();
        let mut asked = Vec::new();
        let mut resolve = |overlaps: &[Overlap], _: &mut Ui| {
            asked.extend(
                overlaps
                    .iter()
                    .map(|o| (o.rel.clone(), o.local.clone(), o.remote.clone())),
            );
            Ok(overlaps.iter().map(|o| (o.rel.clone(), keep)).collect())
        };
        let outcome = recorder.push_resolving(&mut ui, &mut resolve).unwrap();

        assert_eq!(
            asked,
            [(
                ALPHA.to_string(),
                ours.clone().into_bytes(),
                theirs.clone().into_bytes()
            )]
        );
        let landed = run_git(&env, &remote, &["show", &format!("main:{ALPHA}")]);
        let history = run_git(&env, &remote, &["rev-list", "main"]);
        assert!(history.contains(&theirs_tip), "their commit was lost");
        match keep {
            // Whole files, never a line merge of the two.
            Keep::Local => {
                assert_eq!(landed, ours);
                assert!(
                    matches!(outcome, PushOutcome::Pushed { commits: 1, .. }),
                    "{outcome:?}"
                );
            }
            Keep::Remote => {
                assert_eq!(landed, theirs);
                assert_eq!(outcome, PushOutcome::UpToDate);
            }
        }
        assert_eq!(
            std::fs::read_to_string(env.fleet.join(ALPHA)).unwrap(),
            landed
        );
    }
}

#[test]
fn a_conflict_nobody_resolves_is_rejected_undone_and_the_commit_stays_local() {
    let env = TestEnv::new().with_git();
    let remote = with_remote(&env);
    let remote_tip = someone_else_pushes(&env, &remote, ALPHA, "# theirs\n");
    append(&env, ALPHA, "# ours\n");
    let name = ClusterName::parse("alpha").unwrap();
    let (mut ui, _) = ui();
    let recorder = pushing_recorder(&env);
    let CommitOutcome::Committed(local) = recorder
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap()
    else {
        panic!()
    };
    let err = recorder.push(&mut ui).unwrap_err().to_string();

    assert!(err.contains("changed on both sides"), "{err}");
    assert!(!err.contains("--force"), "{err}");
    assert_eq!(
        run_git(&env, &remote, &["rev-parse", "main"]).trim(),
        remote_tip
    );
    assert_eq!(head(&env), local.id);
    assert!(
        !env.fleet.join(".git/rebase-merge").exists(),
        "a replay was left half done"
    );
}

#[test]
fn detached_head_and_missing_upstream_say_what_to_run() {
    let env = TestEnv::new().with_git();
    append(&env, ALPHA, "# 1\n");
    let name = ClusterName::parse("alpha").unwrap();
    let (mut ui, err) = ui();

    // No remote at all: with --push an error, without it a warning.
    let pushing = recorder(&env, CommitOptions::default(), PushPolicy::Push).unwrap();
    pushing
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap();
    let e = pushing.push(&mut ui).unwrap_err().to_string();
    assert!(
        e.contains("branch main has no upstream; the commit exists locally"),
        "{e}"
    );
    assert!(e.contains("push -u <remote> main"), "{e}");
    let quiet = recorder(&env, CommitOptions::default(), PushPolicy::Skip).unwrap();
    assert_eq!(quiet.push(&mut ui).unwrap(), PushOutcome::NotPushed);
    assert!(
        err.text()
            .contains("warning: not pushed: branch main has no upstream"),
        "{}",
        err.text()
    );

    // A remote but no upstream: the hint names it.
    env.git(&["remote", "add", "origin", "/nonexistent/remote.git"]);
    let e = pushing.push(&mut ui).unwrap_err().to_string();
    assert!(e.contains("push -u origin main"), "{e}");

    env.git(&["checkout", "-q", "--detach"]);
    append(&env, ALPHA, "# 2\n");
    let CommitOutcome::Committed(c) = pushing
        .commit(&change(&name, Action::Rotate, ALPHA), &mut ui)
        .unwrap()
    else {
        panic!()
    };
    let e = pushing.push(&mut ui).unwrap_err().to_string();
    assert!(
        e.contains(&format!("HEAD is detached (at {})", &c.id[..7])),
        "{e}"
    );
    assert!(e.contains("exists locally"), "{e}");
    assert!(e.contains("switch -c <branch>"), "{e}");
}

#[test]
fn last_commits_match_git_log_for_every_file_in_one_walk() {
    let env = TestEnv::new().with_git();
    let files = [
        ALPHA,
        BETA,
        "clusters/eu/dc1/break-glass-kubeconfig.enc.yaml",
        "clusters/beta/cluster-config.env",
    ];
    let commit_all = |env: &TestEnv, msg: &str| {
        env.git(&["add", "-A"]);
        env.git(&["commit", "-q", "-m", msg]);
    };
    append(&env, BETA, "v1\n");
    commit_all(&env, "beta v1");
    // A side branch changes alpha; main changes dc1 and later reverts beta's content.
    env.git(&["checkout", "-q", "-b", "side"]);
    append(&env, ALPHA, "side\n");
    commit_all(&env, "alpha on side");
    env.git(&["checkout", "-q", "main"]);
    append(&env, files[2], "dc1 v1\n");
    commit_all(&env, "dc1 v1");
    env.git(&["merge", "-q", "--no-edit", "side"]);
    append(&env, BETA, "v2\n");
    commit_all(&env, "beta v2");
    std::fs::write(env.fleet.join(BETA), "v1\n").unwrap();
    commit_all(&env, "beta back to v1");
    for i in 0..5 {
        append(
            &env,
            "clusters/beta/cluster-config.env",
            &format!("N={i}\n"),
        );
        commit_all(&env, &format!("config {i}"));
    }

    let repo = Repo::discover(&env.fleet).unwrap();
    let wanted: Vec<String> = files
        .iter()
        .map(|s| s.to_string())
        .chain(["clusters/nope/x".to_string()])
        .collect();
    let found = repo.last_commits(&wanted).unwrap();

    assert_eq!(found.len(), files.len());
    for file in files {
        let expected = env.git(&["log", "-1", "--format=%H %s", "--", file]);
        let got = &found[file];
        assert_eq!(format!("{} {}\n", got.id, got.subject), expected, "{file}");
    }
    assert_eq!(found[ALPHA].subject, "alpha on side");
    assert_eq!(found[BETA].subject, "beta back to v1");
}

#[test]
fn path_states() {
    use kube_dc::git::PathState;
    let env = TestEnv::new().with_git();
    append(&env, ALPHA, "# changed\n");
    append(&env, BETA, "new\n");
    append(&env, "clusters/beta/cluster-config.env", "X=1\n");
    env.git(&["add", "clusters/beta/cluster-config.env"]);
    let repo = Repo::discover(&env.fleet).unwrap();
    let rels: Vec<String> = [
        ALPHA,
        BETA,
        "clusters/beta/cluster-config.env",
        "clusters/eu/dc1/cluster-config.env",
        "clusters/eu/dc1/break-glass-kubeconfig.enc.yaml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let states = repo.path_states(&rels).unwrap();
    assert_eq!(
        rels.iter().map(|r| states[r]).collect::<Vec<_>>(),
        [
            PathState::Modified,
            PathState::Untracked,
            PathState::Staged,
            PathState::Clean,
            PathState::Missing
        ]
    );
}
