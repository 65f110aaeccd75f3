//! Looking up many paths in one commit's tree without re-reading shared directories.

use std::collections::HashMap;

use git2::{Oid, Repository, Tree};

/// A commit's directories by path, each read once: `Tree::get_path` re-reads every level
/// for every path, which on 1,000 clusters meant re-parsing `clusters/` 1,000 times.
pub(crate) struct TreePaths<'r> {
    repo: &'r Repository,
    dirs: HashMap<String, Option<Tree<'r>>>,
}

impl<'r> TreePaths<'r> {
    pub(crate) fn new(repo: &'r Repository, root: Tree<'r>) -> Self {
        TreePaths {
            repo,
            dirs: HashMap::from([(String::new(), Some(root))]),
        }
    }

    /// The id of the entry at `path` (`a/b/file`), if there is one.
    pub(crate) fn entry_id(&mut self, path: &str) -> Option<Oid> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let tree = self.dir(dir)?;
        tree.get_name(name).map(|e| e.id())
    }

    fn dir(&mut self, dir: &str) -> Option<Tree<'r>> {
        if let Some(known) = self.dirs.get(dir) {
            return known.clone();
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let tree = self
            .dir(parent)
            .and_then(|p| p.get_name(name).map(|e| e.id()))
            .and_then(|id| self.repo.find_tree(id).ok());
        self.dirs.insert(dir.to_string(), tree.clone());
        tree
    }
}
