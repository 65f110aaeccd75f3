//! Every file kube-dc reads or writes is opened here, one way.
//!
//! Fleet files come from Git, which carries symbolic links, FIFOs' names and files of any
//! size from anyone with push access; the session directory lives under a HOME that other
//! people may be able to write into. So:
//! - A path is opened one component at a time relative to a directory descriptor, each with
//!   `O_NOFOLLOW`: no symbolic link is followed below the directory we start from, and no
//!   component can be swapped between a check and its use.
//! - The last component is opened with `O_NONBLOCK` (a FIFO with no writer would block the
//!   open forever), then `fstat` says what it is: only a regular file is read, and only up
//!   to its kind's cap, so `/dev/zero` or a huge file fails at once with a clear message.
//! - Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600.
//!
//! Symbolic links inside the fleet are refused even when they point inside it: a link in
//! Git can point anywhere on a reader's machine and the next pull may retarget it, and one
//! rule ("kube-dc follows no link below the fleet root") is easy to state and to check.
//!
//! Over 500 lines with its unit tests (~140), which stay beside the checks they pin; the
//! code itself is under 480.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::error::Error;

/// A kind of file and the most kube-dc reads of it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub max_bytes: u64,
}

impl Kind {
    pub const fn new(name: &'static str, max_bytes: u64) -> Kind {
        Kind { name, max_bytes }
    }
}

const MIB: u64 = 1 << 20;
/// A break-glass kubeconfig is about 3 KiB encrypted; the others are a few lines.
pub const BREAK_GLASS: Kind = Kind::new("break-glass file", MIB);
pub const CLUSTER_CONFIG: Kind = Kind::new("cluster-config.env", MIB);
pub const SOPS_CONFIG: Kind = Kind::new(".sops.yaml", MIB);
pub const FLEET_SETTINGS: Kind = Kind::new(".kube-dc.yaml", MIB);
/// Any work-tree file `check` scans: fleet repos hold text, not media.
pub const SCANNED: Kind = Kind::new("file checked for credentials", 16 * MIB);

/// Why a path was not opened.
#[derive(Debug)]
pub enum Problem {
    NotFound,
    /// A symbolic link (with its target, when it could be read).
    Symlink(Option<PathBuf>),
    /// Not the expected type: "a FIFO", "a directory", ...
    WrongType {
        found: &'static str,
        wanted: &'static str,
    },
    TooLarge {
        kind: Kind,
    },
    Io(std::io::Error),
}

#[derive(Debug)]
pub struct FileError {
    pub path: PathBuf,
    pub problem: Problem,
}

impl FileError {
    fn new(path: PathBuf, problem: Problem) -> FileError {
        FileError { path, problem }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.problem, Problem::NotFound)
    }

    /// As a fleet configuration error (exit 2).
    pub fn usage(self) -> Error {
        self.into_error(Error::usage)
    }

    /// As a failed operation (exit 1).
    pub fn failed(self) -> Error {
        self.into_error(Error::failed)
    }

    fn into_error(self, make: fn(String) -> Error) -> Error {
        let hint = match &self.problem {
            Problem::Symlink(_) => Some(
                "kube-dc follows no symbolic link inside the fleet repo or the session directory (a link in Git can point anywhere on a reader's machine): replace the link with the file or directory itself",
            ),
            Problem::WrongType { .. } => {
                Some("remove it, or restore it from Git (`git checkout -- <path>`)")
            }
            _ => None,
        };
        let err = make(self.to_string());
        match hint {
            Some(hint) => err.with_hint(hint),
            None => err,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            Problem::NotFound => write!(f, "{path} does not exist"),
            Problem::Symlink(Some(target)) => write!(
                f,
                "refusing {path}: it is a symbolic link (to {:?})",
                target.display().to_string()
            ),
            Problem::Symlink(None) => write!(f, "refusing {path}: it is a symbolic link"),
            Problem::WrongType { found, wanted } => {
                write!(f, "refusing {path}: it is {found}, not {wanted}")
            }
            Problem::TooLarge { kind } => write!(
                f,
                "refusing {path}: it is too large (a {} is never larger than {} bytes)",
                kind.name, kind.max_bytes
            ),
            Problem::Io(e) => write!(f, "cannot open {path}: {e}"),
        }
    }
}

