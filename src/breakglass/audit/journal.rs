//! The local journal of `use` sessions: `~/.kube-dc/journal/<fleet-id>.jsonl` (0600 in a
//! 0700 directory, outside the fleet tree), one JSON object per line, each appended with a
//! single `write` on an `O_APPEND` descriptor so concurrent sessions never interleave.
//!
//! A session is written when it starts (so a killed kube-dc still leaves it) and again
//! when it ends; the later line wins. A rotation that commits the cluster's file lists
//! the sessions not yet reviewed in its message, then appends a `reviewed` line naming
//! them: each session appears in exactly one rotation commit. No secret is ever written:
//! [`Session`] has no field for one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::Session;
use crate::error::{Error, Result};
use crate::safe_fs::{self, Kind};

pub const JOURNAL_DIR: &str = ".kube-dc/journal";
const JOURNAL: Kind = Kind::new("session journal", 16 << 20);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry {
    Session(Session),
    /// These sessions went into a rotation's commit message.
    Reviewed {
        ids: Vec<String>,
        at: DateTime<Utc>,
    },
}

/// The journal of one fleet (told apart by its canonical path).
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn for_fleet(fleet_root: &Path) -> Result<Journal> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::failed("HOME is not set: no place for the session journal")
                    .with_hint("set HOME to your home directory")
            })?;
        let root = fleet_root
            .canonicalize()
            .unwrap_or_else(|_| fleet_root.to_path_buf());
        let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
        let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Journal {
            path: Path::new(&home)
                .join(JOURNAL_DIR)
                .join(format!("{id}.jsonl")),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append_session(&self, session: &Session) -> Result<()> {
        self.append(&Entry::Session(session.clone()))
    }

    pub fn mark_reviewed(&self, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.append(&Entry::Reviewed {
            ids,
            at: Utc::now(),
        })
    }

    /// The cluster's sessions that no rotation commit has listed yet, oldest first.
    pub fn unreviewed(&self, cluster: &str) -> Result<Vec<Session>> {
        Ok(self.unreviewed_all()?.remove(cluster).unwrap_or_default())
    }

    /// [`Journal::unreviewed`] for every cluster, from one read of the journal.
    pub fn unreviewed_all(&self) -> Result<BTreeMap<String, Vec<Session>>> {
        let bytes = match safe_fs::read_file(&self.path, JOURNAL) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.failed()),
        };
        let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
        let mut reviewed = BTreeSet::new();
        // A line cut by a crash, or written by a newer kube-dc, is skipped.
        for line in bytes.split(|&b| b == b'\n') {
            match serde_json::from_slice::<Entry>(line) {
                Ok(Entry::Session(s)) => {
                    sessions.insert(s.id.clone(), s);
                }
                Ok(Entry::Reviewed { ids, .. }) => reviewed.extend(ids),
                Err(_) => {}
            }
        }
        let mut by_cluster: BTreeMap<String, Vec<Session>> = BTreeMap::new();
        for session in sessions.into_values().filter(|s| !reviewed.contains(&s.id)) {
            by_cluster
                .entry(session.cluster.clone())
                .or_default()
                .push(session);
        }
        by_cluster
            .values_mut()
            .for_each(|list| list.sort_by_key(|s| s.start));
        Ok(by_cluster)
    }

    fn append(&self, entry: &Entry) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::failed(format!(
                "cannot write the session journal {}: {e}",
                self.path.display()
            ))
        };
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(fail)?;
        }
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| Error::failed(format!("cannot encode a journal entry: {e}")))?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(fail)?;
        file.write_all(&line).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breakglass::audit::Person;

    fn journal(dir: &Path) -> Journal {
        Journal {
            path: dir.join("j/fleet.jsonl"),
        }
    }

    #[test]
    fn lists_the_latest_state_of_unreviewed_sessions_of_one_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let person = Person {
            git: "Ann <ann@example.org>".into(),
            user: "ann".into(),
            host: "laptop".into(),
        };
        let mut a = Session::begin("alpha", &person, "INC-1");
        a.id = "a".into();
        let mut b = Session::begin("beta", &person, "INC-2");
        b.id = "b".into();
        j.append_session(&a).unwrap();
        j.append_session(&b).unwrap();
        a.finish(3);
        j.append_session(&a).unwrap();
        let open = j.unreviewed("alpha").unwrap();
        assert_eq!(open, vec![a.clone()]);
        j.mark_reviewed(vec![a.id.clone()]).unwrap();
        assert!(j.unreviewed("alpha").unwrap().is_empty());
        assert_eq!(j.unreviewed("beta").unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&j.path), 0o600);
        assert_eq!(mode(j.path.parent().unwrap()), 0o700);
    }
}
