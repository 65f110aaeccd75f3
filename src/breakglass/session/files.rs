//! The session directory `~/.kube-dc/break-glass` and the decrypted kubeconfigs in it.
//!
//! The directory is opened once (`O_DIRECTORY|O_NOFOLLOW`), checked through its descriptor
//! (ours, and private or repaired to 0700 with `fchmod`), and every file in it is created,
//! inspected and removed relative to that descriptor: no path is checked and then used.
//!
//! A session file is named `kubeconfig-<pid>.<start>-<random>.yaml`, after the kube-dc
//! process that wrote it (pid and start time, so that a reused pid is not mistaken for
//! it). Before the session's child runs its program, it records itself the same way in
//! `kubeconfig-<pid>.<start>-<random>.child` ([`ChildRecord`]). The sweep that every kube-dc run starts with removes a session
//! file only when both processes are gone, only if it is a regular file of ours with one
//! link, and only in a directory that nobody else can write to.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, describe_io};
use crate::process::{ENCODED_MAX, ProcessId, parse_start_time};
use crate::safe_fs::{self, Dir, file_kind};
use crate::state_dir;

const FILE_PREFIX: &str = "kubeconfig-";
const FILE_SUFFIX: &str = ".yaml";
const CHILD_SUFFIX: &str = ".child";
const CHILD_RECORD: safe_fs::Kind = safe_fs::Kind {
    name: "session child record",
    max_bytes: 64,
};
/// The most a wipe overwrites: far more than any kubeconfig.
const WIPE_MAX: u64 = 1 << 20;

/// What a name in the session directory is.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    /// `kubeconfig-<owner>-<random>.yaml`; `stem` is the name without `.yaml`.
    Session {
        owner: ProcessId,
        stem: String,
    },
    /// `<stem>.child`: the session's child.
    ChildRecord {
        stem: String,
    },
    /// Another `kubeconfig-*.yaml`: the Go kube-dc's `kubeconfig-<random>.yaml`.
    Foreign,
    Other,
}

impl Name {
    fn parse(name: &OsStr) -> Name {
        let Some(name) = name.to_str() else {
            return Name::Other;
        };
        if let Some(stem) = name.strip_suffix(CHILD_SUFFIX)
            && Name::owner(stem).is_some()
        {
            return Name::ChildRecord { stem: stem.into() };
        }
        let Some(stem) = name.strip_suffix(FILE_SUFFIX) else {
            return Name::Other;
        };
        match Name::owner(stem) {
            Some(owner) => Name::Session {
                owner,
                stem: stem.into(),
            },
            None if stem.starts_with(FILE_PREFIX) => Name::Foreign,
            None => Name::Other,
        }
    }

    /// The owner in `kubeconfig-<owner>-<random>`.
    fn owner(stem: &str) -> Option<ProcessId> {
        let (owner, random) = stem.strip_prefix(FILE_PREFIX)?.split_once('-')?;
        (!random.is_empty()).then_some(())?;
        ProcessId::decode(owner)
    }
}

/// `~/.kube-dc/break-glass` for a new session (see [`state_dir::open_private`]).
pub fn open_for_use(warn: &mut dyn FnMut(&str)) -> Result<Dir> {
    state_dir::open_private(&state_dir::home()?, state_dir::SESSIONS, warn)
}

/// The decrypted kubeconfig on disk for the session's length; overwritten and removed
/// when dropped (normal exit, error or panic unwinding).
pub struct SessionFile {
    dir: Dir,
    name: String,
}

