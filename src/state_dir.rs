//! kube-dc's private state in the user's home: `~/.kube-dc` and the directories in it
//! (`break-glass` for session kubeconfigs, `journal` for the session journal). HOME is
//! trusted as it is; every level below it is opened through its parent's descriptor,
//! never through a link, and must be the user's own and not writable by others: whoever
//! can write a level can swap what is below it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::safe_fs::Dir;

/// `~/.kube-dc`.
pub const STATE_DIR: &str = ".kube-dc";
/// The session kubeconfigs' directory in it.
pub const SESSIONS: &str = "break-glass";
/// The session journal's directory in it.
pub const JOURNAL: &str = "journal";

/// The level's mode bits that let others in: `~/.kube-dc` may stay readable (it may hold
/// the default fleet clone), the directories of private files may not.
fn open_bits(name: &str) -> u32 {
    match name {
        STATE_DIR => 0o022,
        _ => 0o077,
    }
}

/// `$HOME`, set and not empty.
pub fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::usage("HOME is not set: kube-dc keeps its session files under ~/.kube-dc")
                .with_hint("set HOME to your home directory")
        })
}

/// `~/.kube-dc/<name>` for writing private files: each missing level is created 0700, a
/// link, another type or another owner refused, and a mode that lets others in repaired
/// through the descriptor (`warn` says so).
pub fn open_private(home: &Path, name: &str, warn: &mut dyn FnMut(&str)) -> Result<Dir> {
    let mut dir = Dir::open_trusted(home).map_err(|e| e.failed())?;
    for level in [STATE_DIR, name] {
        dir.create_dir(OsStr::new(level), 0o700).map_err(|e| {
            Error::failed(format!(
                "creating {}: {e}",
                dir.path().join(level).display()
            ))
        })?;
        dir = dir.subdir(OsStr::new(level)).map_err(|e| e.failed())?;
        check_owner(&dir)?;
        repair_mode(&dir, open_bits(level), warn)?;
    }
    Ok(dir)
}

/// `~/.kube-dc/<name>` as it is, for reading or sweeping: `Ok(None)` when a level does
/// not exist; `Err` says why a level cannot be trusted (nothing is created or repaired).
pub fn open_existing(home: &Path, name: &str) -> std::result::Result<Option<Dir>, String> {
    let mut dir = Dir::open_trusted(home).map_err(|e| e.to_string())?;
    for level in [STATE_DIR, name] {
        dir = match dir.subdir(OsStr::new(level)) {
            Ok(dir) => dir,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if let Some(why) = distrust(&dir, open_bits(level) & 0o022) {
            return Err(format!("{}: {why}", dir.path().display()));
        }
    }
    Ok(Some(dir))
}

/// Why `dir` cannot be trusted (another owner, or one of the `forbidden` mode bits set),
/// or `None` when it can.
fn distrust(dir: &Dir, forbidden: u32) -> Option<String> {
    let stat = match dir.stat() {
        Ok(stat) => stat,
        Err(e) => return Some(format!("cannot inspect it: {e}")),
    };
    let me = nix::unistd::geteuid().as_raw();
    if stat.st_uid != me {
        return Some(format!(
            "it is owned by uid {}, not by you (uid {me})",
            stat.st_uid
        ));
    }
    (stat.st_mode & forbidden != 0).then(|| {
        format!(
            "it is writable by other users (mode {:o})",
            stat.st_mode & 0o777
        )
    })
}

fn check_owner(dir: &Dir) -> Result<()> {
    match distrust(dir, 0) {
        None => Ok(()),
        Some(why) => Err(Error::failed(format!(
            "refusing to use {}: {why}",
            dir.path().display()
        ))
        .with_hint("someone else may read or replace kube-dc's private files there: move it away and retry (kube-dc creates a private one)")),
    }
}

fn repair_mode(dir: &Dir, open: u32, warn: &mut dyn FnMut(&str)) -> Result<()> {
    let stat = dir
        .stat()
        .map_err(|e| Error::failed(format!("reading {}: {e}", dir.path().display())))?;
    let mode = stat.st_mode & 0o777;
    if mode & open == 0 {
        return Ok(());
    }
    let repaired = mode & !open;
    dir.fchmod(repaired)
        .map_err(|e| Error::failed(format!("chmod {repaired:o} {}: {e}", dir.path().display())))?;
    warn(&format!(
        "{} was mode {mode:o}; repaired to {repaired:o}",
        dir.path().display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn levels_are_created_private_and_loose_modes_repaired() {
        let home = tempfile::tempdir().unwrap();
        let mut warnings = Vec::new();
        let dir = open_private(home.path(), JOURNAL, &mut |w| warnings.push(w.to_string()));
        assert_eq!(dir.unwrap().path(), home.path().join(".kube-dc/journal"));
        assert_eq!(mode(&home.path().join(STATE_DIR)), 0o700);
        assert!(warnings.is_empty(), "{warnings:?}");
        let state = home.path().join(STATE_DIR);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(open_existing(home.path(), JOURNAL).is_err());
        open_private(home.path(), JOURNAL, &mut |w| warnings.push(w.to_string())).unwrap();
        assert_eq!(mode(&state), 0o755);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(open_existing(home.path(), JOURNAL).unwrap().is_some());
        assert!(open_existing(home.path(), SESSIONS).unwrap().is_none());
    }

    #[test]
    fn a_linked_state_dir_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(STATE_DIR)).unwrap();
        let err = open_private(home.path(), SESSIONS, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(open_existing(home.path(), SESSIONS).is_err());
        assert!(!elsewhere.path().join(SESSIONS).exists());
    }
}
