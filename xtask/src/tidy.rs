//! Repository rules that the compiler does not check by itself.
//!
//! - Crate dependencies point one way (the diagram of ARCHITECTURE.md, "Bird's eye view"):
//!   every workspace crate is listed in [`ALLOWED`] with the workspace crates it may depend on,
//!   for normal, build and dev dependencies alike (cross-crate tests live in
//!   `crates/dcache/tests`).
//! - Every crate inherits the workspace lints, and those deny `missing_docs`, so a public item
//!   without docs fails the build of its crate.
//! - Comments and docs (`.rs` and `.md` files) cite what is in the repository: a cited `.md` file
//!   exists, and nothing cites a numbered issue, a section sign with a number (a section of a
//!   document kept elsewhere) or a path outside the repository. [`check_references`] says how.

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
    problems.extend(check_references(root));
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
                "crate `{name}` is not listed in xtask/src/tidy.rs ALLOWED: add it with the crates it may depend on (ARCHITECTURE.md, \"Bird's eye view\")"
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

/// Directories outside the repository that its files once cited (written in two pieces so that
/// this file does not cite them itself).
const OUTSIDE: &[&str] = &[concat!("../", "shared/"), concat!("/wo", "rk/")];

/// Directories the reference check does not enter: build output, python's virtualenv, git.
const SKIPPED_DIRS: &[&str] = &["target", ".venv", ".git"];

/// Every `.rs` and `.md` file of the repository must cite only what is in the repository.
///
/// A reader of the repository has its files and nothing else, so a comment or a doc that sends
/// them to a design document kept elsewhere, to a numbered issue or to a numbered section of
/// another document leaves them with nothing to read. Reported, line by line:
/// - a cited markdown file (a path ending in `.md`) that is not a file of the repository, taken
///   from the repository root, from the citing file's directory, or (a bare file name) anywhere
///   in it; web addresses are not checked;
/// - the word issue or issues followed by a number (`#` allowed in between): link the tracker
///   by its full address if it is another project's, or cite the docs file that explains;
/// - a section sign followed by a number;
/// - a path into one of the directories [`OUTSIDE`] lists.
pub(crate) fn check_references(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect_files(root, Path::new(""), &mut files);
    let names: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.file_name().and_then(|n| n.to_str()))
        .collect();
    let mut problems = Vec::new();
    for file in &files {
        let is_text = matches!(file.extension().and_then(|e| e.to_str()), Some("rs" | "md"));
        if !is_text {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            problems.push(format!("{}: cannot be read as UTF-8", file.display()));
            continue;
        };
        let dir = root.join(file.parent().unwrap_or(Path::new("")));
        let exists = |cited: &str| {
            let relative = cited.trim_start_matches('/');
            root.join(relative).is_file()
                || (!cited.starts_with('/') && dir.join(cited).is_file())
                || (!cited.contains('/') && names.contains(cited))
        };
        for (number, line) in text.lines().enumerate() {
            for problem in dangling_references(line, &exists) {
                problems.push(format!("{}:{}: {problem}", file.display(), number + 1));
            }
        }
    }
    problems
}

