//! The staged blobs, what `git commit` will record: from HEAD plus the staged changes for
//! the common commit, from the whole index when `.sops.yaml` changes (every break-glass
//! file then needs the new rules).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use git2::{Index, IndexEntry, Oid, Repository, RepositoryOpenFlags};

use super::scan::{Report, display_path, scan, selected};
use crate::error::{Context as _, Error, Result};
use crate::fleet::{BREAK_GLASS_FILE, Fleet, SOPS_CONFIG};
use crate::git::TreePaths;
use crate::redact;
use crate::sops_config::SopsConfig;

/// The index git is committing: `FROM_ENV` honours `GIT_DIR` and `GIT_INDEX_FILE`, which
/// `git commit -a` and `git commit <paths>` point at a temporary index.
pub fn check(fleet: &Fleet, filters: &[String]) -> Result<Report> {
    let repo = open_staged(fleet)?;
    ensure_same_repo(&repo, fleet)?;
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let changes = match head {
        Some(_) => staged_changes(&repo)?,
        None => HashMap::new(),
    };
    // The common commit: HEAD plus what `git diff --cached` reports is the index, so
    // there is no need to load (and checksum) the whole index with libgit2, which was
    // most of a one-file check on a large fleet. A `.sops.yaml` change needs every
    // break-glass file, so it takes the index path.
    if let Some(head) = head
        && !changes.contains_key(SOPS_CONFIG)
    {
        return check_staged_changes(fleet, &repo, head, &changes, filters);
    }
    let index = repo
        .index()
        .map_err(|e| Error::usage(format!("cannot read the Git index: {}", e.message())))?;
    let sops_config = staged_sops_config(&repo, &index, fleet)?;
    let staged = staged_blobs(&repo, &index, &changes)?;
    scan_staged(fleet, &staged, filters, &sops_config)
}

/// Scans the selected `(path, blob)` pairs, reading blobs with one repository per thread.
fn scan_staged(
    fleet: &Fleet,
    staged: &[(String, Oid)],
    filters: &[String],
    sops_config: &SopsConfig,
) -> Result<Report> {
    let rels: Vec<String> = staged
        .iter()
        .map(|(rel, _)| rel.clone())
        .filter(|rel| selected(rel, filters))
        .collect();
    let oids: HashMap<&str, Oid> = staged
        .iter()
        .map(|(rel, oid)| (rel.as_str(), *oid))
        .collect();
    scan(&rels, sops_config, || {
        let (repo, oids) = (open_staged(fleet)?, &oids);
        Ok(move |rel: &str| read_blob(&repo, oids[rel], rel))
    })
}

/// The fast path: staged blobs from the diff, everything else from HEAD's tree.
fn check_staged_changes(
    fleet: &Fleet,
    repo: &Repository,
    head: git2::Tree,
    changes: &HashMap<String, Option<Oid>>,
    filters: &[String],
) -> Result<Report> {
    let mut in_head = TreePaths::new(repo, head);
    let sops_config = match in_head.entry_id(SOPS_CONFIG) {
        Some(oid) => parse_staged_sops_config(&read_blob(repo, oid, SOPS_CONFIG)?)?,
        None => SopsConfig::load(&fleet.sops_config_path())?,
    };
    let staged = staged_oids(changes);
    scan_staged(fleet, &staged, filters, &sops_config)
}

fn open_staged(fleet: &Fleet) -> Result<Repository> {
    // Re-hashing each blob on read is a tenth of the check; git itself does not verify
    // objects on read, and the check never writes.
    git2::opts::strict_hash_verification(false);
    Repository::open_ext(fleet.root(), RepositoryOpenFlags::FROM_ENV, [""; 0])
        .map_err(|e| Error::usage(format!("--staged needs a Git repository: {}", e.message())))
}

fn ensure_same_repo(repo: &Repository, fleet: &Fleet) -> Result<()> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::usage("--staged needs a repository with a work tree"))?;
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    if workdir != fleet.root() {
        return Err(Error::usage(format!(
            "the fleet ({}) is not the Git repository being committed ({})",
            fleet.root().display(),
            workdir.display()
        ))
        .with_hint("run from the fleet repo, with --repo pointing at it"));
    }
    Ok(())
}

