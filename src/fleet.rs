//! The fleet repo: its root, its clusters and their files.

mod discovery;
mod names;
pub mod shard;
mod tilde;

use std::path::{Path, PathBuf};

use crate::cluster_config::{self, ClusterConfig};
use crate::error::{Error, Result};
use crate::safe_fs::{self, Dir, FsResult, RegularFile};

pub use names::ClusterName;

pub const SOPS_CONFIG: &str = ".sops.yaml";
pub const CLUSTERS_DIR: &str = "clusters";
pub const BREAK_GLASS_FILE: &str = "break-glass-kubeconfig.enc.yaml";
pub const FLEET_ENV: &str = "KUBE_DC_FLEET";

#[derive(Debug, Clone)]
pub struct Fleet {
    root: PathBuf,
}

/// Where the fleet root came from, so errors can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    WalkUp,
    Default,
}

impl Fleet {
    /// Finds the fleet: `--repo`, else `$KUBE_DC_FLEET`, else the first ancestor of `cwd`
    /// that looks like a fleet, else `~/.kube-dc/fleet`. An explicit choice that is not a
    /// fleet is an error, never a reason to try the next place. A leading `~` in either
    /// explicit choice is `home` (see `tilde`).
    pub fn discover(
        flag: Option<&Path>,
        env: Option<&Path>,
        cwd: &Path,
        home: Option<&Path>,
    ) -> Result<Fleet> {
        let explicit = |path, origin| nonempty(path, origin).map(|p| tilde::expand(p, home));
        if let Some(path) = flag {
            return Fleet::open(&cwd.join(explicit(path, "--repo")?), Source::Flag);
        }
        if let Some(path) = env {
            return Fleet::open(&cwd.join(explicit(path, FLEET_ENV)?), Source::Env);
        }
        if let Some(root) = cwd.ancestors().find(|dir| looks_like_fleet(dir)) {
            return Fleet::open(root, Source::WalkUp);
        }
        let default = home.map(|h| h.join(".kube-dc/fleet"));
        match default {
            Some(path) if path.exists() => Fleet::open(&path, Source::Default),
            _ => Err(Error::usage(format!(
                "no fleet repo found: {} and its parents hold no {SOPS_CONFIG} with a {CLUSTERS_DIR}/ directory",
                cwd.display()
            ))
            .with_hint(format!("pass --repo <fleet-root> or set {FLEET_ENV}"))),
        }
    }

    /// [`Fleet::discover`] with this process's environment, current directory and home.
    pub fn discover_here(flag: Option<&Path>) -> Result<Fleet> {
        let env = std::env::var_os(FLEET_ENV).map(PathBuf::from);
        let cwd = std::env::current_dir()
            .map_err(|e| Error::failed(format!("current directory: {e}")))?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Fleet::discover(flag, env.as_deref(), &cwd, home.as_deref())
    }

    pub fn open(path: &Path, source: Source) -> Result<Fleet> {
        let origin = match source {
            Source::Flag => "--repo",
            Source::Env => FLEET_ENV,
            Source::WalkUp => "the fleet found above the current directory",
            Source::Default => "the default fleet",
        };
        let root = path.canonicalize().map_err(|e| {
            Error::usage(format!(
                "{origin} points to {}, which cannot be opened: {e}",
                path.display()
            ))
        })?;
        if !looks_like_fleet(&root) {
            return Err(Error::usage(format!(
                "{origin} points to {}, which is not a fleet repo (it needs {SOPS_CONFIG} and {CLUSTERS_DIR}/ at its root)",
                root.display()
            )));
        }
        Ok(Fleet { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sops_config_path(&self) -> PathBuf {
        self.root.join(SOPS_CONFIG)
    }

    /// Every cluster (see `discovery` for which directories are clusters), sorted by name.
    /// A symbolic link to a directory there is an error, not a cluster skipped in silence
    /// (see `safe_fs`).
    pub fn clusters(&self) -> Result<Vec<Cluster>> {
        let base = Dir::open(&self.root)
            .and_then(|root| root.open_dir(Path::new(CLUSTERS_DIR)))
            .map_err(safe_fs::FileError::usage)?;
        let mut clusters: Vec<Cluster> =
            discovery::cluster_names(&base, &[cluster_config::FILE_NAME, BREAK_GLASS_FILE])?
                .iter()
                .filter_map(|rel| Some(self.cluster_at(ClusterName::parse(rel).ok()?)))
                .collect();
        clusters.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(clusters)
    }

    /// The cluster called `name`, or an error naming the closest existing clusters.
    pub fn cluster(&self, name: &str) -> Result<Cluster> {
        let name = ClusterName::parse(name)?;
        let cluster = self.cluster_at(name);
        // Its directory is enough, as for the Go tool: `adopt` may be the first file in it.
        match Dir::open(&self.root).and_then(|root| root.open_dir(&cluster.rel(""))) {
            Ok(_) => return cluster.check_config_file().map(|()| cluster),
            Err(e) if !e.is_not_found() => return Err(e.usage()),
            Err(_) => {}
        }
        let known = self.clusters()?;
        let mut err = Error::usage(format!(
            "unknown cluster {:?}: {} does not exist",
            cluster.name.as_str(),
            cluster.dir().display()
        ));
        let close = closest(cluster.name.as_str(), known.iter().map(|c| c.name.as_str()));
        if !close.is_empty() {
            err = err.with_hint(format!("did you mean {}?", close.join(", ")));
        } else if !known.is_empty() {
            err = err.with_hint(format!("clusters in this fleet: {}", names_preview(&known)));
        }
        Err(err)
    }

    /// The cluster called `name`, which must have a break-glass file.
    pub fn adopted_cluster(&self, name: &str) -> Result<Cluster> {
        let cluster = self.cluster(name)?;
        if std::fs::symlink_metadata(cluster.break_glass_path()).is_err() {
            return Err(Error::failed(format!(
                "cluster {} is not adopted: {} does not exist",
                cluster.name,
                cluster.break_glass_rel()
            ))
            .with_hint(format!(
                "adopt it once with an admin login: kube-dc bootstrap break-glass adopt {} --kube-context <admin-context>",
                crate::shell::quote(cluster.name.as_str())
            )));
        }
        Ok(cluster)
    }

    fn cluster_at(&self, name: ClusterName) -> Cluster {
        let dir = self.root.join(CLUSTERS_DIR).join(name.as_str());
        Cluster {
            name,
            dir,
            root: self.root.clone(),
        }
    }
}

/// An explicit but empty choice is a mistake (a variable set from an empty one), never
/// a reason to look elsewhere.
fn nonempty<'a>(path: &'a Path, origin: &str) -> Result<&'a Path> {
    if path.as_os_str().is_empty() {
        return Err(Error::usage(format!(
            "{origin} is empty: it must name the fleet repo root"
        ))
        .with_hint(format!(
            "pass --repo <fleet-root>, set {FLEET_ENV}=<fleet-root>, or unset {FLEET_ENV} to use the fleet around the current directory"
        )));
    }
    Ok(path)
}

fn looks_like_fleet(dir: &Path) -> bool {
    dir.join(SOPS_CONFIG).is_file() && dir.join(CLUSTERS_DIR).is_dir()
}

fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = names
        .map(|n| (strsim::jaro_winkler(wanted, n), n))
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn names_preview(clusters: &[Cluster]) -> String {
    let mut names: Vec<&str> = clusters.iter().take(10).map(|c| c.name.as_str()).collect();
    if clusters.len() > names.len() {
        names.push("...");
    }
    names.join(", ")
}

#[derive(Debug, Clone)]
pub struct Cluster {
    name: ClusterName,
    dir: PathBuf,
    /// The fleet root: every file of the cluster is opened below it (see `safe_fs`).
    root: PathBuf,
}

impl Cluster {
    pub fn name(&self) -> &ClusterName {
        &self.name
    }

