//! A bare Git remote made from a test fleet, and clones of it: several maintainers or CI
//! runners, each with their own copy of one fleet repo.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::TestEnv;

pub struct Remote {
    pub bare: PathBuf,
}

impl Remote {
    /// `remote.git` next to the fleet, holding its history; the fleet's `main` tracks it.
    pub fn of(env: &TestEnv) -> Remote {
        let bare = env.dir.path().join("remote.git");
        git_in(
            env,
            env.dir.path(),
            &["clone", "-q", "--bare", "fleet", "remote.git"],
        );
        env.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
        env.git(&["fetch", "-q", "origin"]);
        env.git(&["branch", "-q", "--set-upstream-to=origin/main", "main"]);
        Remote { bare }
    }

    /// A fresh clone named `name` next to the fleet, on `main` tracking the remote.
    pub fn clone(&self, env: &TestEnv, name: &str) -> PathBuf {
        git_in(
            env,
            env.dir.path(),
            &["clone", "-q", self.bare.to_str().unwrap(), name],
        );
        env.dir.path().join(name)
    }

    /// `git <args>` in the bare repository.
    pub fn git(&self, env: &TestEnv, args: &[&str]) -> String {
        git_in(env, &self.bare, args)
    }

    /// The content of `path` on the remote's `main`.
    pub fn show(&self, env: &TestEnv, path: &str) -> Vec<u8> {
        git_bytes(env, &self.bare, &["show", &format!("main:{path}")])
    }
}

/// `git <args>` in `dir` with the test environment; panics with git's stderr on failure.
pub fn git_in(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    super::text(&git_bytes(env, dir, args))
}

fn git_bytes(env: &TestEnv, dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args(args)
        .env_clear()
        .envs(env.base_env())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        super::text(&out.stderr)
    );
    out.stdout
}
