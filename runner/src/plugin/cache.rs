//! Compiled plugins kept on disk, so a run does not compile every plugin
//! again (a component takes 100–200 ms to compile, a compiled one a few
//! to load). An entry is named by the component's sha256 and a hash of the
//! engine's configuration and version, so a changed plugin or a changed
//! runner compiles again.
//!
//! A compiled artifact is native code the runner maps and runs as is, so
//! the folder must be the user's own: created mode 0700, and an entry is
//! used only if it is a plain file owned by the user that nobody else can
//! write, in a folder nobody else can write. Anything else is not read
//! (the plugin is compiled as if there were no cache); an entry wasmtime
//! refuses is removed and compiled again. The folder is
//! `$SWITCHYARD_PLUGIN_CACHE`, else `$XDG_CACHE_HOME/switchyard/plugins`,
//! else `~/.cache/switchyard/plugins`; `SWITCHYARD_PLUGIN_CACHE=off` turns
//! it off; `runner plugin clean` empties it. It is kept under
//! [`MAX_CACHE_BYTES`], oldest entries removed first.

#![expect(
    unsafe_code,
    reason = "wasmtime has no safe way to load a compiled artifact, and std no safe geteuid; the two calls below are the whole of it"
)]

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The most the cache folder holds; older entries go first.
pub const MAX_CACHE_BYTES: u64 = 256 << 20;

/// The largest entry read back (a compiled plugin is a few MiB).
const MAX_ENTRY: u64 = 512 << 20;

/// The file extension of an entry.
const EXTENSION: &str = "cwasm";

/// The cache folder, or `None` when it is turned off or no home is known.
pub fn folder() -> Option<PathBuf> {
    match std::env::var_os("SWITCHYARD_PLUGIN_CACHE") {
        Some(v) if v == "off" || v.is_empty() => None,
        // Components, so a trailing `/` cannot make a link look like a folder.
        Some(v) => Some(PathBuf::from(v).components().collect()),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("switchyard").join("plugins")),
    }
}

/// Compiled components in one folder.
pub struct CompiledCache {
    dir: PathBuf,
    limit: u64,
}

impl CompiledCache {
    /// The cache in `dir`, holding at most `limit` bytes.
    pub fn new(dir: PathBuf, limit: u64) -> Self {
        CompiledCache { dir, limit }
    }

    /// The cache in [`folder`], if there is one.
    pub fn default_folder() -> Option<Self> {
        folder().map(|dir| CompiledCache::new(dir, MAX_CACHE_BYTES))
    }

    /// The component of `bytes` (whose sha256 is `sha256`), compiled by
    /// `engine`: read from the cache, or compiled and stored there.
    /// `compile` is how the caller compiles (and names its errors).
    pub fn component<E>(
        &self,
        engine: &Engine,
        sha256: &str,
        compile: impl FnOnce() -> Result<Component, E>,
    ) -> Result<Component, E> {
        let path = self.entry(engine, sha256);
        let started = std::time::Instant::now();
        if let Some(component) = self.read(engine, &path) {
            tracing::debug!(entry = %path.display(), took = ?started.elapsed(), "compiled plugin read from the cache");
            return Ok(component);
        }
        let component = compile()?;
        tracing::debug!(entry = %path.display(), took = ?started.elapsed(), "plugin compiled");
        if let Err(e) = self.write(&path, &component) {
            tracing::debug!(entry = %path.display(), "compiled plugin not cached: {e}");
        }
        Ok(component)
    }

    /// Where the entry of a component and an engine lives.
    fn entry(&self, engine: &Engine, sha256: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir
            .join(format!("{sha256}-{:016x}.{EXTENSION}", hasher.finish()))
    }

