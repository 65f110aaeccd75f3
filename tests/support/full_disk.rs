//! A full disk, for real: a small tmpfs filled to the last byte, mounted in the calling
//! test thread's own mount namespace (private: nothing is seen outside, and all of it goes
//! with the thread). kube-dc, started from that thread, writes into it. Needs
//! CAP_SYS_ADMIN: the suite runs as root here and in CI; without it the test fails saying
//! so, it is not skipped.
#![allow(dead_code)]

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Gives the calling test thread its own mount namespace, with private mounts.
pub fn private_mount_namespace() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect(
        "the full-disk tests mount a small tmpfs in a mount namespace of their own: run the suite as root (or with CAP_SYS_ADMIN)",
    );
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("making the test thread's mounts private");
}

/// Mounts a 64 KiB tmpfs at the directory `dir` (created if missing), puts `files` (name,
/// content) in it, then fills it up.
pub fn mount_full_tmpfs(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k,mode=0700"),
    )
    .unwrap_or_else(|e| panic!("mounting a tmpfs at {}: {e}", dir.display()));
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let mut filler = std::fs::File::create(dir.join(".filler")).unwrap();
    let block = [0u8; 4096];
    let full = loop {
        if let Err(e) = std::io::Write::write_all(&mut filler, &block) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(nix::libc::ENOSPC), "{full}");
}

/// Unmounts what [`mount_full_tmpfs`] mounted (lazily: nothing may still use it).
pub fn unmount(dir: &Path) {
    let _ = umount2(dir, MntFlags::MNT_DETACH);
}
