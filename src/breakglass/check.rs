//! `check [--staged] [PATH...]`: what `hooks/pre-commit` runs. Applies the rules of
//! `leak_scan` to the staged blobs (what `git commit` records) or to work-tree files.
//! Never decrypts: it needs neither sops nor an age key.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use git2::{Index, IndexEntry, Oid, Repository, RepositoryOpenFlags};
use serde::Serialize;

use crate::error::{Context as _, Error, Result};
use crate::fleet::{BREAK_GLASS_FILE, Fleet, SOPS_CONFIG};
use crate::git::TreePaths;
use crate::leak_scan::{self, Finding, PathClass, Scanner};
use crate::redact;
use crate::safe_fs::{Dir, SCANNED};
use crate::sops_config::SopsConfig;
use crate::ui::{CheckFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Check the staged changes (the blobs `git commit` will record), not the work tree.
    #[arg(long)]
    pub staged: bool,
    /// Files or directories to check (default: the whole fleet; with --staged, limits
    /// the staged changes checked).
    pub paths: Vec<PathBuf>,
    /// Output format; `json` lists findings with path, line, rule, message and fix;
    /// `sarif` is SARIF 2.1.0 for code scanning (docs/ci.md).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: CheckFormat,
}

#[derive(Debug, Serialize)]
struct Report {
    checked: usize,
    findings: Vec<Finding>,
}

pub fn run(fleet: &Fleet, args: &CheckArgs, ui: &mut Ui) -> Result<()> {
    let cwd = std::env::current_dir().context(|| "current directory".into())?;
    if !args.staged {
        require_existing(&args.paths)?;
    }
    let filters = relative_to_root(fleet.root(), &cwd, &args.paths)?;
    let report = if args.staged {
        check_staged(fleet, &filters)?
    } else {
        check_work_tree(fleet, &filters)?
    };
    ui.detail(&format!("checked {} file(s)", report.checked));
    render(&report, args.output, ui)?;
    match report.findings.len() {
        0 => Ok(()),
        n => Err(Error::failed(format!(
            "break-glass check: {n} problem(s) found"
        ))),
    }
}

/// A work-tree path that does not exist is a typo, not a clean result. (Staged paths may
/// be deletions.)
fn require_existing(paths: &[PathBuf]) -> Result<()> {
    match paths.iter().find(|p| std::fs::symlink_metadata(p).is_err()) {
        Some(missing) => Err(Error::usage(format!(
            "{} does not exist: nothing to check",
            crate::input::quoted(&missing.to_string_lossy())
        ))),
        None => Ok(()),
    }
}

/// Rel paths (`/`-separated, "" for the root) of the PATH arguments, which must be in the fleet.
fn relative_to_root(root: &Path, cwd: &Path, paths: &[PathBuf]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            let abs = cwd.join(p);
            let abs = abs.canonicalize().unwrap_or(abs);
            let rel = abs.strip_prefix(root).map_err(|_| {
                Error::usage(format!(
                    "{} is outside the fleet repo {}",
                    p.display(),
                    root.display()
                ))
            })?;
            Ok(rel.to_string_lossy().into_owned())
        })
        .collect()
}