/// The `.sops.yaml` being committed, so a commit that changes recipients is judged by them.
fn staged_sops_config(repo: &Repository, index: &Index, fleet: &Fleet) -> Result<SopsConfig> {
    let Some(entry) = index.get_path(Path::new(SOPS_CONFIG), 0) else {
        return SopsConfig::load(&fleet.sops_config_path());
    };
    parse_staged_sops_config(&read_blob(repo, entry.id, SOPS_CONFIG)?)
}

fn parse_staged_sops_config(bytes: &[u8]) -> Result<SopsConfig> {
    let text = String::from_utf8_lossy(bytes);
    SopsConfig::parse(&text).map_err(|e| Error::usage(format!("{SOPS_CONFIG} (staged): {e}")))
}

/// Paths and blob ids that differ from HEAD (every entry before the first commit). When
/// `.sops.yaml` changes, every staged break-glass file is included: its recipients may
/// now be wrong.
fn staged_blobs(
    repo: &Repository,
    index: &Index,
    changes: &HashMap<String, Option<Oid>>,
) -> Result<Vec<(String, Oid)>> {
    let blob = |e: &IndexEntry| {
        let mode = e.mode & 0o170000;
        (mode == 0o100000).then(|| (display_path(&e.path), e.id))
    };
    if repo.head().is_err() {
        return Ok(index.iter().filter_map(|e| blob(&e)).collect());
    }
    let mut staged = staged_oids(changes);
    if staged.iter().any(|(rel, _)| rel == SOPS_CONFIG) {
        let known: HashSet<String> = staged.iter().map(|(r, _)| r.clone()).collect();
        let break_glass: Vec<(String, Oid)> = index
            .iter()
            .filter_map(|e| blob(&e))
            .filter(|(rel, _)| rel.ends_with(BREAK_GLASS_FILE) && !known.contains(rel))
            .collect();
        staged.extend(break_glass);
    }
    Ok(staged)
}

/// Staged changes against HEAD: each path with its new blob, or `None` when it is deleted
/// or not a regular file. The git CLI answers from the index's cache-tree extension,
/// skipping unchanged directories without reading their trees; libgit2's tree-to-index diff
/// reads every tree (46 ms for 11,000 directories, packed). It inherits `GIT_INDEX_FILE`,
/// the temporary index of `git commit -a`.
fn staged_changes(repo: &Repository) -> Result<HashMap<String, Option<Oid>>> {
    let workdir = repo.workdir().unwrap_or(Path::new("."));
    let mut git = std::process::Command::new("git");
    crate::subprocess::dies_with_us(&mut git);
    let out = git
        .args([
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
        ])
        .current_dir(workdir)
        .output()
        .context(|| "running git diff --cached".into())?;
    if !out.status.success() {
        return Err(Error::failed(format!(
            "git diff --cached failed; git said:\n{}",
            redact::block(&out.stderr)
        )));
    }
    let mut fields = out.stdout.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut changes = HashMap::new();
    // Records are ":<old mode> <new mode> <old id> <new id> <status>" NUL "<path>" NUL.
    while let (Some(record), Some(path)) = (fields.next(), fields.next()) {
        let record = String::from_utf8_lossy(record);
        let parts: Vec<&str> = record.trim_start_matches(':').split(' ').collect();
        let blob = match parts.as_slice() {
            [_, mode, _, id, status] if !status.starts_with('D') && mode.starts_with("100") => {
                Oid::from_str(id).ok()
            }
            _ => None,
        };
        changes.insert(display_path(path), blob);
    }
    Ok(changes)
}

/// The staged blobs among `changes` (the regular files `git diff --cached` reports).
fn staged_oids(changes: &HashMap<String, Option<Oid>>) -> Vec<(String, Oid)> {
    changes
        .iter()
        .filter_map(|(rel, oid)| Some((rel.clone(), (*oid)?)))
        .collect()
}

fn read_blob(repo: &Repository, oid: Oid, rel: &str) -> Result<Vec<u8>> {
    let blob = repo
        .find_blob(oid)
        .map_err(|e| Error::failed(format!("cannot read the staged {rel}: {}", e.message())))?;
    Ok(blob.content().to_vec())
}
