//! The local journal of `use` sessions: `~/.kube-dc/journal/<fleet-id>.jsonl` (0600 in a
//! 0700 directory, outside the fleet tree), one JSON object per line, each appended with a
//! single `write` on an `O_APPEND` descriptor so concurrent sessions never interleave.
//! The directory goes through [`state_dir`] (no link, ours, private); the file is opened
//! through its descriptor, never through a link or blocking on a FIFO, must be our own
//! regular file with one link, and is read at most 16 MiB.
//!
//! A session is written when it starts (so a killed kube-dc still leaves it) and again
//! when it ends; the later line wins. A rotation that commits the cluster's file lists
//! the sessions not yet reviewed in its message, then appends a `reviewed` line naming
//! them: each session appears in exactly one rotation commit. No secret is ever written:
//! [`Session`] has no field for one.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::Session;
use crate::error::{Error, Result, describe_io};
use crate::safe_fs::{Kind, RegularFile};
use crate::state_dir;

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
    home: PathBuf,
    name: String,
}

impl Journal {
    pub fn for_fleet(fleet_root: &Path) -> Result<Journal> {
        let home = state_dir::home()?;
        let root = fleet_root
            .canonicalize()
            .unwrap_or_else(|_| fleet_root.to_path_buf());
        let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
        let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Journal {
            home,
            name: format!("{id}.jsonl"),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.home
            .join(state_dir::STATE_DIR)
            .join(state_dir::JOURNAL)
            .join(&self.name)
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
        let dir = match state_dir::open_existing(&self.home, state_dir::JOURNAL) {
            Ok(Some(dir)) => dir,
            Ok(None) => return Ok(BTreeMap::new()),
            Err(why) => {
                return Err(Error::failed(format!(
                    "not reading the session journal: {why}"
                )));
            }
        };
        let bytes = match dir.read(Path::new(&self.name), JOURNAL) {
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
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| Error::failed(format!("cannot encode a journal entry: {e}")))?;
        line.push(b'\n');
        let warn = &mut |w: &str| crate::ui::to_stderr(&format!("warning: {w}\n"));
        let dir = state_dir::open_private(&self.home, state_dir::JOURNAL, warn)?;
        let mut journal = dir
            .open_append(OsStr::new(&self.name))
            .map_err(|e| e.failed())?;
        self.check_own(&journal)?;
        journal.file.write_all(&line).map_err(|e| {
            Error::failed(format!(
                "cannot write the session journal {}: {}",
                journal.path.display(),
                describe_io(&e)
            ))
        })
    }

    /// A journal that is not our own single-link file could be someone else's file.
    fn check_own(&self, journal: &RegularFile) -> Result<()> {
        let me = nix::unistd::geteuid().as_raw();
        let why = match (journal.meta.uid(), journal.meta.nlink()) {
            (uid, _) if uid != me => format!("it is owned by uid {uid}, not by you (uid {me})"),
            (_, links) if links > 1 => format!("it has {links} hard links"),
            // Ours: a mode that lets others read it is repaired through the descriptor.
            _ if journal.meta.mode() & 0o077 != 0 => {
                use std::os::unix::fs::PermissionsExt;
                let private = std::fs::Permissions::from_mode(0o600);
                return journal.file.set_permissions(private).map_err(|e| {
                    Error::failed(format!("chmod 600 {}: {e}", journal.path.display()))
                });
            }
            _ => return Ok(()),
        };
        Err(Error::failed(format!(
            "refusing to write the session journal {}: {why}",
            journal.path.display()
        ))
        .with_hint("move it away; kube-dc starts a new one"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breakglass::audit::Person;

    fn journal(home: &Path) -> Journal {
        Journal {
            home: home.to_path_buf(),
            name: "fleet.jsonl".into(),
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
        assert_eq!(mode(&j.path()), 0o600);
        assert_eq!(mode(j.path().parent().unwrap()), 0o700);
    }
}