fn selected(rel: &str, filters: &[String]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            f.is_empty()
                || rel == f
                || rel
                    .strip_prefix(f.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
}

/// Runs the rules over `rels`, reading a file's bytes only when its path calls for it.
fn scan<R>(
    rels: &[String],
    sops_config: &SopsConfig,
    reader: impl Fn() -> Result<R> + Sync,
) -> Result<Report>
where
    R: FnMut(&str) -> Result<Vec<u8>>,
{
    let scanner = Scanner::new(sops_config);
    // Reading and parsing thousands of files is the check's whole cost: one chunk per
    // core, each with its own reader (a git2 Repository is not shared across threads).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = rels.len().div_ceil(threads).max(256);
    let parts: Vec<Result<Vec<Finding>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = rels
            .chunks(chunk)
            .map(|part| scope.spawn(|| scan_part(part, &scanner, reader()?)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut findings = Vec::new();
    for part in parts {
        findings.extend(part?);
    }
    findings.sort_by(|a, b| (&a.path, a.line, a.rule).cmp(&(&b.path, b.line, b.rule)));
    Ok(Report {
        checked: rels.len(),
        findings,
    })
}

fn scan_part(
    rels: &[String],
    scanner: &Scanner,
    mut read: impl FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for rel in rels {
        match leak_scan::classify(rel) {
            PathClass::Flagged(finding) => findings.push(finding),
            PathClass::BreakGlass(cluster) => {
                findings.extend(scanner.break_glass(rel, &cluster, &read(rel)?))
            }
            PathClass::Other => findings.extend(scanner.other(rel, &read(rel)?)),
        }
    }
    Ok(findings)
}

// --- staged blobs -------------------------------------------------------------------

/// The index git is committing: `FROM_ENV` honours `GIT_DIR` and `GIT_INDEX_FILE`, which
/// `git commit -a` and `git commit <paths>` point at a temporary index.
fn check_staged(fleet: &Fleet, filters: &[String]) -> Result<Report> {
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
    let out = std::process::Command::new("git")
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

// --- work tree ----------------------------------------------------------------------

fn check_work_tree(fleet: &Fleet, filters: &[String]) -> Result<Report> {
    let root = fleet.root();
    let sops_config = SopsConfig::load(&fleet.sops_config_path())?;
    let repo = Repository::open(root).ok();
    let ignored = |rel: &Path| {
        repo.as_ref()
            .is_some_and(|r| r.is_path_ignored(rel).unwrap_or(false))
    };
    let starts: Vec<PathBuf> = match filters {
        [] => vec![PathBuf::new()],
        _ => filters.iter().map(PathBuf::from).collect(),
    };
    let mut files = HashMap::new();
    for start in &starts {
        collect_files(root, start, &ignored, &mut files)?;
    }
    let mut rels: Vec<String> = files.keys().cloned().collect();
    rels.sort();
    scan(&rels, &sops_config, || {
        let (root, files) = (Dir::open(root).map_err(|e| e.failed())?, &files);
        Ok(move |rel: &str| {
            // The real name: `rel` shows odd bytes escaped.
            let path = files
                .get(rel)
                .map_or_else(|| PathBuf::from(rel), Clone::clone);
            root.read(&path, SCANNED).map_err(|e| e.failed())
        })
    })
}

/// Files under `rel` (a file or directory), skipping `.git` and Git-ignored paths, keyed
/// by how they are shown (see [`display_path`]) with the path they are read from.
fn collect_files(
    root: &Path,
    rel: &Path,
    ignored: &dyn Fn(&Path) -> bool,
    out: &mut HashMap<String, PathBuf>,
) -> Result<()> {
    let path = root.join(rel);
    let meta =
        std::fs::symlink_metadata(&path).context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        out.insert(display_path(rel.as_os_str().as_bytes()), rel.to_path_buf());
    } else if meta.is_dir() {
        let entries =
            std::fs::read_dir(&path).context(|| format!("cannot list {}", path.display()))?;
        for entry in entries {
            let entry = entry.context(|| format!("cannot list {}", path.display()))?;
            let child = rel.join(entry.file_name());
            if entry.file_name() != ".git" && !ignored(&child) {
                collect_files(root, &child, ignored, out)?;
            }
        }
    }
    Ok(())
}

/// A path from Git or the file system as text for the report: bytes that are not UTF-8,
/// control characters (a name can carry terminal escapes) and `\` are written `\xNN`, so
/// no two paths look alike and one odd name does not stop the check of the others.
fn display_path(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                out.extend(c.to_string().bytes().map(|b| format!("\\x{b:02x}")));
            } else {
                out.push(c);
            }
        }
        out.extend(chunk.invalid().iter().map(|b| format!("\\x{b:02x}")));
    }
    out
}

// --- output -------------------------------------------------------------------------

fn render(report: &Report, format: CheckFormat, ui: &mut Ui) -> Result<()> {
    let text = match format {
        CheckFormat::Json => serde_json::to_string_pretty(report).context(|| "JSON".into())? + "\n",
        CheckFormat::Sarif => {
            let log = crate::sarif::log(&report.findings);
            serde_json::to_string_pretty(&log).context(|| "SARIF".into())? + "\n"
        }
        CheckFormat::Table => report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}:{}: {} {}\n    {} {}\n",
                    ui.out_style.bold(&f.path),
                    f.line,
                    ui.out_style.red(f.rule.as_str()),
                    f.message,
                    ui.out_style.green("fix:"),
                    f.fix
                )
            })
            .collect(),
    };
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_files_and_directories() {
        let f = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected("a/b", &[]));
        assert!(selected("clusters/alpha/x", &f(&["clusters/alpha"])));
        assert!(selected("clusters/alpha", &f(&["clusters/alpha"])));
        assert!(!selected("clusters/alphabet/x", &f(&["clusters/alpha"])));
        assert!(selected("anything", &f(&[""])));
    }

    #[test]
    fn odd_file_names_are_shown_escaped_and_distinct() {
        assert_eq!(display_path(b"clusters/a/ok.yaml"), "clusters/a/ok.yaml");
        assert_eq!(display_path("é.yaml".as_bytes()), "é.yaml");
        assert_eq!(display_path(b"bad\xff.txt"), r"bad\xff.txt");
        assert_eq!(display_path(b"bad\\xff.txt"), r"bad\x5cxff.txt");
        assert_eq!(display_path(b"a\x1b[31m\n.yaml"), r"a\x1b[31m\x0a.yaml");
    }
}
