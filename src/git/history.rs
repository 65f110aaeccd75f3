//! The last commit that touched each of many paths, from ONE walk of the history.
//!
//! `git log -1 -- <file>` walks the whole history for each file: on a fleet with old
//! break-glass files that is ~1 s per cluster. Here one revwalk serves every path and stops
//! once all are found. Each commit is compared with its parents by tree entry ids, level by
//! level, descending only into the subtrees that hold wanted paths and that changed, so a
//! commit that touched one cluster costs one pass over `clusters/` and one cluster dir.
//!
//! A commit "touched" a path when its blob there is the one `HEAD` has and it differs from
//! every parent's (a merge that took one side's file did not touch it; that side's commit
//! did). Matching `HEAD`'s blob keeps a side branch's older change from being reported.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use std::rc::Rc;

use git2::{Odb, Oid, Repository};

use super::raw_tree::{self, RawTree, git_order};
use super::repo::{CommitInfo, Repo, git_error};
use super::tree_paths::TreePaths;
use crate::error::Result;

impl Repo {
    /// For each fleet-relative path that exists in `HEAD`, the last commit that touched it.
    pub fn last_commits(&self, rels: &[String]) -> Result<HashMap<String, CommitInfo>> {
        let head_tree = match self.repo.head().and_then(|h| h.peel_to_tree()) {
            Ok(tree) => tree,
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => return Ok(HashMap::new()),
            Err(e) => return Err(git_error("reading HEAD", e)),
        };
        let mut dirs = TreePaths::new(&self.repo, head_tree);
        let wanted: Vec<(String, Oid)> = rels
            .iter()
            .filter_map(|rel| {
                let path = self.repo_path(rel);
                let blob = dirs.entry_id(&path)?;
                Some((path, blob))
            })
            .collect();
        // Re-hashing every tree read was a quarter of the walk's time; `git log` does not
        // verify objects on read either. Writes go through the git CLI, so nothing else changes.
        git2::opts::strict_hash_verification(false);
        let found = walk(&self.repo, &wanted).map_err(|e| git_error("walking the history", e))?;
        let mut infos: HashMap<Oid, CommitInfo> = HashMap::new();
        let mut result = HashMap::new();
        for (index, commit) in found {
            // `walk` reports indices into `wanted`.
            let Some((wanted_path, _)) = wanted.get(index) else {
                continue;
            };
            let info = match infos.entry(commit) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(
                    commit_info(&self.repo, commit)
                        .map_err(|e| git_error("reading a commit", e))?,
                ),
            };
            let rel = self.fleet_path(wanted_path).unwrap_or_default().to_string();
            result.insert(rel, info.clone());
        }
        Ok(result)
    }
}

pub(super) fn commit_info(repo: &Repository, id: Oid) -> Result<CommitInfo, git2::Error> {
    let commit = repo.find_commit(id)?;
    let author = commit.author();
    let when = author.when();
    let short_id = commit.as_object().short_id()?;
    Ok(CommitInfo {
        id: id.to_string(),
        short_id: short_id.as_str().unwrap_or_default().to_string(),
        author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
        date: chrono::DateTime::from_timestamp(when.seconds(), 0).unwrap_or_default(),
        subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
    })
}

/// The wanted paths as a tree of names; `pending` counts unresolved leaves below.
#[derive(Default)]
struct Node {
    children: HashMap<Vec<u8>, Node>,
    /// For a leaf: its index in the wanted list and the blob `HEAD` has there.
    leaf: Option<(usize, Oid)>,
    pending: usize,
}

impl Node {
    fn build(wanted: &[(String, Oid)]) -> Node {
        let mut root = Node::default();
        for (index, (path, blob)) in wanted.iter().enumerate() {
            let mut node = &mut root;
            for part in path.split('/') {
                node.pending += 1;
                node = node.children.entry(part.as_bytes().to_vec()).or_default();
            }
            node.pending += 1;
            node.leaf = Some((index, *blob));
        }
        root
    }
}

