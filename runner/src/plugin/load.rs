//! Finding a plugin's bytes: a prebuilt `.wasm`, or a plugin crate that is
//! built for wasm32-wasip2 on the spot; then checking its sha256 pin.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::error::LoadError;

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A compiled component.
    Wasm(PathBuf),
    /// A crate to build for wasm32-wasip2 (see [`build_crate`]).
    Crate(PathBuf),
}

/// The WebAssembly target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Reads the plugin's component, building it first if it is a crate, and
/// checks the pin. Returns the bytes and the file they came from.
pub fn component_bytes(
    plugin: &str,
    source: &PluginSource,
    sha256: Option<&str>,
) -> Result<(Vec<u8>, PathBuf), LoadError> {
    let path = match source {
        PluginSource::Wasm(path) => path.clone(),
        PluginSource::Crate(dir) => build_crate(plugin, dir)?,
    };
    let bytes = read_component(&path).map_err(|source| LoadError::Read {
        plugin: plugin.to_string(),
        path: path.clone(),
        source,
    })?;
    if let Some(expected) = sha256 {
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(LoadError::Sha256 {
                plugin: plugin.to_string(),
                path,
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok((bytes, path))
}

/// The largest component the runner reads.
pub const MAX_COMPONENT: u64 = 256 << 20;

/// Reads a component file: a regular file of at most [`MAX_COMPONENT`]
/// bytes (a device or a FIFO would never end).
pub fn read_component(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if meta.len() > MAX_COMPONENT {
        return Err(std::io::Error::other(format!(
            "it is {} bytes, more than the {} a component may have",
            meta.len(),
            super::limits::show_size(MAX_COMPONENT)
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_COMPONENT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What a core module is told.
fn core_module() -> String {
    format!(
        "it is a core WebAssembly module, not a component; build the plugin with `cargo build --release --target {TARGET}` (which makes a component), or wrap the module with `wasm-tools component new`"
    )
}

/// Whether `bytes` are a core WebAssembly module (not a component).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[4..8] == [1, 0, 0, 0]
}

/// Why `bytes` are not a component wasmtime accepts, in words a plugin
/// author can act on.
pub fn describe_invalid(bytes: &[u8], error: &wasmtime::Error) -> String {
    if bytes.len() < 8 || !bytes.starts_with(b"\0asm") {
        return format!(
            "it is not WebAssembly at all ({} bytes that do not start with `\\0asm`); point `wasm` at the `.wasm` a plugin build produced",
            bytes.len()
        );
    }
    if is_core_module(bytes) {
        return core_module();
    }
    let detail = error
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    if detail.contains("unexpected end") || detail.contains("out of bounds") {
        return format!(
            "it is cut short ({} bytes; {detail}); build it again or copy it whole",
            bytes.len()
        );
    }
    detail
}

/// The names a component exports at its top level (its interfaces), read
/// without compiling it; an error says why the bytes are not a component.
pub fn exports(bytes: &[u8]) -> Result<Vec<String>, String> {
    use wasmparser::{Parser, Payload};
    if is_core_module(bytes) {
        return Err(core_module());
    }
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("it is not a valid component: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| format!("it is not a valid component: {e}"))?;
                    names.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds a plugin crate and returns the path of its `.wasm`.
pub fn build_crate(plugin: &str, dir: &Path) -> Result<PathBuf, LoadError> {
    let build_error = |message: String| LoadError::Build {
        plugin: plugin.to_string(),
        message,
    };
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(build_error(format!(
            "`{}` is not a plugin crate (no Cargo.toml); give `crate` a crate folder or `wasm` a .wasm file",
            dir.display()
        )));
    }
    ensure_target().map_err(build_error)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    tracing::info!(plugin, crate_dir = %dir.display(), "building plugin for {TARGET}");
    let mut child = Command::new(&cargo)
        .args(["rustc", "--quiet", "--release", "--target", TARGET, "--lib"])
        // Plugins are small and hot: whole-program optimisation pays for
        // itself on the first batch. Cargo drops LTO for a crate that is
        // also an rlib (`crate-type = ["cdylib", "rlib"]`, which plugin
        // crates need for their native tests), so the library is built as
        // a cdylib alone. Always the same flags, so repeated builds are
        // no-ops.
        .args(["--crate-type", "cdylib"])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.opt-level=3"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.debug=false"])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| build_error(format!("cannot run `cargo`: {e}")))?;
    let canonical_manifest = manifest.canonicalize().unwrap_or(manifest.clone());
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(path) = artifact_wasm(&line, &canonical_manifest) {
                wasm = Some(path);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| build_error(format!("`cargo rustc` did not finish: {e}")))?;
    if !status.success() {
        return Err(build_error(format!(
            "`cargo rustc --release --target {TARGET} --crate-type cdylib` failed in `{}` (see the compiler output above)",
            dir.display()
        )));
    }
    wasm.ok_or_else(|| {
        build_error(format!(
            "building `{}` produced no .wasm; is it a `cdylib` crate?",
            dir.display()
        ))
    })
}

/// The `.wasm` of a `compiler-artifact` message for this manifest, if any.
fn artifact_wasm(line: &str, manifest: &Path) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let this = msg.get("manifest_path")?.as_str()?;
    if Path::new(this) != manifest {
        return None;
    }
    msg.get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Whether rustup lists the target as installed; `None` without rustup.
fn target_installed() -> Option<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == TARGET),
    )
}

/// Makes sure the wasm32-wasip2 target is installed, adding it with rustup.
fn ensure_target() -> Result<(), String> {
    match target_installed() {
        Some(true) => Ok(()),
        Some(false) => {
            tracing::info!("adding the Rust target {TARGET} with rustup");
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
                .map_err(|e| format!("cannot run `rustup target add {TARGET}`: {e}"))?;
            // Another runner adding it at the same moment makes this one
            // fail, with the target there all the same.
            if status.success() || target_installed() == Some(true) {
                Ok(())
            } else {
                Err(format!(
                    "`rustup target add {TARGET}` failed; add the target by hand, or give the plugin as a prebuilt `wasm = \"….wasm\"`"
                ))
            }
        }
        None => {
            // Without rustup the toolchain may still have the target (a
            // distribution's Rust); let cargo say so if it does not.
            tracing::debug!("rustup not found; assuming the toolchain has {TARGET}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_wasm_of_the_right_package() {
        let line = r#"{"reason":"compiler-artifact","manifest_path":"/p/a/Cargo.toml","filenames":["/t/liba.rlib","/t/a.wasm"]}"#;
        assert_eq!(
            artifact_wasm(line, Path::new("/p/a/Cargo.toml")),
            Some(PathBuf::from("/t/a.wasm"))
        );
        assert_eq!(artifact_wasm(line, Path::new("/p/b/Cargo.toml")), None);
        assert_eq!(
            artifact_wasm("not json", Path::new("/p/a/Cargo.toml")),
            None
        );
    }

    #[test]
    fn a_device_is_not_read_as_a_component() {
        let err = read_component(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.to_string(), "it is not a regular file");
    }

    #[test]
    fn hashes_are_lower_case_hex() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
