//! The files a DPDK process leaves on disk, and their removal.
//!
//! A primary process keeps its runtime files (shared configuration, memory
//! maps, the multi-process and telemetry sockets) in a directory named by
//! its `--file-prefix`, and its hugepage memory in files named
//! `<prefix>map_<n>` in a hugetlbfs mount. DPDK removes neither when the
//! process ends: hugepage files stay pinned, unusable by anything else,
//! until someone deletes them. Baton passes `--huge-unlink` (each hugepage
//! file is unlinked as soon as it is mapped, so its pages go back to the
//! kernel when the process ends, however it ends) and removes what is left
//! of a prefix before EAL starts (what a killed instance left) and after it
//! stops, with [`RuntimeFiles`].

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The EAL option that unlinks every hugepage file right after mapping it.
pub const HUGE_UNLINK: &str = "--huge-unlink";

/// What one file prefix owns on disk.
#[derive(Debug)]
pub struct RuntimeFiles {
    prefix: String,
    runtime_dir: PathBuf,
}

/// The files of a prefix this process is about to use: what an earlier
/// process with the prefix left is removed when it is claimed, and what
/// this one leaves when it is dropped. Drop it after the [`crate::Eal`].
#[derive(Debug)]
pub struct Claimed(RuntimeFiles);

impl Claimed {
    pub fn files(&self) -> &RuntimeFiles {
        &self.0
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        match self.0.remove() {
            Ok(removed) => tracing::debug!(
                "removed DPDK runtime files of {}: {removed:?}",
                self.0.prefix
            ),
            Err(e) => tracing::warn!("could not remove DPDK runtime files: {e}"),
        }
    }
}

/// What [`RuntimeFiles::remove`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub hugepage_files: usize,
    pub runtime_dir: bool,
}

impl RuntimeFiles {
    /// The files of `prefix`, where DPDK puts them: under /var/run/dpdk as
    /// root, else under `$XDG_RUNTIME_DIR/dpdk` (or /tmp/dpdk).
    pub fn new(prefix: &str) -> RuntimeFiles {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let base = if root {
            PathBuf::from("/var/run")
        } else {
            std::env::var_os("XDG_RUNTIME_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
        };
        RuntimeFiles {
            prefix: prefix.to_owned(),
            runtime_dir: base.join("dpdk").join(prefix),
        }
    }

    /// Removes what an earlier process with this prefix left (unless one
    /// still runs), and removes this process's files when dropped.
    pub fn claim(prefix: &str) -> Claimed {
        let files = RuntimeFiles::new(prefix);
        match files.remove() {
            Ok(Removed {
                hugepage_files: 0,
                runtime_dir: false,
            }) => {}
            Ok(Removed {
                hugepage_files,
                runtime_dir,
            }) => tracing::info!(
                "removed what an earlier DPDK process with the file prefix {prefix:?} left: \
                 {hugepage_files} hugepage file(s){}",
                if runtime_dir {
                    " and its runtime directory"
                } else {
                    ""
                }
            ),
            // EAL init says what is wrong if it matters.
            Err(e) => tracing::warn!("could not remove stale DPDK runtime files: {e}"),
        }
        Claimed(files)
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// Whether another live process is a DPDK primary with this prefix: it
    /// holds the write lock on the shared configuration file, which the
    /// kernel releases when that process ends, however it ends. (A lock
    /// this process holds itself is not reported.)
    pub fn in_use(&self) -> bool {
        let Ok(file) = File::open(self.runtime_dir.join("config")) else {
            return false;
        };
        // The lock types and whence values are small constants (0 to 2)
        // that fit the C struct's short fields.
        #[allow(clippy::cast_possible_truncation)]
        let (write, unlocked, from_start) = (
            libc::F_WRLCK as libc::c_short,
            libc::F_UNLCK as libc::c_short,
            libc::SEEK_SET as libc::c_short,
        );
        // SAFETY: flock is plain old data; all zeroes is a valid value.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = write;
        lock.l_whence = from_start;
        // l_start = 0, l_len = 0: the whole file, covering DPDK's lock.
        // SAFETY: the descriptor is open for the duration of the call (file
        // outlives it) and `lock` is a valid flock the kernel may write to.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
        rc == 0 && lock.l_type != unlocked
    }

    /// The hugepage files of this prefix, in every hugetlbfs mount.
    pub fn hugepage_files(&self) -> Vec<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        hugetlbfs_mounts(&mounts)
            .into_iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .filter(|entry| is_hugepage_file_of(&entry.file_name().to_string_lossy(), &self.prefix))
            .map(|entry| entry.path())
            .collect()
    }

    /// Removes the prefix's hugepage files and runtime directory, unless
    /// another live process uses the prefix (then removes nothing: EAL init
    /// will refuse to start a second primary, and say so).
    pub fn remove(&self) -> io::Result<Removed> {
        // A prefix is one file name; anything else is not ours to remove.
        let one_name = matches!(
            Path::new(&self.prefix).components().collect::<Vec<_>>()[..],
            [std::path::Component::Normal(_)]
        );
        if !one_name || self.in_use() {
            return Ok(Removed::default());
        }
        let mut removed = Removed::default();
        for file in self.hugepage_files() {
            match std::fs::remove_file(&file) {
                Ok(()) => removed.hugepage_files += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
            }
        }
        match std::fs::remove_dir_all(&self.runtime_dir) {
            Ok(()) => removed.runtime_dir = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.runtime_dir.display()),
                ))
            }
        }
        Ok(removed)
    }
}