/// Returns (index in `wanted`, commit) pairs.
fn walk(repo: &Repository, wanted: &[(String, Oid)]) -> Result<Vec<(usize, Oid)>, git2::Error> {
    let mut root = Node::build(wanted);
    let mut found = Vec::new();
    if root.pending == 0 {
        return Ok(found);
    }
    let mut revwalk = repo.revwalk()?;
    revwalk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    revwalk.push_head()?;
    let odb = repo.odb()?;
    let mut trees = TreeCache::new(&odb);
    for id in revwalk {
        let commit = repo.find_commit(id?)?;
        let tree = trees.get(commit.tree_id(), None)?;
        let parents = commit
            .parents()
            .map(|p| trees.get(p.tree_id(), Some(&tree)).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        let mut hits = Vec::new();
        visit(&mut root, &tree, &parents, &mut trees, &mut hits)?;
        found.extend(hits.into_iter().map(|index| (index, commit.id())));
        if root.pending == 0 {
            break;
        }
        trees.next_commit();
    }
    Ok(found)
}

type Shared<'o> = Rc<RawTree<'o>>;

/// Resolves the leaves under `node` that this commit touched, updating `pending` on the
/// way back up; returns how many.
fn visit<'o>(
    node: &mut Node,
    tree: &RawTree<'o>,
    parents: &[Option<Shared<'o>>],
    trees: &mut TreeCache<'o>,
    hits: &mut Vec<usize>,
) -> Result<usize, git2::Error> {
    let mut resolved = 0;
    for i in changed_entries(tree, parents.first().and_then(Option::as_deref)) {
        let Some(entry) = tree.get(i) else { continue };
        let Some(child) = node.children.get_mut(entry.name) else {
            continue;
        };
        let same_as = |p: &Option<Shared>| {
            p.as_ref()
                .and_then(|t| t.by_name(entry.name))
                .is_some_and(|e| e.same_id(&entry))
        };
        if child.pending == 0 || parents.iter().skip(1).any(same_as) {
            continue;
        }
        let count = match child.leaf {
            Some((index, blob)) if entry.has_id(blob) => {
                hits.push(index);
                child.pending = 0;
                1
            }
            Some(_) => 0,
            None if entry.is_tree => {
                let subtree = trees.get(entry.id(), None)?;
                let sub_parents = parents
                    .iter()
                    .map(|p| subtree_of(p.as_deref(), entry.name, &subtree, trees))
                    .collect::<Result<Vec<_>, _>>()?;
                visit(child, &subtree, &sub_parents, trees, hits)?
            }
            None => 0,
        };
        resolved += count;
    }
    node.pending -= resolved;
    Ok(resolved)
}

/// The parent's version of directory `name`, probably laid out like ours.
fn subtree_of<'o>(
    parent: Option<&RawTree<'o>>,
    name: &[u8],
    ours: &RawTree<'o>,
    trees: &mut TreeCache<'o>,
) -> Result<Option<Shared<'o>>, git2::Error> {
    match parent.and_then(|t| t.by_name(name)) {
        Some(e) if e.is_tree => trees.get(e.id(), Some(ours)).map(Some),
        _ => Ok(None),
    }
}

/// Indices of `tree`'s entries that are absent from `base` or differ from it: a merge of
/// the two sorted entry lists, comparing ids only.
fn changed_entries(tree: &RawTree, base: Option<&RawTree>) -> Vec<usize> {
    let Some(base) = base else {
        return (0..tree.len()).collect();
    };
    if tree.id() == base.id() {
        return Vec::new();
    }
    if tree.same_layout(base) {
        return (0..tree.len())
            .filter(|&i| !matches!((tree.get(i), base.get(i)), (Some(a), Some(b)) if a.same_id(&b)))
            .collect();
    }
    if tree.len() == base.len() {
        return changed_in_place(tree, base);
    }
    let mut changed = Vec::new();
    let mut other = base.iter().peekable();
    for (i, entry) in tree.iter().enumerate() {
        let order = |o: &raw_tree::Entry| git_order(o.name, o.is_tree, entry.name, entry.is_tree);
        while other.peek().is_some_and(|o| order(o) == Ordering::Less) {
            other.next();
        }
        match other.peek() {
            Some(o) if order(o) == Ordering::Equal && o.same_id(&entry) => {}
            _ => changed.push(i),
        }
    }
    changed
}

/// The common case, a commit that changed entries without adding or removing any: compare
/// ids position by position, then confirm each difference by name, since an add plus a
/// remove also keeps the length and shifts positions.
fn changed_in_place(tree: &RawTree, base: &RawTree) -> Vec<usize> {
    (0..tree.len())
        .filter(|&i| match (tree.get(i), base.get(i)) {
            (Some(a), Some(b)) => !a.same_id(&b),
            _ => true,
        })
        .filter(|&i| {
            tree.get(i).is_some_and(|entry| {
                base.by_name(entry.name)
                    .is_none_or(|old| !old.same_id(&entry))
            })
        })
        .collect()
}

/// Keeps the trees of this commit and the previous one: in a linear history a commit's
/// parent trees are the next commit's own, so each tree is read once. Small trees (a
/// cluster's directory) are kept until used again: the parent's version of the directory
/// a commit changed is that directory's version at its next change down the history.
struct TreeCache<'o> {
    odb: &'o Odb<'o>,
    current: HashMap<Oid, Shared<'o>>,
    previous: HashMap<Oid, Shared<'o>>,
    kept: HashMap<Oid, Shared<'o>>,
}

/// A tree with at most this many entries is a small one.
const SMALL_TREE: usize = 32;

impl<'o> TreeCache<'o> {
    fn new(odb: &'o Odb<'o>) -> Self {
        TreeCache {
            odb,
            current: HashMap::new(),
            previous: HashMap::new(),
            kept: HashMap::new(),
        }
    }

    /// Tree `id`, read (see [`RawTree::read`] for `like`) unless kept.
    fn get(&mut self, id: Oid, like: Option<&RawTree<'o>>) -> Result<Shared<'o>, git2::Error> {
        if let Some(tree) = self.current.get(&id) {
            return Ok(tree.clone());
        }
        let tree = match self.previous.remove(&id).or_else(|| self.kept.remove(&id)) {
            Some(tree) => tree,
            None => Rc::new(RawTree::read(self.odb, id, like)?),
        };
        self.current.insert(id, tree.clone());
        Ok(tree)
    }

    fn next_commit(&mut self) {
        let small = self.previous.drain().filter(|(_, t)| t.len() <= SMALL_TREE);
        self.kept.extend(small);
        self.previous = std::mem::take(&mut self.current);
    }
}