pub type FsResult<T> = std::result::Result<T, FileError>;

/// An open directory: everything below it is reached through its descriptor.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A regular file, opened and checked, with what `fstat` said about it.
#[derive(Debug)]
pub struct RegularFile {
    pub file: File,
    pub meta: std::fs::Metadata,
    pub path: PathBuf,
}

impl Dir {
    /// Opens `path`, whose parent the caller trusts, without following a link at its
    /// last component.
    pub fn open(path: &Path) -> FsResult<Dir> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                Dir::open_trusted(parent)?.subdir(name)
            }
            _ => Dir::open_trusted(path),
        }
    }

    /// Opens `path` following links: for directories the caller trusts whole.
    pub fn open_trusted(path: &Path) -> FsResult<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        nix::fcntl::openat(nix::fcntl::AT_FDCWD, path, flags, Mode::empty())
            .map(|fd| Dir {
                fd,
                path: path.to_path_buf(),
            })
            .map_err(|e| {
                let problem = match e {
                    Errno::ENOENT => Problem::NotFound,
                    e => Problem::Io(e.into()),
                };
                FileError::new(path.to_path_buf(), problem)
            })
    }

    /// The directory `name` in this one, not through a link.
    pub fn subdir(&self, name: &OsStr) -> FsResult<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        nix::fcntl::openat(self.fd.as_fd(), name, flags, Mode::empty())
            .map(|fd| Dir {
                fd,
                path: self.path.join(name),
            })
            .map_err(|e| self.explain(name, e, "a directory"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` below this directory, following no link on the way.
    pub fn open_dir(&self, rel: &Path) -> FsResult<Dir> {
        let mut dir = self.try_clone()?;
        for name in components(rel, &self.path)? {
            dir = dir.subdir(name)?;
        }
        Ok(dir)
    }

    /// The regular file `rel` below this directory, following no link on the way; never
    /// blocks, whatever `rel` turns out to be.
    pub fn open_file(&self, rel: &Path) -> FsResult<RegularFile> {
        let mut names = components(rel, &self.path)?;
        let last = names.pop().ok_or_else(|| {
            FileError::new(
                self.path.clone(),
                Problem::WrongType {
                    found: "a directory",
                    wanted: "a regular file",
                },
            )
        })?;
        let parent = match names.is_empty() {
            true => self.try_clone()?,
            false => self.open_dir(&names.iter().collect::<PathBuf>())?,
        };
        parent.open_here(last)
    }

    /// Reads the regular file `rel` (see [`Dir::open_file`]), at most `kind.max_bytes`.
    pub fn read(&self, rel: &Path, kind: Kind) -> FsResult<Vec<u8>> {
        self.open_file(rel)?.read_all(kind)
    }

    fn open_here(&self, name: &OsStr) -> FsResult<RegularFile> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(self.fd.as_fd(), name, flags, Mode::empty())
            .map_err(|e| self.explain(name, e, "a regular file"))?;
        self.checked_regular(name, File::from(fd))
    }

    /// `file` (just opened as `name`, non-blocking) if it is a regular file, set back to
    /// blocking I/O.
    fn checked_regular(&self, name: &OsStr, file: File) -> FsResult<RegularFile> {
        let path = self.path.join(name);
        let meta = file
            .metadata()
            .map_err(|e| FileError::new(path.clone(), Problem::Io(e)))?;
        if !meta.is_file() {
            let found = type_name(SFlag::from_bits_truncate(
                std::os::unix::fs::MetadataExt::mode(&meta) & SFlag::S_IFMT.bits(),
            ));
            let wanted = "a regular file";
            return Err(FileError::new(path, Problem::WrongType { found, wanted }));
        }
        // Back to blocking I/O (O_APPEND kept): O_NONBLOCK only had to get us past the open.
        nix::fcntl::fcntl(&file, FcntlArg::F_GETFL)
            .and_then(|bits| {
                let flags = OFlag::from_bits_truncate(bits) - OFlag::O_NONBLOCK;
                nix::fcntl::fcntl(&file, FcntlArg::F_SETFL(flags))
            })
            .map_err(|e| FileError::new(path.clone(), Problem::Io(e.into())))?;
        Ok(RegularFile { file, meta, path })
    }

    /// What `name` is, lstat'ed, when opening it failed with `errno`.
    fn explain(&self, name: &OsStr, errno: Errno, wanted: &'static str) -> FileError {
        let path = self.path.join(name);
        if errno == Errno::ENOENT {
            return FileError::new(path, Problem::NotFound);
        }
        let Ok(stat) = self.lstat(name) else {
            return FileError::new(path, Problem::Io(errno.into()));
        };
        let kind = file_kind(&stat);
        let problem = match kind {
            SFlag::S_IFLNK => Problem::Symlink(
                nix::fcntl::readlinkat(self.fd.as_fd(), name)
                    .ok()
                    .map(PathBuf::from),
            ),
            _ if type_name(kind) != wanted => Problem::WrongType {
                found: type_name(kind),
                wanted,
            },
            _ => Problem::Io(errno.into()),
        };
        FileError::new(path, problem)
    }

    /// `fstatat` without following a link.
    pub fn lstat(&self, name: &OsStr) -> nix::Result<FileStat> {
        nix::sys::stat::fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// The directory's own `fstat`.
    pub fn stat(&self) -> nix::Result<FileStat> {
        nix::sys::stat::fstat(self.fd.as_fd())
    }

    /// The names in this directory (not `.` and `..`), sorted.
    pub fn names(&self) -> FsResult<Vec<OsString>> {
        let io = |e: Errno| FileError::new(self.path.clone(), Problem::Io(e.into()));
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        let mut listing = nix::dir::Dir::from_fd(fd).map_err(io)?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let name = entry.map_err(io)?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates `name` (which must not exist, not even as a link), 0600, for writing.
    pub fn create_new(&self, name: &OsStr) -> std::io::Result<File> {
        Ok(File::from(self.create_new_c(name)?))
    }

    /// [`Dir::create_new`] returning the descriptor: allocates nothing for a C-string
    /// name, so it may run between fork and exec.
    pub fn create_new_c<P: ?Sized + nix::NixPath>(&self, name: &P) -> nix::Result<OwnedFd> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            flags,
            Mode::from_bits_truncate(0o600),
        )
    }

    /// Opens an unnamed 0600 file in this directory (`O_TMPFILE`): it has no name to leave
    /// behind, even when the process is killed. `None` where the file system has no
    /// unnamed files.
    pub fn create_unnamed(&self) -> std::io::Result<Option<File>> {
        let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(self.fd.as_fd(), ".", flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `<prefix><random><suffix>` with [`Dir::create_new`]; returns it and its name.
    pub fn create_unique(&self, prefix: &str, suffix: &str) -> std::io::Result<(File, String)> {
        let mut last = std::io::Error::other("no attempt");
        for _ in 0..16 {
            let name = format!("{prefix}{}{suffix}", random_word());
            match self.create_new(OsStr::new(&name)) {
                Ok(file) => return Ok((file, name)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Creates the directory `name` with `mode` (less the umask); one that exists is fine.
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> nix::Result<()> {
        match nix::sys::stat::mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(mode)) {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Opens the regular file `name` for appending, creating it 0600: never through a
    /// link, never blocking (a FIFO is refused, not waited on).
    pub fn open_append(&self, name: &OsStr) -> FsResult<RegularFile> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.explain(name, e, "a regular file"))?;
        self.checked_regular(name, File::from(fd))
    }

    /// Removes the entry `name` itself (a link is removed, never followed).
    pub fn unlink(&self, name: &OsStr) -> nix::Result<()> {
        nix::unistd::unlinkat(
            self.fd.as_fd(),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
    }

    /// Renames `from` to `to` within this directory (replacing `to` itself, never what a
    /// link at `to` points to).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> nix::Result<()> {
        nix::fcntl::renameat(self.fd.as_fd(), from, self.fd.as_fd(), to)
    }

    pub fn fsync(&self) -> nix::Result<()> {
        nix::unistd::fsync(self.fd.as_fd())
    }

    pub fn fchmod(&self, mode: u32) -> nix::Result<()> {
        nix::sys::stat::fchmod(self.fd.as_fd(), Mode::from_bits_truncate(mode))
    }

    /// Opens the existing `name` for writing without following a link and without
    /// blocking; the caller checks what it is with the returned file's metadata.
    pub fn open_existing_for_write(&self, name: &OsStr) -> nix::Result<File> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        nix::fcntl::openat(self.fd.as_fd(), name, flags, Mode::empty()).map(File::from)
    }

    pub fn try_clone(&self) -> FsResult<Dir> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| FileError::new(self.path.clone(), Problem::Io(e)))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }
}

impl RegularFile {
    /// The whole content, refusing more than `kind.max_bytes` (checked on the size `fstat`
    /// reported and again while reading, for files that grow or lie about their size).
    pub fn read_all(mut self, kind: Kind) -> FsResult<Vec<u8>> {
        if self.meta.len() > kind.max_bytes {
            return Err(FileError::new(self.path, Problem::TooLarge { kind }));
        }
        let mut bytes = Vec::with_capacity(self.meta.len() as usize);
        (&mut self.file)
            .take(kind.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FileError::new(self.path.clone(), Problem::Io(e)))?;
        if bytes.len() as u64 > kind.max_bytes {
            return Err(FileError::new(self.path, Problem::TooLarge { kind }));
        }
        Ok(bytes)
    }
}

/// Reads `rel` below the trusted directory `root`, following no link below `root`.
pub fn read_beneath(root: &Path, rel: &Path, kind: Kind) -> FsResult<Vec<u8>> {
    Dir::open(root)?.read(rel, kind)
}

/// Reads `path`, whose parent directory the caller trusts, not through a link at its last
/// component.
pub fn read_file(path: &Path, kind: Kind) -> FsResult<Vec<u8>> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            read_beneath(parent, Path::new(name), kind)
        }
        _ => read_beneath(Path::new("."), path, kind),
    }
}

/// Opens `rel` below the trusted directory `root` (see [`Dir::open_file`]).
pub fn open_beneath(root: &Path, rel: &Path) -> FsResult<RegularFile> {
    Dir::open(root)?.open_file(rel)
}

/// The normal components of `rel`; `..`, `/` and the like are refused (names we build never
/// hold them).
fn components<'a>(rel: &'a Path, base: &Path) -> FsResult<Vec<&'a OsStr>> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(FileError::new(
                base.join(rel),
                Problem::Io(std::io::Error::other("path leaves its directory")),
            )),
        })
        .collect()
}

pub fn file_kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

fn type_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFIFO => "a FIFO (named pipe)",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        _ => "not a regular file",
    }
}

/// 16 random characters for temp-file names (with `O_EXCL`, uniqueness is all they need).
fn random_word() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const SMALL: Kind = Kind::new("test file", 16);

    fn fleet() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("clusters/alpha")).unwrap();
        std::fs::write(dir.path().join("clusters/alpha/f"), "content").unwrap();
        dir
    }

    fn read(root: &Path, rel: &str) -> FsResult<Vec<u8>> {
        read_beneath(root, Path::new(rel), SMALL)
    }

    fn refusal(root: &Path, rel: &str) -> String {
        read(root, rel).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_regular_file_and_an_empty_one() {
        let dir = fleet();
        assert_eq!(read(dir.path(), "clusters/alpha/f").unwrap(), b"content");
        std::fs::write(dir.path().join("empty"), "").unwrap();
        assert_eq!(read(dir.path(), "empty").unwrap(), b"");
        assert!(
            read(dir.path(), "clusters/alpha/none")
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            read(dir.path(), "clusters/beta/f")
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn links_are_refused_at_the_file_and_on_the_way() {
        let dir = fleet();
        let root = dir.path();
        symlink("f", root.join("clusters/alpha/inside")).unwrap();
        symlink("/etc/hostname", root.join("clusters/alpha/outside")).unwrap();
        symlink("alpha", root.join("clusters/beta")).unwrap();
        for rel in [
            "clusters/alpha/inside",
            "clusters/alpha/outside",
            "clusters/beta/f",
        ] {
            let err = refusal(root, rel);
            assert!(err.contains("is a symbolic link"), "{rel}: {err}");
        }
        assert!(refusal(root, "clusters/alpha/outside").contains("/etc/hostname"));
        assert!(refusal(root, "clusters/beta/f").contains("clusters/beta"));
    }

    #[test]
    fn fifo_socket_device_and_directory_are_refused_without_blocking() {
        let dir = fleet();
        let root = dir.path();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        for (rel, found) in [
            ("fifo", "a FIFO (named pipe)"),
            ("socket", "a socket"),
            ("clusters", "a directory"),
        ] {
            let err = refusal(root, rel);
            assert!(
                err.contains(&format!("it is {found}, not a regular file")),
                "{rel}: {err}"
            );
        }
        let err = read_beneath(Path::new("/dev"), Path::new("zero"), SMALL).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
    }

    #[test]
    fn size_is_capped_before_and_while_reading() {
        let dir = fleet();
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(1 << 30).unwrap();
        let err = refusal(dir.path(), "big");
        assert!(
            err.contains("a test file is never larger than 16 bytes"),
            "{err}"
        );
        std::fs::write(dir.path().join("17"), [b'x'; 17]).unwrap();
        assert!(refusal(dir.path(), "17").contains("never larger"));
        // /proc files say they are empty and are not: the cap holds while reading too.
        let proc = PathBuf::from(format!("/proc/{}", std::process::id()));
        let err = read_beneath(&proc, Path::new("status"), SMALL).unwrap_err();
        assert!(err.to_string().contains("never larger"), "{err}");
        std::fs::write(dir.path().join("16"), [b'x'; 16]).unwrap();
        assert_eq!(read(dir.path(), "16").unwrap().len(), 16);
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        let dir = fleet();
        assert!(refusal(&dir.path().join("clusters"), "../clusters/alpha/f").contains("leaves"));
        assert!(refusal(dir.path(), "/etc/hostname").contains("leaves"));
    }

    #[test]
    fn read_file_refuses_a_link_at_the_last_component_only() {
        let dir = fleet();
        let link = dir.path().join(".sops.yaml");
        symlink("clusters/alpha/f", &link).unwrap();
        let err = read_file(&link, SMALL).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(
            read_file(&dir.path().join("clusters/alpha/f"), SMALL).unwrap(),
            b"content"
        );
    }

    #[test]
    fn created_files_are_new_private_and_never_through_a_link() {
        let dir = fleet();
        let d = Dir::open(dir.path()).unwrap();
        let outside = dir.path().join("clusters/alpha/f");
        symlink(&outside, dir.path().join("planted")).unwrap();
        let err = d.create_new(OsStr::new("planted")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&outside).unwrap(), b"content");
        let (_, name) = d.create_unique("x-", ".tmp").unwrap();
        let mode = std::fs::metadata(dir.path().join(&name)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert!(d.names().unwrap().contains(&OsString::from(name)));
    }
}