impl SessionFile {
    /// Writes `content` to a new 0600 file named after this process.
    pub fn create(dir: Dir, content: &[u8]) -> Result<SessionFile> {
        let prefix = format!("{FILE_PREFIX}{}-", ProcessId::current().encode());
        let (mut file, name) = dir.create_unique(&prefix, FILE_SUFFIX).map_err(|e| {
            Error::failed(format!(
                "creating the session kubeconfig in {}: {}",
                dir.path().display(),
                describe_io(&e)
            ))
        })?;
        // From here on SessionFile owns the removal.
        let session = SessionFile { dir, name };
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                let why = describe_io(&e);
                Error::failed(format!("writing {}: {why}", session.path().display()))
            })?;
        Ok(session)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }

    /// What the session's child uses to record itself (see [`ChildRecord`]).
    pub fn child_record_writer(&self) -> Result<ChildRecord> {
        let fail = |e: String| {
            Error::failed(format!(
                "preparing the child record in {}: {e}",
                self.dir.path().display()
            ))
        };
        let dir = self.dir.try_clone().map_err(|e| fail(e.to_string()))?;
        let name = std::ffi::CString::new(self.child_record().into_vec())
            .map_err(|e| fail(e.to_string()))?;
        Ok(ChildRecord { dir, name })
    }

    /// Overwrites and removes the file now (also done on drop).
    pub fn wipe(&self) {
        wipe(&self.dir, OsStr::new(&self.name));
        let _ = self.dir.unlink(&self.child_record());
    }

    fn child_record(&self) -> OsString {
        let stem = self.name.strip_suffix(FILE_SUFFIX).unwrap_or(&self.name);
        OsString::from(format!("{stem}{CHILD_SUFFIX}"))
    }
}

/// Lets the session's child record itself (pid and start time) in the session directory
/// between fork and exec, before any of its own code runs: a sweep after kube-dc is
/// SIGKILLed then keeps the kubeconfig while the child (the operator's shell) runs, with
/// no moment in which the child runs unrecorded.
pub struct ChildRecord {
    dir: Dir,
    name: std::ffi::CString,
}

