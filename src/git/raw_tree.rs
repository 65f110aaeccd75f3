//! Tree objects read from the object database and parsed in place, for the history walk.
//!
//! `status --all` compares each commit's `clusters/` tree (one entry per cluster) with its
//! parent's, some 5,000 times on a big fleet. libgit2's tree parser allocates and
//! parses an octal mode for every entry, and each entry access builds an object: that
//! was most of the walk. Here a tree is its raw bytes plus the offsets of its entries,
//! and entries are compared as bytes. A commit usually changes the ids in a directory and
//! nothing else: then the parent's version has the very same offsets, found by comparing
//! the two objects' bytes, and is not parsed at all.

use std::cmp::Ordering;
use std::rc::Rc;

use git2::{ObjectType, Odb, OdbObject, Oid};

/// A tree's raw object and where its entries are.
pub(crate) struct RawTree<'o> {
    id: Oid,
    object: OdbObject<'o>,
    /// Shared by versions of a directory that differ in entry ids only.
    entries: Rc<[Span]>,
}

/// One entry of the raw object: `<octal mode> <name>\0<object id>`.
#[derive(Clone, Copy)]
struct Span {
    name_start: usize,
    name_end: usize,
    is_tree: bool,
}

/// An entry, borrowed from its tree.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'t> {
    pub name: &'t [u8],
    pub is_tree: bool,
    id: &'t [u8],
}

impl Entry<'_> {
    pub fn id(&self) -> Oid {
        Oid::from_bytes(self.id).unwrap_or(Oid::ZERO_SHA1)
    }

    pub fn same_id(&self, other: &Entry) -> bool {
        self.id == other.id
    }

    pub fn has_id(&self, id: Oid) -> bool {
        self.id == id.as_bytes()
    }
}

impl<'o> RawTree<'o> {
    /// Reads tree `id`. `like` is a tree it may differ from in entry ids only (the same
    /// directory one commit later): then its entry offsets are taken over, not parsed.
    pub fn read(odb: &'o Odb, id: Oid, like: Option<&RawTree<'o>>) -> Result<Self, git2::Error> {
        let object = odb.read(id)?;
        if object.kind() != ObjectType::Tree {
            return Err(malformed(id, "not a tree"));
        }
        let entries = match like.filter(|like| same_layout(object.data(), like)) {
            Some(like) => like.entries.clone(),
            None => spans(object.data(), id.as_bytes().len())
                .ok_or(malformed(id, "bad entry"))?
                .into(),
        };
        Ok(RawTree {
            id,
            object,
            entries,
        })
    }

    /// Whether entry `i` of one is entry `i` of the other, ids aside: then comparing ids
    /// position by position finds every change.
    pub fn same_layout(&self, other: &RawTree) -> bool {
        Rc::ptr_eq(&self.entries, &other.entries)
    }

    pub fn id(&self) -> Oid {
        self.id
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, index: usize) -> Option<Entry<'_>> {
        let span = self.entries.get(index)?;
        let data = self.object.data();
        let id_len = self.id.as_bytes().len();
        Some(Entry {
            name: data.get(span.name_start..span.name_end)?,
            is_tree: span.is_tree,
            id: data.get(span.name_end + 1..span.name_end + 1 + id_len)?,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The entry named `name`, a directory or not (Git's order differs for the two, so
    /// each is looked for by binary search).
    pub fn by_name(&self, name: &[u8]) -> Option<Entry<'_>> {
        [true, false].into_iter().find_map(|is_tree| {
            let at = self.entries.partition_point(|&span| {
                self.entry(span)
                    .is_some_and(|e| git_order(e.name, e.is_tree, name, is_tree) == Ordering::Less)
            });
            self.get(at)
                .filter(|e| e.name == name && e.is_tree == is_tree)
        })
    }

    fn entry(&self, span: Span) -> Option<Entry<'_>> {
        let data = self.object.data();
        Some(Entry {
            name: data.get(span.name_start..span.name_end)?,
            is_tree: span.is_tree,
            id: &[],
        })
    }
}

/// The entries of a raw tree, or `None` if it is not well formed.
fn spans(data: &[u8], id_len: usize) -> Option<Vec<Span>> {
    // An entry is at least a 5-digit mode, a space, a 1-byte name, a NUL and the id.
    let mut entries = Vec::with_capacity(data.len() / (id_len + 8));
    let mut at = 0;
    while let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) {
        let nul = rest.iter().position(|&b| b == 0)?;
        let space = rest.get(..nul)?.iter().position(|&b| b == b' ')?;
        let mode = rest.get(..space)?;
        if mode.is_empty() || !mode.iter().all(u8::is_ascii_digit) {
            return None;
        }
        entries.push(Span {
            name_start: at + space + 1,
            name_end: at + nul,
            // Git writes "40000"; old tools zero-padded it.
            is_tree: matches!(mode, b"40000" | b"040000"),
        });
        at += nul + 1 + id_len;
    }
    (at == data.len()).then_some(entries)
}

/// Whether `data` is laid out as `like` is: the same length, and every byte that differs
/// lies inside an entry's object id.
fn same_layout(data: &[u8], like: &RawTree) -> bool {
    let base = like.object.data();
    if data.len() != base.len() {
        return false;
    }
    let id_len = like.id.as_bytes().len();
    let mut at = 0;
    while let (Some(ours), Some(theirs)) = (data.get(at..), base.get(at..)) {
        let Some(offset) = first_difference(ours, theirs) else {
            return true;
        };
        let differs = at + offset;
        // The last entry whose id starts at or before the difference.
        let after = like.entries.partition_point(|s| s.name_end < differs);
        let Some(span) = after.checked_sub(1).and_then(|i| like.entries.get(i)) else {
            return false;
        };
        let id_end = span.name_end + 1 + id_len;
        if differs >= id_end {
            return false;
        }
        at = id_end;
    }
    true
}