/// The files below `root.join(dir)`, relative to `root`, skipping [`SKIPPED_DIRS`].
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let path = dir.join(&name);
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !SKIPPED_DIRS.iter().any(|skipped| name == *skipped) {
                collect_files(root, &path, out);
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

/// What in `line` cites something outside the repository; `exists` says whether a cited
/// `.md` path is a file of the repository.
fn dangling_references(line: &str, exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    for cited in cited_markdown(line) {
        if !exists(cited) {
            problems.push(format!(
                "cites `{cited}`, which is not a file of the repository: cite one that is \
                 (docs/*.md, ARCHITECTURE.md) or explain in place"
            ));
        }
    }
    if let Some(number) = issue_number(line) {
        problems.push(format!(
            "cites issue {number}: cite the docs file that explains (docs/*.md, \
             ARCHITECTURE.md), or another project's issue by its full address"
        ));
    }
    if section_number(line) {
        problems.push(
            "cites a numbered section of a document outside the repository: cite a file of \
             the repository and its heading instead"
                .to_owned(),
        );
    }
    for outside in OUTSIDE {
        if line.contains(outside) {
            problems.push(format!(
                "names a path under `{outside}`, outside the repository: cite a file of the \
                 repository instead"
            ));
        }
    }
    problems
}

/// The `.md` paths cited in `line` (`ARCHITECTURE.md`, `docs/design.md`, or relative to the file),
/// leaving out web addresses and patterns such as `docs/*.md`.
fn cited_markdown(line: &str) -> Vec<&str> {
    let is_path = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    let mut cited = Vec::new();
    for (at, _) in line.match_indices(".md") {
        let after = line[at + 3..].chars().next();
        if after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = line[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_path(c))
            .last()
            .map_or(at, |(i, _)| i);
        let path = &line[start..at + 3];
        let stem = &line[start..at];
        let in_address = line[..start].ends_with(':') || path.starts_with("//");
        if stem.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !in_address
        {
            cited.push(path.strip_prefix("./").unwrap_or(path));
        }
    }
    cited
}

/// The number after the word issue or issues in `line`, if any (`#` allowed in between).
fn issue_number(line: &str) -> Option<&str> {
    let lower = line.to_ascii_lowercase();
    for (at, _) in lower.match_indices("issue") {
        if lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric()) {
            continue;
        }
        let rest = &line[at + "issue".len()..];
        let rest = rest.strip_prefix(['s', 'S']).unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(' ') else {
            continue;
        };
        let rest = rest.strip_prefix('#').unwrap_or(rest);
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            return Some(&rest[..digits]);
        }
    }
    None
}

/// Whether `line` holds a section sign followed by a number.
fn section_number(line: &str) -> bool {
    line.match_indices('\u{a7}').any(|(at, sign)| {
        line[at + sign.len()..]
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit())
    })
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

    /// A cited markdown path, built so that this file does not cite it itself.
    fn md(stem: &str) -> String {
        format!("{stem}{}", ".md")
    }

    #[test]
    fn dangling_references_are_reported() {
        let exists = |cited: &str| cited == "ARCHITECTURE.md" || cited == "docs/design.md";
        let check = |line: &str| dangling_references(line, &exists);

        assert!(
            check(&format!(
                "see {} and `{}`",
                md("ARCHITECTURE"),
                md("docs/design")
            ))
            .is_empty()
        );
        let missing = check(&format!("the contract ({} \u{a7}6)", md("DESIGN")));
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains(&format!("`{}`", md("DESIGN"))));
        assert!(missing[1].contains("numbered section"));
        assert!(
            check(&format!("read {}", md(&format!("{}STYLE", OUTSIDE[0]))))
                .iter()
                .any(|p| p.contains("outside the repository"))
        );

        for line in [
            format!("fixed in issue {}", 17),
            format!("(Issues #{}, 4)", 16),
            format!("reference \u{a7} {}", 8),
        ] {
            assert_eq!(check(&line).len(), 1, "{line}");
        }
        for line in [
            format!("{} and {}", md("docs/*"), md("https://example.com/x")),
            // Built at run time, like the lines above, so this file does not trip the check.
            format!("an issue of ordering, t{}ssue {}, the issues", "i", 3),
            format!("[#{}](https://github.com/o/r/issues/13)", 13),
            format!("{}x is not a citation", md("name")),
        ] {
            assert!(check(&line).is_empty(), "{line}: {:?}", check(&line));
        }
    }

    #[test]
    fn cited_files_are_found_from_the_root_the_file_or_by_name() {
        let dir = std::env::temp_dir().join(format!("tidy-references-{}", std::process::id()));
        let sub = dir.join("crates/a/src");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join(md("docs/x")), "# x\n").unwrap();
        std::fs::write(dir.join(md("crates/a/README")), "# a\n").unwrap();
        let cites = [md("docs/x"), md("../README"), md("x"), md("docs/gone")];
        std::fs::write(
            sub.join("lib.rs"),
            cites.map(|c| format!("//! {c}\n")).concat(),
        )
        .unwrap();
        let problems = check_references(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("crates/a/src/lib.rs:4: cites `docs/gone"));
    }
}
