//! Sub-collection names: `cache/<name>`, `deque/<name>`, `index/<name>`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory of sub-collection `name` of `kind` below `root`. python splits names on `/`
/// into nested directories; dcache does the same and refuses anything that could leave `root`.
pub(crate) fn subdirectory(root: &Path, kind: &str, name: &str) -> Result<PathBuf> {
    let invalid = || Error::InvalidName {
        name: name.to_owned(),
    };
    if name.is_empty() || name.contains('\\') || name.contains('\0') {
        return Err(invalid());
    }
    let mut dir = root.join(kind);
    for segment in name.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(invalid());
        }
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(std::path::Component::Normal(part)), None) => dir.push(part),
            _ => return Err(invalid()),
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        let root = Path::new("/fan");
        assert_eq!(
            subdirectory(root, "cache", "a").unwrap(),
            Path::new("/fan/cache/a")
        );
        assert_eq!(
            subdirectory(root, "deque", "a/b").unwrap(),
            Path::new("/fan/deque/a/b")
        );
        for bad in [
            "", "/abs", "a/../b", "..", ".", "a//b", "a/", "a\\b", "nul\0",
        ] {
            assert!(
                matches!(
                    subdirectory(root, "cache", bad),
                    Err(Error::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