/// Where `a` and `b` (of one length) first differ: equal chunks are compared as a whole.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let mut at = 0;
    for (x, y) in a.chunks(CHUNK).zip(b.chunks(CHUNK)) {
        if x != y {
            return x.iter().zip(y).position(|(p, q)| p != q).map(|i| at + i);
        }
        at += x.len();
    }
    None
}

fn malformed(id: Oid, why: &str) -> git2::Error {
    git2::Error::from_str(&format!("tree {id} is malformed ({why})"))
}

/// Git's tree entry order: byte order, a directory's name compared as if ending in `/`.
pub(crate) fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> Ordering {
    let n = a.len().min(b.len());
    let next = |name: &[u8], tree| {
        let end = if tree { b'/' } else { 0 };
        name.get(n).copied().unwrap_or(end)
    };
    a.iter()
        .take(n)
        .cmp(b.iter().take(n))
        .then_with(|| next(a, a_tree).cmp(&next(b, b_tree)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose root tree holds `names` (a trailing `/` makes a directory).
    fn tree_of(names: &[&str]) -> (tempfile::TempDir, git2::Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let id = {
            let mut sub = repo.treebuilder(None).unwrap();
            sub.insert("f", blob, 0o100644).unwrap();
            let sub = sub.write().unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            for name in names {
                match name.strip_suffix('/') {
                    Some(dir) => root.insert(dir, sub, 0o040000).unwrap(),
                    None => root.insert(name, blob, 0o100644).unwrap(),
                };
            }
            root.write().unwrap()
        };
        (dir, repo, id)
    }

    #[test]
    fn entries_match_libgit2s_parse_in_order_kind_and_id() {
        let names = ["a", "a-b", "a.b", "a/", "ab/", "b", "c d", "z/"];
        let (_dir, repo, id) = tree_of(&names);
        let odb = repo.odb().unwrap();
        let raw = RawTree::read(&odb, id, None).unwrap();
        let parsed = repo.find_tree(id).unwrap();
        assert_eq!(raw.len(), parsed.len());
        for (ours, theirs) in raw.iter().zip(parsed.iter()) {
            assert_eq!(ours.name, theirs.name_bytes());
            assert_eq!(ours.is_tree, theirs.kind() == Some(ObjectType::Tree));
            assert_eq!(ours.id(), theirs.id());
            let found = raw.by_name(ours.name).unwrap();
            assert_eq!(found.id(), theirs.id(), "{:?}", theirs.name());
        }
        assert!(raw.by_name(b"nope").is_none());
        assert!(raw.by_name(b"a/").is_none());
    }

    /// A tree of blobs in `repo`: (name, content, mode).
    fn blobs(repo: &git2::Repository, entries: &[(&str, &str, i32)]) -> Oid {
        let mut tree = repo.treebuilder(None).unwrap();
        for (name, content, mode) in entries {
            tree.insert(name, repo.blob(content.as_bytes()).unwrap(), *mode)
                .unwrap();
        }
        tree.write().unwrap()
    }

    /// Reads `id` like `like` and checks every entry against libgit2's parse.
    fn read_like<'o>(
        repo: &git2::Repository,
        odb: &'o Odb,
        id: Oid,
        like: &RawTree<'o>,
    ) -> RawTree<'o> {
        let raw = RawTree::read(odb, id, Some(like)).unwrap();
        let parsed = repo.find_tree(id).unwrap();
        let ours: Vec<_> = raw.iter().map(|e| (e.name.to_vec(), e.id())).collect();
        let theirs: Vec<_> = parsed
            .iter()
            .map(|e| (e.name_bytes().to_vec(), e.id()))
            .collect();
        assert_eq!(ours, theirs);
        raw
    }

    #[test]
    fn a_version_that_differs_in_ids_only_shares_the_layout_and_no_other_does() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let (file, exe) = (0o100644, 0o100755);
        let base = [("a", "1", file), ("b", "2", file), ("c", "3", file)];
        let first = RawTree::read(&odb, blobs(&repo, &base), None).unwrap();
        let shared = [
            [("a", "1", file), ("b", "X", file), ("c", "3", file)],
            [("a", "Y", file), ("b", "2", file), ("c", "Z", file)],
        ];
        for entries in shared {
            let raw = read_like(&repo, &odb, blobs(&repo, &entries), &first);
            assert!(raw.same_layout(&first));
        }
        let own = [
            [("a", "1", file), ("x", "2", file), ("c", "3", file)],
            [("a", "1", file), ("b", "2", exe), ("c", "3", file)],
            [("a", "1", file), ("b", "2", file), ("cc", "3", file)],
        ];
        for entries in own {
            let raw = read_like(&repo, &odb, blobs(&repo, &entries), &first);
            assert!(!raw.same_layout(&first));
        }
        let fewer = read_like(&repo, &odb, blobs(&repo, &base[..2]), &first);
        assert!(!fewer.same_layout(&first));
    }

    #[test]
    fn a_blob_or_a_malformed_tree_is_an_error() {
        let (_dir, repo, _) = tree_of(&["a"]);
        let odb = repo.odb().unwrap();
        let blob = repo.blob(b"100644 a").unwrap();
        assert!(RawTree::read(&odb, blob, None).is_err());
        let bad = odb.write(ObjectType::Tree, b"100644 a\0short").unwrap();
        let err = RawTree::read(&odb, bad, None).err().unwrap();
        assert!(err.message().contains("malformed"), "{err}");
    }
}
