//! Several maintainers or CI runners rotating one fleet at once, each from its own clone
//! of one bare remote, pushing to the same branch: sharded batch rotations whose pushes
//! meet, and a stale clone that rotated a cluster someone else rotated and pushed first.
//! Real control plane, sops and git; the tests share the control plane (`serial()`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use support::control_plane::ControlPlane;
use support::many_clusters::{adopt_many, live_token};
use support::remote::Remote;
use support::{TestEnv, serial, shared_control_plane, show, text};

fn file_of(name: &str) -> String {
    format!("clusters/{name}/break-glass-kubeconfig.enc.yaml")
}

/// `kube-dc bootstrap break-glass <args>` in `clone` with the admin login, no terminal
/// and no stdin: nobody could answer a question.
fn bg_in(env: &TestEnv, cp: &ControlPlane, clone: &Path, args: &[&str]) -> Output {
    env.kube_dc_process()
        .current_dir(clone)
        .args(["bootstrap", "break-glass"])
        .args(args)
        .args(["--kubeconfig", cp.admin_kubeconfig().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The clusters a runner rotated: a batch's JSON summary, or the line of a single
/// rotation (a shard of one); nothing for an empty shard.
fn rotated_by(out: &Output) -> Vec<String> {
    let stdout = text(&out.stdout);
    match serde_json::from_str::<serde_json::Value>(&stdout) {
        Ok(summary) => {
            assert_eq!(summary["failed"], 0, "{summary:#}");
            let rows = summary["clusters"].as_array().unwrap();
            rows.iter()
                .map(|c| c["cluster"].as_str().unwrap().to_string())
                .collect()
        }
        Err(_) => stdout
            .lines()
            .filter_map(|l| l.strip_prefix("rotate ")?.split_once(": wrote"))
            .map(|(name, _)| name.to_string())
            .collect(),
    }
}

fn clones(env: &TestEnv, remote: &Remote, n: usize) -> Vec<PathBuf> {
    env.git(&["push", "-q", "origin", "main"]);
    (1..=n)
        .map(|i| remote.clone(env, &format!("runner-{i}")))
        .collect()
}

#[test]
fn four_sharded_runners_rotate_twelve_clusters_once_each_and_all_pushes_land() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let names = adopt_many(&env, cp, 12);
    let remote = Remote::of(&env);
    let runners = clones(&env, &remote, 4);
    let before = remote.git(&env, &["rev-parse", "main"]).trim().to_string();

    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = runners
            .iter()
            .enumerate()
            .map(|(i, clone)| {
                let (env, shard) = (&env, format!("{}/4", i + 1));
                scope.spawn(move || {
                    let args = ["rotate", "--all", "--shard", &shard, "--push", "-o", "json"];
                    bg_in(env, cp, clone, &args)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut rotated: Vec<String> = Vec::new();
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(
            out.status.code(),
            Some(0),
            "runner {}: {}",
            i + 1,
            show(out)
        );
        rotated.extend(rotated_by(out));
    }
    rotated.sort();
    assert_eq!(
        rotated, names,
        "every cluster rotated by exactly one runner"
    );

    let log = remote.git(&env, &["log", "--format=%s", &format!("{before}..main")]);
    let mut subjects: Vec<&str> = log.lines().collect();
    subjects.sort();
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("{n}: rotate break-glass token after recovery"))
        .collect();
    assert_eq!(
        subjects, expected,
        "12 commits on the remote, one per cluster"
    );
    for name in &names {
        let landed = env.token_in_ciphertext(&remote.show(&env, &file_of(name)));
        assert!(
            landed == live_token(cp, name),
            "{name}: the remote's file does not hold the live token"
        );
    }
}

#[test]
fn a_stale_clone_that_rotated_again_lands_its_file_on_top_and_keeps_the_other() {
    let _serial = serial();
    let cp = shared_control_plane();
    let env = TestEnv::new().with_git();
    let names = adopt_many(&env, cp, 1);
    let name = names[0].as_str();
    let remote = Remote::of(&env);
    let runners = clones(&env, &remote, 2);
    let (ann, bob) = (&runners[0], &runners[1]);

    let out = bg_in(&env, cp, ann, &["rotate", name, "--push"]);
    assert!(out.status.success(), "ann: {}", show(&out));
    let anns_commit = remote.git(&env, &["rev-parse", "main"]).trim().to_string();
    // Bob's clone still has the adopted file; he rotates the cluster again and pushes.
    let out = bg_in(&env, cp, bob, &["rotate", name, "--push"]);
    assert!(out.status.success(), "bob: {}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{name}: the remote also changed {}",
            file_of(name)
        )) && err.contains("the cluster holds our token: ours lands on top"),
        "{err}"
    );

    let landed = env.token_in_ciphertext(&remote.show(&env, &file_of(name)));
    assert!(
        landed == live_token(cp, name),
        "the landed file does not hold the live token"
    );
    let history = remote.git(&env, &["rev-list", "main"]);
    assert!(history.contains(&anns_commit), "ann's commit was lost");
    assert_eq!(
        remote.git(&env, &["rev-parse", "main~1"]).trim(),
        anns_commit,
        "bob's commit is on top of ann's"
    );
}