    /// The entry at `path`, if it is there, the user's own, and wasmtime
    /// takes it; one wasmtime refuses is removed.
    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        if !safe_folder(&self.dir) {
            return None;
        }
        // Opened without following a link, and checked on the open file,
        // so what is checked is what is read.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !own_and_closed(&meta) || meta.len() > MAX_ENTRY {
            return None;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        // SAFETY: the bytes are an artifact this runner serialized into a
        // folder only this user can change (checked above, with every
        // folder above it), and wasmtime checks the artifact's header
        // against this engine's version and configuration. They are read
        // into memory, so a file changed afterwards cannot change the code
        // in use.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => {
                // Touched, so pruning keeps the entries in use.
                let _ = file.set_modified(std::time::SystemTime::now());
                Some(component)
            }
            Err(e) => {
                tracing::warn!(entry = %path.display(), "a cached compiled plugin was refused ({e}); compiling it again");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    /// Stores `component` at `path` (written aside, then renamed, so a
    /// reader never sees half an entry), then prunes the folder.
    fn write(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        if !safe_folder(&self.dir) {
            return Err(std::io::Error::other(
                "the cache folder, or a folder above it, can be changed by someone else",
            ));
        }
        let aside = self.dir.join(format!(
            ".{}-{}.tmp",
            std::process::id(),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
        ));
        let _ = std::fs::remove_file(&aside); // left by a run that died
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&aside)?;
        let written = file.write_all(&bytes).and_then(|()| file.sync_all());
        if let Err(e) = written.and_then(|()| std::fs::rename(&aside, path)) {
            let _ = std::fs::remove_file(&aside);
            return Err(e);
        }
        self.prune(path)
    }

    /// Removes the oldest entries until the folder holds at most the
    /// limit, never `kept` (the entry just written).
    fn prune(&self, kept: &Path) -> std::io::Result<()> {
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort_by_key(|(_, _, modified)| *modified);
        for (path, len, _) in entries {
            if total <= self.limit {
                break;
            }
            if path == kept {
                continue;
            }
            // Another run may have removed it already.
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => total -= len,
            }
        }
        Ok(())
    }

    /// The entries, with their sizes and when they were last used.
    fn entries(&self) -> std::io::Result<Vec<(PathBuf, u64, std::time::SystemTime)>> {
        let mut found = Vec::new();
        let read = match std::fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in read {
            let path = entry?.path();
            // One another run renamed or removed meanwhile is not there.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_file() && path.extension().is_some_and(|e| e == EXTENSION) {
                found.push((path, meta.len(), meta.modified()?));
            }
        }
        Ok(found)
    }

    /// Removes every entry; returns how many and their bytes.
    pub fn clean(&self) -> std::io::Result<(usize, u64)> {
        let entries = self.entries()?;
        let mut bytes = 0;
        for (path, len, _) in &entries {
            std::fs::remove_file(path)?;
            bytes += len;
        }
        Ok((entries.len(), bytes))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether a file or folder is this user's and nobody else can write to it.
fn own_and_closed(meta: &std::fs::Metadata) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    meta.uid() == uid && meta.permissions().mode() & 0o022 == 0
}

/// Whether `dir` is a folder (not a link) of this user's that nobody else
/// can write to, under folders nobody else can change either: each owned
/// by this user or root, and writable by others only with the sticky bit
/// (as `/tmp`), which keeps them from renaming what is not theirs.
fn safe_folder(dir: &Path) -> bool {
    let own = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && own_and_closed(&m));
    // SAFETY: as above.
    let uid = unsafe { libc::geteuid() };
    own && dir.ancestors().skip(1).all(|above| {
        above.as_os_str().is_empty()
            || std::fs::metadata(above).is_ok_and(|m| {
                (m.uid() == uid || m.uid() == 0)
                    && (m.permissions().mode() & 0o022 == 0 || m.permissions().mode() & 0o1000 != 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: the magic, version 13, layer 1.
    const EMPTY: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    fn load(cache: &CompiledCache, engine: &Engine, compiled: &mut u32) -> Component {
        let bytes = component_bytes();
        cache
            .component(engine, "abc", || {
                *compiled += 1;
                Component::new(engine, &bytes)
            })
            .unwrap()
    }

    fn component_bytes() -> Vec<u8> {
        EMPTY.to_vec()
    }

    #[test]
    fn a_compiled_plugin_is_read_back_and_a_refused_entry_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path().join("c"), MAX_CACHE_BYTES);
        let engine = engine();
        let mut compiled = 0;
        load(&cache, &engine, &mut compiled);
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 1, "the second load comes from the cache");
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let entries = cache.entries().unwrap();
        std::fs::write(&entries[0].0, b"not an artifact").unwrap();
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 2, "a refused entry is compiled again");
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 2, "and stored again");

        let mut other = wasmtime::Config::new();
        other.wasm_component_model(true).epoch_interruption(true);
        let other = Engine::new(&other).unwrap();
        load(&cache, &other, &mut compiled);
        assert_eq!(compiled, 3, "another engine configuration compiles again");
        assert_eq!(cache.clean().unwrap().0, 2);
    }

    #[test]
    fn an_entry_others_can_write_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path().join("c"), MAX_CACHE_BYTES);
        let engine = engine();
        let mut compiled = 0;
        load(&cache, &engine, &mut compiled);
        let entry = cache.entries().unwrap()[0].0.clone();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 2, "an entry others can write is not trusted");
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 3, "nor one in a folder others can write");
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(cache.dir(), &link).unwrap();
        let through_link = CompiledCache::new(link, MAX_CACHE_BYTES);
        load(&through_link, &engine, &mut compiled);
        assert_eq!(compiled, 4, "nor one reached through a link");
        load(&cache, &engine, &mut compiled);
        assert_eq!(compiled, 4, "the folder itself still serves");
    }

    #[test]
    fn the_folder_is_kept_under_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompiledCache::new(dir.path().join("c"), MAX_CACHE_BYTES);
        let mut compiled = 0;
        load(&cache, &engine, &mut compiled);
        let one = cache.entries().unwrap()[0].1;
        let small = CompiledCache::new(dir.path().join("c"), one);
        let bytes = component_bytes();
        small
            .component(&engine, "def", || Component::new(&engine, &bytes))
            .unwrap();
        let left = small.entries().unwrap();
        assert_eq!(left.len(), 1, "the older entry went");
        assert!(left[0].0.to_string_lossy().contains("def"));
    }
}
