//! Helpers shared by the facade's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod python;
pub mod stores;
pub mod tagged;

use std::path::Path;

/// A directory as the `str` python is given.
pub fn path_str(dir: &Path) -> &str {
    dir.to_str()
        .expect("temporary directories have UTF-8 paths")
}
