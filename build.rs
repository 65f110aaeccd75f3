//! Records the Git commit the binary is built from, for `kube-dc --version`.
//! A build outside the project's own Git checkout (a source tarball, `cargo install`
//! from a registry copy) or without git says "unknown commit" instead of failing.

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let commit = commit(Path::new(&manifest_dir)).unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=KUBE_DC_BUILD_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// `commit 0123abcd…` when `dir` is the top of a Git work tree; also asks cargo to rebuild
/// when HEAD moves (a checkout, a commit) so the version never names a stale commit.
fn commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    // A crate unpacked inside some other repository must not claim that repository's commit.
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let hash = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    for watched in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        let Some(path) = git(dir, &["rev-parse", "--git-path", watched]) else {
            continue;
        };
        // A missing file would make cargo rerun this script on every build.
        let path = dir.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(format!("commit {hash}"))
}

/// One line of git's stdout, or None when git is missing or says no.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let line = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !line.is_empty()).then_some(line)
}
