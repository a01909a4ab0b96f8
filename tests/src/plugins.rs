//! The plugins the tests run, each built once per test binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use switchyard_runner::plugin::load::build_crate;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `.wasm` of a plugin crate under the repository (`plugins/chat-transform`,
/// `tests/plugins/misbehave`), built on first use.
pub fn wasm(crate_dir: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(crate_dir) {
        return path.clone();
    }
    let path = build_crate(crate_dir, &repo_root().join(crate_dir))
        .unwrap_or_else(|e| panic!("building {crate_dir}: {e}"));
    built.insert(crate_dir.to_string(), path.clone());
    path
}