impl ChildRecord {
    /// Writes `<pid>.<start>` of the calling process. Only async-signal-safe system calls
    /// (getpid, open, read, openat, write, close) and no allocation: it runs in the forked
    /// child of a multi-threaded process. Best effort: a failure leaves no record, and the
    /// session still runs.
    pub fn record_self(&self) {
        let pid = nix::unistd::getpid().as_raw();
        let mut stat = [0u8; 1024];
        let start = nix::fcntl::open(
            c"/proc/self/stat",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .and_then(|fd| nix::unistd::read(&fd, &mut stat))
        .ok()
        .and_then(|n| parse_start_time(stat.get(..n)?));
        let me = ProcessId { pid, start };
        let mut line = [0u8; ENCODED_MAX];
        let len = me.encode_into(&mut line);
        if let Some(newline) = line.get_mut(len) {
            *newline = b'\n';
        }
        if let (Ok(file), Some(bytes)) = (
            self.dir.create_new_c(self.name.as_c_str()),
            line.get(..=len),
        ) {
            let _ = nix::unistd::write(&file, bytes);
        }
    }
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Overwrites then unlinks `name` in `dir`, only if it is a regular file of ours with a
/// single link (a hard link planted under a session name must not get its target zeroed),
/// opened without following a link or blocking. Best effort: filesystems may keep old
/// blocks. Returns whether it was removed.
fn wipe(dir: &Dir, name: &OsStr) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    let Ok(before) = dir.lstat(name) else {
        return false;
    };
    let plain = |uid, single_link: bool, regular: bool| regular && uid == me && single_link;
    let regular = file_kind(&before) == nix::sys::stat::SFlag::S_IFREG;
    if !plain(before.st_uid, before.st_nlink == 1, regular) {
        return false;
    }
    let Ok(mut file) = dir.open_existing_for_write(name) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    let same = meta.ino() == before.st_ino && meta.dev() == before.st_dev;
    if !same || !plain(meta.uid(), meta.nlink() == 1, meta.is_file()) {
        return false;
    }
    let zeros = vec![0u8; meta.len().min(WIPE_MAX) as usize];
    let _ = file.write_all(&zeros).and_then(|()| file.sync_all());
    dir.unlink(name).is_ok()
}

/// What a sweep did, for the caller to report.
#[derive(Debug, Default)]
pub struct Sweep {
    pub removed: usize,
    pub warnings: Vec<String>,
}

/// Removes session files whose kube-dc process and child are both gone (kube-dc killed
/// with SIGKILL, or the machine lost power), and reports kubeconfigs it cannot vouch for.
pub fn sweep_stale(home: &Path) -> Sweep {
    let mut sweep = Sweep::default();
    let dir = match state_dir::open_existing(home, state_dir::SESSIONS) {
        Ok(Some(dir)) => dir,
        Ok(None) => return sweep,
        Err(why) => {
            sweep.warnings.push(format!(
                "not sweeping break-glass session files: {why}; anything in it may have been planted. Fix: make it a directory of yours that others cannot write (chmod go-w), or move it away"
            ));
            return sweep;
        }
    };
    let Ok(names) = dir.names() else {
        return sweep;
    };
    for name in &names {
        match Name::parse(name) {
            Name::Session { owner, stem }
                if !owner.is_alive() && !child_alive(&dir, &stem) && wipe(&dir, name) =>
            {
                sweep.removed += 1;
                remove_record(&dir, &stem);
            }
            Name::ChildRecord { stem } if !names.contains(&session_name(&stem)) => {
                remove_record(&dir, &stem)
            }
            Name::Foreign => sweep.warnings.push(format!(
                "{} is a decrypted kubeconfig kube-dc did not write (the Go kube-dc names its session files so); kube-dc cannot tell whether a session still uses it and left it in place: delete it once none does (shred -u {})",
                dir.path().join(name).display(),
                dir.path().join(name).display()
            )),
            _ => {}
        }
    }
    sweep
}

fn session_name(stem: &str) -> OsString {
    OsString::from(format!("{stem}{FILE_SUFFIX}"))
}

fn child_alive(dir: &Dir, stem: &str) -> bool {
    let record = format!("{stem}{CHILD_SUFFIX}");
    let Ok(file) = dir.open_file(Path::new(&record)) else {
        return false;
    };
    if file.meta.uid() != nix::unistd::geteuid().as_raw() {
        return false;
    }
    let Ok(bytes) = file.read_all(CHILD_RECORD) else {
        return false;
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| ProcessId::decode(text.trim()))
        .is_some_and(|child| child.is_alive())
}

/// The child record is not secret: removed if it is a plain file of ours.
fn remove_record(dir: &Dir, stem: &str) {
    let record = OsString::from(format!("{stem}{CHILD_SUFFIX}"));
    let me = nix::unistd::geteuid().as_raw();
    if dir
        .lstat(&record)
        .is_ok_and(|s| file_kind(&s) == nix::sys::stat::SFlag::S_IFREG && s.st_uid == me)
    {
        let _ = dir.unlink(&record);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    /// A HOME with a private session directory.
    fn home() -> (tempfile::TempDir, PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let dir = home
            .path()
            .join(state_dir::STATE_DIR)
            .join(state_dir::SESSIONS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        (home, dir)
    }

    fn names(dir: &Path) -> Vec<String> {
        let names = Dir::open(dir).unwrap().names().unwrap();
        names
            .into_iter()
            .map(|n| n.into_string().unwrap())
            .collect()
    }

    #[test]
    fn names_are_parsed() {
        let me = ProcessId::current();
        let session = format!("kubeconfig-{}-a1b2.yaml", me.encode());
        assert!(
            matches!(Name::parse(OsStr::new(&session)), Name::Session { owner, .. } if owner == me)
        );
        assert!(matches!(
            Name::parse(OsStr::new("kubeconfig-4242-a1B2c3.yaml")),
            Name::Session {
                owner: ProcessId {
                    pid: 4242,
                    start: None
                },
                ..
            }
        ));
        assert_eq!(
            Name::parse(OsStr::new("kubeconfig-4242.77-x.child")),
            Name::ChildRecord {
                stem: "kubeconfig-4242.77-x".into()
            }
        );
        for foreign in [
            "kubeconfig-2847362841.yaml",
            "kubeconfig-x-1.yaml",
            "kubeconfig-0-a.yaml",
        ] {
            assert_eq!(Name::parse(OsStr::new(foreign)), Name::Foreign, "{foreign}");
        }
        for other in ["notes.txt", "other-4242-x.yaml", "kubeconfig-4242-.yaml"] {
            assert!(
                matches!(Name::parse(OsStr::new(other)), Name::Other | Name::Foreign),
                "{other}"
            );
        }
    }

    #[test]
    fn sweep_removes_files_of_dead_or_reused_owners_only() {
        let (home, dir) = home();
        let me = ProcessId::current();
        let reused = format!("{}.{}", me.pid, me.start.unwrap() + 1);
        let dead = crate::process::dead().encode();
        let files = [
            format!("kubeconfig-{}-live.yaml", me.encode()),
            format!("kubeconfig-{reused}-reused.yaml"),
            format!("kubeconfig-{dead}-dead.yaml"),
            format!("kubeconfig-{dead}-dead.child"),
            "notes.txt".to_string(),
        ];
        for f in &files {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let sweep = sweep_stale(home.path());
        assert_eq!(sweep.removed, 2, "{sweep:?}");
        assert!(sweep.warnings.is_empty(), "{sweep:?}");
        assert_eq!(names(&dir), vec![files[0].clone(), "notes.txt".into()]);
    }

    #[test]
    fn sweep_keeps_a_file_while_its_child_runs() {
        let (home, dir) = home();
        let owner = crate::process::dead().encode();
        let session = format!("kubeconfig-{owner}-s.yaml");
        std::fs::write(dir.join(&session), "x").unwrap();
        let child_record = dir.join(format!("kubeconfig-{owner}-s.child"));
        std::fs::write(
            &child_record,
            format!("{}\n", ProcessId::current().encode()),
        )
        .unwrap();
        assert_eq!(sweep_stale(home.path()).removed, 0);
        assert!(dir.join(&session).exists());
        std::fs::write(
            &child_record,
            format!("{}\n", crate::process::dead().encode()),
        )
        .unwrap();
        assert_eq!(sweep_stale(home.path()).removed, 1);
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    }

    #[test]
    fn sweep_never_follows_links_nor_zeroes_hard_links() {
        let (home, dir) = home();
        let dead = crate::process::dead().encode();
        let target = home.path().join("precious");
        std::fs::write(&target, "precious").unwrap();
        symlink(&target, dir.join(format!("kubeconfig-{dead}-link.yaml"))).unwrap();
        std::fs::hard_link(&target, dir.join(format!("kubeconfig-{dead}-hard.yaml"))).unwrap();
        nix::unistd::mkfifo(
            &dir.join(format!("kubeconfig-{dead}-fifo.yaml")),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::create_dir(dir.join(format!("kubeconfig-{dead}-dir.yaml"))).unwrap();
        assert_eq!(sweep_stale(home.path()).removed, 0);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert_eq!(names(&dir).len(), 4);
    }

    #[test]
    fn a_directory_others_can_write_is_not_swept() {
        let (home, dir) = home();
        let dead = crate::process::dead().encode();
        let planted = dir.join(format!("kubeconfig-{dead}-x.yaml"));
        std::fs::write(&planted, "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let sweep = sweep_stale(home.path());
        assert_eq!(sweep.removed, 0);
        assert!(planted.exists());
        assert!(
            sweep.warnings[0].contains("writable by other users (mode 777)"),
            "{sweep:?}"
        );
    }

    #[test]
    fn go_era_files_are_reported_not_removed() {
        let (home, dir) = home();
        std::fs::write(dir.join("kubeconfig-2847362841.yaml"), "x").unwrap();
        let sweep = sweep_stale(home.path());
        assert_eq!(sweep.removed, 0);
        assert!(
            sweep.warnings[0].contains("kubeconfig-2847362841.yaml"),
            "{sweep:?}"
        );
        assert!(dir.join("kubeconfig-2847362841.yaml").exists());
    }

    #[test]
    fn a_session_file_is_private_and_wiped_with_its_record() {
        let (_home, dir) = home();
        let file = SessionFile::create(Dir::open(&dir).unwrap(), b"secret").unwrap();
        let path = file.path();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        file.child_record_writer().unwrap().record_self();
        let record = names(&dir)
            .into_iter()
            .find(|n| n.ends_with(CHILD_SUFFIX))
            .unwrap();
        let text = std::fs::read_to_string(dir.join(record)).unwrap();
        assert_eq!(text, format!("{}\n", ProcessId::current().encode()));
        drop(file);
        assert!(names(&dir).is_empty());
    }
}
