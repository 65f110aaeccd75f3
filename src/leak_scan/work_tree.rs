//! The work-tree files under the fleet root (or the paths given), skipping `.git` and
//! Git-ignored paths.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use git2::Repository;

use super::scan::{Report, display_path, scan};
use crate::error::{Context as _, Result};
use crate::fleet::Fleet;
use crate::safe_fs::{Dir, SCANNED};
use crate::sops_config::SopsConfig;

const CLUSTER_CONFIG: &str = crate::cluster_config::FILE_NAME;

/// Checks the files under the `filters` (fleet-relative; all when empty).
pub fn check(fleet: &Fleet, filters: &[String]) -> Result<Report> {
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
    scan(
        &rels,
        &sops_config,
        |dir| root.join(dir).join(CLUSTER_CONFIG).is_file(),
        || {
            let (root, files) = (Dir::open(root).map_err(|e| e.failed())?, &files);
            Ok(move |rel: &str| {
                // The real name: `rel` shows odd bytes escaped.
                let path = files
                    .get(rel)
                    .map_or_else(|| PathBuf::from(rel), Clone::clone);
                root.read(&path, SCANNED).map_err(|e| e.failed())
            })
        },
    )
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
