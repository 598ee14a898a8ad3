//! An in-memory [`Disk`] that can simulate a crash, for tests.
//!
//! It tracks what would survive power loss: per file, the prefix made
//! durable by [`LogFile::sync`]; per directory, the set of names made durable
//! by [`Disk::sync_dir`] (creations and removals are volatile until then).
//! [`Disk::write_atomic`] is durable when it returns, as on a real disk.
//! [`MemDisk::crash`] throws away what was not durable, optionally keeping a
//! torn part of each file's unsynced tail. Handles opened before a crash
//! must not be used afterwards (drop the `Wal` first).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::disk::{Disk, LogFile};

#[derive(Debug, Default)]
struct FileData {
    data: Vec<u8>,
    /// Bytes that survive a crash.
    synced: usize,
}

type FileRef = Arc<Mutex<FileData>>;

#[derive(Debug, Default)]
struct State {
    dirs: Vec<PathBuf>,
    /// What a process sees now.
    live: BTreeMap<PathBuf, FileRef>,
    /// Names that survive a crash.
    durable: BTreeMap<PathBuf, FileRef>,
}

/// See the module documentation. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<State>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", p.display()))
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates power loss: names not made durable disappear (or removed
    /// ones come back), and each file keeps its synced prefix plus
    /// `torn(path, unsynced_len)` (clamped to `unsynced_len`) bytes of its
    /// unsynced tail.
    pub fn crash_with(&self, mut torn: impl FnMut(&Path, usize) -> usize) {
        let mut st = lock(&self.state);
        let mut live = BTreeMap::new();
        for (path, f) in &st.durable {
            let fd = lock(f);
            let unsynced = fd.data.len() - fd.synced;
            let keep = fd.synced + torn(path, unsynced).min(unsynced);
            let data = fd.data[..keep].to_vec();
            // Detach from handles opened before the crash.
            let fresh = Arc::new(Mutex::new(FileData {
                synced: data.len(),
                data,
            }));
            live.insert(path.clone(), fresh);
        }
        st.durable = live.clone();
        st.live = live;
    }

    /// Simulates power loss that keeps exactly what was made durable.
    pub fn crash(&self) {
        self.crash_with(|_, _| 0);
    }

    /// The current (live) contents of a file.
    pub fn contents(&self, p: &Path) -> Option<Vec<u8>> {
        let st = lock(&self.state);
        st.live.get(p).map(|f| lock(f).data.clone())
    }

    /// Replaces a file's contents (live and durable), e.g. to corrupt it.
    pub fn set_contents(&self, p: &Path, data: Vec<u8>) {
        let mut st = lock(&self.state);
        let f = Arc::new(Mutex::new(FileData {
            synced: data.len(),
            data,
        }));
        st.live.insert(p.to_path_buf(), f.clone());
        st.durable.insert(p.to_path_buf(), f);
    }
}

impl Disk for MemDisk {
    fn create_dir_all(&self, p: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        if !st.dirs.iter().any(|d| d == p) {
            st.dirs.push(p.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let st = lock(&self.state);
        if !st.dirs.iter().any(|d| d == dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn read(&self, p: &Path) -> io::Result<Vec<u8>> {
        let st = lock(&self.state);
        let f = st.live.get(p).ok_or_else(|| not_found(p))?;
        let data = lock(f).data.clone();
        Ok(data)
    }

    fn open_append(&self, p: &Path) -> io::Result<Box<dyn LogFile>> {
        let mut st = lock(&self.state);
        if !st.dirs.iter().any(|d| *d == parent(p)) {
            return Err(not_found(&parent(p)));
        }
        let f = st.live.entry(p.to_path_buf()).or_default().clone();
        Ok(Box::new(MemLogFile { file: f }))
    }

    fn write_atomic(&self, p: &Path, data: &[u8]) -> io::Result<()> {
        self.set_contents(p, data.to_vec());
        Ok(())
    }

    fn remove(&self, p: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.live.remove(p).map(|_| ()).ok_or_else(|| not_found(p))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        let State { live, durable, .. } = &mut *st;
        durable.retain(|p, _| p.parent() != Some(dir));
        for (p, f) in live.iter() {
            if p.parent() == Some(dir) {
                durable.insert(p.clone(), f.clone());
            }
        }
        Ok(())
    }
}

struct MemLogFile {
    file: FileRef,
}

impl LogFile for MemLogFile {
    fn append(&mut self, b: &[u8]) -> io::Result<()> {
        lock(&self.file).data.extend_from_slice(b);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut f = lock(&self.file);
        f.synced = f.data.len();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut f = lock(&self.file);
        let len = len as usize;
        f.data.truncate(len);
        f.synced = f.synced.min(len);
        Ok(())
    }

    fn len(&self) -> u64 {
        lock(&self.file).data.len() as u64
    }
}