/// The mount points of hugetlbfs in `/proc/mounts` text.
fn hugetlbfs_mounts(mounts: &str) -> Vec<PathBuf> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            // /proc/mounts escapes spaces in paths as \040.
            (fstype == "hugetlbfs").then(|| PathBuf::from(dir.replace("\\040", " ")))
        })
        .collect()
}

/// Whether `name` is one of DPDK's hugepage files for `prefix`:
/// `<prefix>map_<n>`.
fn is_hugepage_file_of(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("map_"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugepage_files_are_matched_by_exact_prefix() {
        assert!(is_hugepage_file_of("baton-n1map_0", "baton-n1"));
        assert!(is_hugepage_file_of("baton-n1map_492", "baton-n1"));
        assert!(!is_hugepage_file_of("baton-n12map_0", "baton-n1"));
        assert!(!is_hugepage_file_of("baton-n1map_", "baton-n1"));
        assert!(!is_hugepage_file_of("baton-n1map_0x", "baton-n1"));
        assert!(!is_hugepage_file_of("rtemap_0", "baton-n1"));
    }

    #[test]
    fn a_prefix_that_is_not_one_file_name_removes_nothing() {
        for prefix in ["", ".", "..", "../x", "a/b", "/"] {
            let files = RuntimeFiles::new(prefix);
            assert_eq!(files.remove().unwrap(), Removed::default(), "{prefix:?}");
        }
    }

    #[test]
    fn only_hugetlbfs_mounts_are_searched() {
        let mounts = "sysfs /sys sysfs rw 0 0\n\
                      hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
                      none /mnt/huge\\0401g hugetlbfs rw,pagesize=1024M 0 0\n\
                      tmpfs /tmp tmpfs rw 0 0\n";
        assert_eq!(
            hugetlbfs_mounts(mounts),
            [
                PathBuf::from("/dev/hugepages"),
                PathBuf::from("/mnt/huge 1g")
            ]
        );
    }

    #[test]
    fn a_prefix_nobody_holds_is_removed_whole_and_one_held_is_left() {
        let dir = tempfile_dir();
        let files = RuntimeFiles {
            prefix: "baton-unit".into(),
            runtime_dir: dir.join("baton-unit"),
        };
        std::fs::create_dir_all(files.runtime_dir()).unwrap();
        std::fs::write(files.runtime_dir().join("config"), b"x").unwrap();
        std::fs::write(files.runtime_dir().join("fbarray_memzone"), b"x").unwrap();
        assert!(!files.in_use(), "a lock of this process is not another's");
        let removed = files.remove().unwrap();
        assert!(removed.runtime_dir);
        assert!(!files.runtime_dir().exists());
        assert_eq!(files.remove().unwrap(), Removed::default(), "idempotent");

        // Another process holds the configuration's write lock, as a
        // running primary does (POSIX record lock: Python's lockf).
        std::fs::create_dir_all(files.runtime_dir()).unwrap();
        let config = files.runtime_dir().join("config");
        std::fs::write(&config, b"x").unwrap();
        let mut holder = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); \
                 print('locked', flush=True); sys.stdin.read()",
            ])
            .arg(&config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        assert!(files.in_use());
        assert_eq!(files.remove().unwrap(), Removed::default());
        assert!(config.exists(), "another process's files are left alone");
        drop(holder.stdin.take());
        holder.wait().unwrap();
        assert!(!files.in_use(), "the lock went with its process");
        assert!(files.remove().unwrap().runtime_dir);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dpdk-ffi-runtime-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
