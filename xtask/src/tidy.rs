//! Repository rules that the compiler does not check by itself.
//!
//! - Crate dependencies point one way (ARCHITECTURE.md, "Layers"): every workspace crate is
//!   listed in [`ALLOWED`] with the workspace crates it may depend on, for normal, build and
//!   dev dependencies alike (cross-crate tests live in `crates/dcache/tests`).
//! - Every crate inherits the workspace lints, and those deny `missing_docs`, so a public item
//!   without docs fails the build of its crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each workspace crate and the workspace crates it may depend on.
pub(crate) const ALLOWED: &[(&str, &[&str])] = &[
    ("dcache-disk", &[]),
    ("dcache-core", &["dcache-disk"]),
    ("dcache-collections", &["dcache-disk", "dcache-core"]),
    (
        "dcache-fanout",
        &["dcache-disk", "dcache-core", "dcache-collections"],
    ),
    ("dcache-sync", &["dcache-core"]),
    ("dcache-recipes", &["dcache-core", "dcache-sync"]),
    ("dcache-redis", &["dcache-core"]),
    (
        "dcache",
        &[
            "dcache-disk",
            "dcache-core",
            "dcache-collections",
            "dcache-fanout",
            "dcache-sync",
            "dcache-recipes",
            "dcache-redis",
        ],
    ),
    ("dcache-cli", &["dcache"]),
    ("xtask", &[]),
    // Benchmarks (unpublished): measure dcache through its facade.
    ("benches", &["dcache"]),
];

/// The workspace root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs every check; returns the list of problems found.
pub(crate) fn check_all(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match metadata(root) {
        Ok(meta) => {
            problems.extend(check_dependency_directions(&meta));
            problems.extend(check_lint_inheritance(&meta));
        }
        Err(e) => problems.push(e),
    }
    problems.extend(check_workspace_lints(root));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

pub(crate) fn metadata(root: &Path) -> Result<serde_json::Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

fn packages(meta: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    meta["packages"].as_array().into_iter().flatten()
}

/// Every dependency edge between workspace crates must be allowed.
pub(crate) fn check_dependency_directions(meta: &serde_json::Value) -> Vec<String> {
    let members: BTreeSet<&str> = packages(meta).filter_map(|p| p["name"].as_str()).collect();
    let mut problems = Vec::new();
    for package in packages(meta) {
        let name = package["name"].as_str().unwrap_or("?");
        let Some((_, allowed)) = ALLOWED.iter().find(|(n, _)| *n == name) else {
            problems.push(format!(
                "crate `{name}` is not listed in xtask/src/tidy.rs ALLOWED: add it with the crates it may depend on (DESIGN.md §1)"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or("?");
            if members.contains(dep_name) && !allowed.contains(&dep_name) {
                problems.push(format!(
                    "`{name}` depends on `{dep_name}`, which the layering does not allow (allowed: {allowed:?})"
                ));
            }
        }
    }
    problems
}

/// Every crate must have `[lints] workspace = true` so the workspace lints (`missing_docs`) apply.
pub(crate) fn check_lint_inheritance(meta: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    for package in packages(meta) {
        let name = package["name"].as_str().unwrap_or("?");
        let Some(manifest) = package["manifest_path"].as_str() else {
            continue;
        };
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        let inherits = text
            .split("\n[")
            .any(|section| section.starts_with("lints]") && section.contains("workspace = true"));
        if !inherits {
            problems.push(format!(
                "`{name}` ({manifest}) lacks `[lints] workspace = true`"
            ));
        }
    }
    problems
}

/// The workspace lints must deny missing docs and unsafe code.
pub(crate) fn check_workspace_lints(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut problems = Vec::new();
    for rule in ["missing_docs = \"deny\"", "unsafe_code = \"deny\""] {
        if !text.contains(rule) {
            problems.push(format!(
                "root Cargo.toml [workspace.lints.rust] must contain `{rule}`"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_is_tidy() {
        if let Err(problems) = check_all(&workspace_root()) {
            panic!("tidy found problems:\n{}", problems.join("\n"));
        }
    }

    #[test]
    fn a_forbidden_edge_is_reported() {
        let meta = serde_json::json!({ "packages": [
            { "name": "dcache-disk", "manifest_path": "x", "dependencies": [{ "name": "dcache" }] },
            { "name": "dcache", "manifest_path": "y", "dependencies": [{ "name": "dcache-disk" }] },
        ]});
        let problems = check_dependency_directions(&meta);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`dcache-disk` depends on `dcache`"));
    }

    #[test]
    fn an_unlisted_crate_is_reported() {
        let meta = serde_json::json!({ "packages": [
            { "name": "dcache-new", "manifest_path": "x", "dependencies": [] },
        ]});
        assert!(check_dependency_directions(&meta)[0].contains("not listed"));
    }
}
