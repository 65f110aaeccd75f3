//! Crash-safe file replacement: a temp file in the target's directory (so the rename stays
//! on one filesystem), mode 0600, fsync, rename over the target, fsync the directory.
//! A crash or error at any point leaves the old complete file or the new complete file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `target` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> Result<()> {
    write_with(target, |file| file.write_all(bytes))
}

/// Like [`write`], with the content produced by `fill`; an error from `fill` aborts the
/// replacement and removes the temp file.
pub fn write_with(
    target: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let fail = |step: &str, e: std::io::Error| {
        Error::failed(format!(
            "cannot write {} ({step}): {e}; the previous file is unchanged",
            target.display()
        ))
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let prefix = format!(".{name}.");
    remove_stale_temps(dir, &prefix);
    // The suffix keeps a leftover temp file from matching `*.enc.yaml` rules.
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| fail("creating a temp file", e))?;
    fill(temp.as_file_mut()).map_err(|e| fail("writing", e))?;
    temp.as_file().sync_all().map_err(|e| fail("fsync", e))?;
    temp.persist(target).map_err(|e| fail("rename", e.error))?;
    sync_dir(dir).map_err(|e| fail("fsync of the directory", e))
}

/// A write takes well under this; an older temp file of the same target was left by a
/// process that was killed (it holds ciphertext only, but it is litter in the fleet).
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(300);

fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP_AGE));
        if name.starts_with(prefix) && name.ends_with(".tmp") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.enc.yaml");
        std::fs::write(&target, "old").unwrap();
        write(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(entries(dir.path()), vec!["f.enc.yaml"]);
    }

    #[test]
    fn failure_while_writing_keeps_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.enc.yaml");
        std::fs::write(&target, "old").unwrap();
        let err = write_with(&target, |file| {
            file.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(
            err.to_string().contains("previous file is unchanged"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(entries(dir.path()), vec!["f.enc.yaml"]);
    }

    #[test]
    fn failing_rename_keeps_old_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file: the rename step fails.
        let target = dir.path().join("f.enc.yaml");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let err = write(&target, b"new").unwrap_err();
        assert!(err.to_string().contains("rename"), "{err}");
        assert_eq!(entries(dir.path()), vec!["f.enc.yaml"]);
        assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "x");
    }

    #[test]
    fn temps_left_by_a_killed_writer_are_removed_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.enc.yaml");
        let (stale, fresh) = (
            dir.path().join(".f.enc.yaml.old1.tmp"),
            dir.path().join(".f.enc.yaml.new2.tmp"),
        );
        let other = dir.path().join(".g.enc.yaml.old3.tmp");
        for path in [&stale, &fresh, &other] {
            std::fs::write(path, "ciphertext").unwrap();
        }
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for path in [&stale, &other] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(an_hour_ago)
                .unwrap();
        }
        write(&target, b"new").unwrap();
        assert_eq!(
            entries(dir.path()),
            vec![".f.enc.yaml.new2.tmp", ".g.enc.yaml.old3.tmp", "f.enc.yaml"]
        );
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("nope/f"), b"x").unwrap_err();
        assert!(err.to_string().contains("creating a temp file"), "{err}");
    }
}
