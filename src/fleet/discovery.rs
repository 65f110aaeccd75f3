//! Which directories under `clusters/` are clusters.
//!
//! A cluster is a directory, 1 to [`MAX_DEPTH`] levels below `clusters/`, that holds a
//! `cluster-config.env` (what the Go tool's `bootstrap init` writes) or a break-glass
//! file (the Go tool's `adopt` needs only the directory, so its fleets have clusters with
//! nothing else). Directories are walked to the full depth, also below a cluster:
//! `eu/` may be a cluster and `eu/dc1/` another.

use std::ffi::OsStr;
use std::path::Path;

use nix::sys::stat::SFlag;

use super::names::{MAX_DEPTH, is_segment};
use crate::error::{Error, Result};
use crate::safe_fs::{self, Dir};

/// The names (`a`, `eu/dc1`, ...) of the clusters below `clusters` (already opened):
/// the directories holding one of the `markers` (a cluster's files), unsorted. A
/// directory that holds one but whose name is not a cluster name is an error naming it:
/// a cluster skipped in silence would be left out of `--all`.
pub fn cluster_names(clusters: &Dir, markers: &[&str]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let walk = Walk { markers };
    walk.dir(clusters, "", 1, &mut found)?;
    Ok(found)
}

struct Walk<'a> {
    markers: &'a [&'a str],
}

impl Walk<'_> {
    fn dir(&self, dir: &Dir, prefix: &str, depth: usize, found: &mut Vec<String>) -> Result<()> {
        for name in subdirs(dir)? {
            self.entry(dir, prefix, &name, depth, found)?;
        }
        Ok(())
    }

    fn entry(
        &self,
        dir: &Dir,
        prefix: &str,
        name: &str,
        depth: usize,
        found: &mut Vec<String>,
    ) -> Result<()> {
        let rel = format!("{prefix}{name}");
        let inner = dir.open_dir(Path::new(name)).map_err(|e| e.usage())?;
        // In any form: a link or FIFO under that name is refused when it is read, with a
        // message, rather than hiding the cluster.
        let marked = self
            .markers
            .iter()
            .any(|file| inner.lstat(OsStr::new(file)).is_ok());
        if !is_segment(name) {
            return match marked {
                true => Err(unnamed(&inner)),
                false => Ok(()),
            };
        }
        if marked {
            found.push(rel.clone());
        }
        if depth < MAX_DEPTH {
            self.dir(&inner, &format!("{rel}/"), depth + 1, found)?;
        }
        Ok(())
    }
}

fn unnamed(dir: &Dir) -> Error {
    Error::usage(format!(
        "{} holds a cluster's files, but its name cannot be a cluster name (only letters, digits, `_`, `-` and `.`; not starting with `-`)",
        dir.path().display()
    ))
    .with_hint("rename the directory (git mv), so that every command can name the cluster")
}

/// Names of the directories in `dir`; a symbolic link to a directory is refused. A name
/// that is not UTF-8 is kept lossily so that [`walk`] reports it if it holds a cluster.
fn subdirs(dir: &Dir) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for name in dir.names().map_err(|e| e.failed())? {
        let Ok(stat) = dir.lstat(&name) else {
            continue;
        };
        match safe_fs::file_kind(&stat) {
            SFlag::S_IFDIR => dirs.push(name.to_string_lossy().into_owned()),
            // Only a link to a directory could be a cluster: refuse it loudly.
            SFlag::S_IFLNK if dir.path().join(&name).is_dir() => {
                return Err(dir.open_dir(Path::new(&name)).err().map_or_else(
                    || Error::usage("a symbolic link changed while listing clusters"),
                    |e| e.usage(),
                ));
            }
            _ => {}
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for file in files {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        root
    }

    fn names(files: &[&str]) -> Result<Vec<String>> {
        let root = tree(files);
        let markers = ["cluster-config.env", "break-glass-kubeconfig.enc.yaml"];
        let mut names = cluster_names(&Dir::open(root.path()).unwrap(), &markers)?;
        names.sort();
        Ok(names)
    }

    #[test]
    fn a_directory_with_either_file_is_a_cluster_at_any_level() {
        let found = names(&[
            "alpha/cluster-config.env",
            "Prod/break-glass-kubeconfig.enc.yaml",
            "my_cluster/secrets.enc.yaml",
            "eu/cluster-config.env",
            "eu/dc1/break-glass-kubeconfig.enc.yaml",
            "region/dc/c1/break-glass-kubeconfig.enc.yaml",
            "region/dc/c1/overlay/kustomization.yaml",
            "a/b/c/d/cluster-config.env",
            "a/b/c/d/e/cluster-config.env",
        ])
        .unwrap();
        assert_eq!(
            found,
            ["Prod", "a/b/c/d", "alpha", "eu", "eu/dc1", "region/dc/c1"]
        );
    }

    #[test]
    fn a_cluster_directory_with_an_unusable_name_is_an_error() {
        let err = names(&["my cluster/break-glass-kubeconfig.enc.yaml"]).unwrap_err();
        assert!(err.message().contains("my cluster"), "{err}");
        assert_eq!(err.exit(), crate::error::Exit::Usage);
        // Without a cluster's file it is just another directory.
        assert_eq!(
            names(&["my notes/readme.md"]).unwrap(),
            Vec::<String>::new()
        );
    }
}