    pub fn fleet_root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(cluster_config::FILE_NAME)
    }

    /// Its `cluster-config.env`; none (clusters the Go tool adopted may have only their
    /// break-glass file) reads as an empty one.
    pub fn config(&self) -> Result<ClusterConfig> {
        let rel = self.rel(cluster_config::FILE_NAME);
        match safe_fs::open_beneath(&self.root, &rel) {
            Err(e) if e.is_not_found() => Ok(ClusterConfig::default()),
            _ => ClusterConfig::load(&self.root, &rel),
        }
    }

    /// A `cluster-config.env` that is there must be a file kube-dc may read (not a link,
    /// FIFO or device): refused at once, with its path, whatever the command.
    fn check_config_file(&self) -> Result<()> {
        match safe_fs::open_beneath(&self.root, &self.rel(cluster_config::FILE_NAME)) {
            Err(e) if !e.is_not_found() => Err(e.usage()),
            _ => Ok(()),
        }
    }

    /// `clusters/<name>/<file>`, relative to the fleet root.
    fn rel(&self, file: &str) -> PathBuf {
        Path::new(CLUSTERS_DIR).join(self.name.as_str()).join(file)
    }

    /// The cluster's directory, reached from the fleet root through no symbolic link.
    pub fn open_dir(&self) -> Result<Dir> {
        Dir::open(&self.root)
            .and_then(|root| root.open_dir(&self.rel("")))
            .map_err(|e| e.usage())
    }

    /// The break-glass file, opened as `safe_fs` opens files (a regular file, below the
    /// fleet root through no link).
    pub fn open_break_glass(&self) -> FsResult<RegularFile> {
        safe_fs::open_beneath(&self.root, &self.rel(BREAK_GLASS_FILE))
    }

    pub fn break_glass_path(&self) -> PathBuf {
        self.dir.join(BREAK_GLASS_FILE)
    }

    /// The break-glass file relative to the fleet root, `/`-separated: the path sops
    /// matches against `.sops.yaml` and Git stores.
    pub fn break_glass_rel(&self) -> String {
        format!("{CLUSTERS_DIR}/{}/{BREAK_GLASS_FILE}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_explicit_fleet_is_an_error() {
        let cwd = std::env::temp_dir();
        for (flag, env, origin) in [
            (Some(Path::new("")), None, "--repo is empty"),
            (None, Some(Path::new("")), "KUBE_DC_FLEET is empty"),
        ] {
            let err = Fleet::discover(flag, env, &cwd, None).unwrap_err();
            assert!(err.message().starts_with(origin), "{err}");
            assert_eq!(err.exit(), crate::error::Exit::Usage);
        }
    }

    #[test]
    fn closest_names_rank_by_similarity() {
        let names = ["alpha", "beta", "eu/dc1", "eu/dc2"];
        assert_eq!(closest("alpa", names.into_iter()), vec!["alpha"]);
        assert_eq!(
            closest("eu/dc3", names.into_iter())[..2],
            ["eu/dc1", "eu/dc2"]
        );
        assert!(closest("zzzz", names.into_iter()).is_empty());
    }
}
