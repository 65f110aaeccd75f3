//! Crash-safe file replacement: a temp file in the target's directory (so the rename stays
//! on one filesystem), mode 0600, fsync, rename over the target, fsync the directory.
//! A crash or error at any point leaves the old complete file or the new complete file.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;

use crate::error::{Error, Result, describe_io};
use crate::safe_fs::{Dir, file_kind};

/// Writes `bytes` to the file `name` in `dir` atomically.
pub fn write(dir: &Dir, name: &str, bytes: &[u8]) -> Result<()> {
    write_with(dir, name, |file| file.write_all(bytes))
}

/// Like [`write`], with the content produced by `fill`; an error from `fill` aborts the
/// replacement and removes the temp file. The target is replaced only when it is absent
/// or a regular file: never a symbolic link (the rename would replace the link, but a
/// link there means someone expects it followed) nor a FIFO, device or directory.
fn write_with(
    dir: &Dir,
    name: &str,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let target = dir.path().join(name);
    let fail = |step: &str, e: std::io::Error| {
        Error::failed(format!(
            "cannot write {} ({step}): {}; the previous file is unchanged",
            target.display(),
            describe_io(&e)
        ))
    };
    check_target(dir, name)?;
    let prefix = format!(".{name}.");
    remove_stale_temps(dir, &prefix);
    // The suffix keeps a leftover temp file from matching `*.enc.yaml` rules.
    let (mut temp, temp_name) = dir
        .create_unique(&prefix, ".tmp")
        .map_err(|e| fail("creating a temp file", e))?;
    let temp_name = OsStr::new(&temp_name);
    let written = fill(&mut temp)
        .map_err(|e| fail("writing", e))
        .and_then(|()| temp.sync_all().map_err(|e| fail("fsync", e)))
        .and_then(|()| check_target(dir, name))
        .and_then(|()| {
            dir.rename(temp_name, OsStr::new(name))
                .map_err(|e| fail("rename", e.into()))
        });
    if let Err(e) = written {
        let _ = dir.unlink(temp_name);
        return Err(e);
    }
    dir.fsync()
        .map_err(|e| fail("fsync of the directory", e.into()))
}

/// Whether [`write`] may replace `name` in `dir`: it is absent or a regular file. Callers
/// that must not fail later (rotate, after revoking) can ask first.
pub fn check_target(dir: &Dir, name: &str) -> Result<()> {
    match dir.lstat(OsStr::new(name)) {
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Ok(stat) if file_kind(&stat) == nix::sys::stat::SFlag::S_IFREG => Ok(()),
        Ok(_) => Err(Error::failed(format!(
            "refusing to write {}: it exists and is not a regular file (a symbolic link, directory, FIFO or device)",
            dir.path().join(name).display()
        ))
        .with_hint("remove it, or restore it from Git (`git checkout -- <path>`), then retry")),
        Err(e) => Err(Error::failed(format!(
            "cannot write {}: {e}",
            dir.path().join(name).display()
        ))),
    }
}

/// How much a probe writes: several times a break-glass file, so a disk that takes it
/// takes the real write too.
const PROBE_BYTES: usize = 64 * 1024;

/// Whether `dir` has room for a new `name`: a file can be created there and takes
/// [`PROBE_BYTES`] up to the disk (fsync), asked by steps that must not fail later
/// (rotate, before revoking). The probe is an unnamed file where the file system has
/// them, so a kill leaves nothing; elsewhere it is named like a temp file of `name`,
/// which the next write of `name` sweeps.
pub fn check_room(dir: &Dir, name: &str) -> std::io::Result<()> {
    let fill = |mut file: File| {
        file.write_all(&[0; PROBE_BYTES])?;
        file.sync_all()
    };
    if let Some(unnamed) = dir.create_unnamed()? {
        return fill(unnamed);
    }
    let (file, probe) = dir.create_unique(&format!(".{name}."), ".tmp")?;
    let filled = fill(file);
    let _ = dir.unlink(OsStr::new(&probe));
    filled
}

/// A write takes well under this; an older temp file of the same target was left by a
/// process that was killed (it holds ciphertext only, but it is litter in the fleet).
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(300);

fn remove_stale_temps(dir: &Dir, prefix: &str) {
    let Ok(names) = dir.names() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for name in names {
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".tmp"));
        let stale = dir.lstat(&name).is_ok_and(|s| {
            file_kind(&s) == nix::sys::stat::SFlag::S_IFREG
                && now - s.st_mtime > STALE_TEMP_AGE.as_secs() as i64
        });
        if ours && stale {
            let _ = dir.unlink(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    fn in_dir(target: &Path) -> (Dir, String) {
        let dir = Dir::open(target.parent().unwrap()).unwrap();
        (
            dir,
            target.file_name().unwrap().to_str().unwrap().to_string(),
        )
    }

    fn write_path(target: &Path, bytes: &[u8]) -> Result<()> {
        let (dir, name) = in_dir(target);
        write(&dir, &name, bytes)
    }

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
        write_path(&target, b"new").unwrap();
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
        let (d, name) = in_dir(&target);
        let err = write_with(&d, &name, |file| {
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
    fn the_room_check_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.enc.yaml"), "old").unwrap();
        let d = Dir::open(dir.path()).unwrap();
        check_room(&d, "f.enc.yaml").unwrap();
        assert_eq!(entries(dir.path()), vec!["f.enc.yaml"]);
        assert!(
            d.create_unnamed().unwrap().is_some(),
            "this file system has unnamed files, so a killed check leaves none"
        );
    }

    #[test]
    fn a_directory_target_is_refused_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.enc.yaml");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let err = write_path(&target, b"new").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
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
        write_path(&target, b"new").unwrap();
        assert_eq!(
            entries(dir.path()),
            vec![".f.enc.yaml.new2.tmp", ".g.enc.yaml.old3.tmp", "f.enc.yaml"]
        );
    }

    #[test]
    fn a_symlink_or_fifo_target_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        let link = dir.path().join("f.enc.yaml");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = write_path(&link, b"new").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let fifo = dir.path().join("g.enc.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = write_path(&fifo, b"new").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(
            entries(dir.path()),
            vec!["f.enc.yaml", "g.enc.yaml", "outside"]
        );
    }
}
