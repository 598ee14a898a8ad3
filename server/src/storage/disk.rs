//! The only door to the operating system for the server's data directory.
//!
//! [`RealDisk`] implements [`Disk`] with `std::fs`. Built with the
//! `failpoints` feature, each operation first evaluates a fail point; when
//! one is configured to `return` (e.g. `fail::cfg("disk::sync", "return")`),
//! the operation fails with an injected I/O error instead of touching the
//! disk. Without the feature the fail points compile to nothing.
//!
//! | fail point            | where                                              |
//! |-----------------------|----------------------------------------------------|
//! | `disk::open`          | [`Disk::open_append`]                              |
//! | `disk::append`        | [`LogFile::append`], nothing written               |
//! | `disk::append::torn`  | [`LogFile::append`], first half written, then error|
//! | `disk::sync`          | [`LogFile::sync`]                                  |
//! | `disk::truncate`      | [`LogFile::truncate`]                              |
//! | `disk::write_atomic`  | [`Disk::write_atomic`], before anything is written |
//! | `disk::rename`        | [`Disk::write_atomic`], temp file durable, not renamed |
//! | `disk::remove`        | [`Disk::remove`]                                   |
//! | `disk::sync_dir`      | [`Disk::sync_dir`]                                 |

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File-system operations used by storage. Paths are absolute or relative to
/// the process's working directory, as given.
pub trait Disk: Send + Sync + 'static {
    fn create_dir_all(&self, p: &Path) -> io::Result<()>;
    /// Paths of the entries of `dir` (any order).
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn read(&self, p: &Path) -> io::Result<Vec<u8>>;
    /// Opens `p` for appending, creating it if missing. The caller must
    /// [`sync_dir`](Disk::sync_dir) the parent before relying on a newly
    /// created file surviving a crash.
    fn open_append(&self, p: &Path) -> io::Result<Box<dyn LogFile>>;
    /// Replaces `p` with `data` atomically and durably: a temporary file in
    /// the same directory is written and fsynced, renamed over `p`, and the
    /// directory is fsynced. After a crash `p` holds either the old or the
    /// new content, never a mix.
    fn write_atomic(&self, p: &Path, data: &[u8]) -> io::Result<()>;
    fn remove(&self, p: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An append-only file.
pub trait LogFile: Send {
    /// Writes all of `b` at the end of the file (not synced).
    fn append(&mut self, b: &[u8]) -> io::Result<()>;
    /// fsync: everything appended so far is durable when this returns Ok.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (not synced).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Current length in bytes, as far as this handle knows.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`Disk`] on the real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealDisk;

#[cfg(feature = "failpoints")]
fn injected(point: &str) -> io::Error {
    io::Error::other(format!("injected failure at fail point {point}"))
}

/// The temporary file [`RealDisk::write_atomic`] writes before renaming:
/// `.{name}.tmp` next to the target. Storage ignores such files when it
/// lists a directory.
pub fn temp_path_for(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.tmp"))
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, p: &Path) -> io::Result<()> {
        fs::create_dir_all(p)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            out.push(entry?.path());
        }
        Ok(out)
    }

    fn read(&self, p: &Path) -> io::Result<Vec<u8>> {
        fs::read(p)
    }

    fn open_append(&self, p: &Path) -> io::Result<Box<dyn LogFile>> {
        fail::fail_point!("disk::open", |_| Err(injected("disk::open")));
        let file = OpenOptions::new().create(true).append(true).open(p)?;
        let len = file.metadata()?.len();
        Ok(Box::new(RealLogFile { file, len }))
    }

    fn write_atomic(&self, p: &Path, data: &[u8]) -> io::Result<()> {
        fail::fail_point!("disk::write_atomic", |_| Err(injected("disk::write_atomic")));
        let tmp = temp_path_for(p);
        {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        fail::fail_point!("disk::rename", |_| Err(injected("disk::rename")));
        fs::rename(&tmp, p)?;
        self.sync_dir(parent_dir(p))
    }

    fn remove(&self, p: &Path) -> io::Result<()> {
        fail::fail_point!("disk::remove", |_| Err(injected("disk::remove")));
        fs::remove_file(p)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fail::fail_point!("disk::sync_dir", |_| Err(injected("disk::sync_dir")));
        File::open(dir)?.sync_all()
    }
}

struct RealLogFile {
    file: File,
    len: u64,
}

impl LogFile for RealLogFile {
    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        fail::fail_point!("disk::append", |_| Err(injected("disk::append")));
        fail::fail_point!("disk::append::torn", |_| {
            let half = &b[..b.len() / 2];
            self.file.write_all(half)?;
            self.len += half.len() as u64;
            Err(injected("disk::append::torn"))
        });
        match self.file.write_all(b) {
            Ok(()) => {
                self.len += b.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Part of `b` may be on disk; learn the real length.
                if let Ok(m) = self.file.metadata() {
                    self.len = m.len();
                }
                Err(e)
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        fail::fail_point!("disk::sync", |_| Err(injected("disk::sync")));
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        fail::fail_point!("disk::truncate", |_| Err(injected("disk::truncate")));
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}
