//! Helpers shared by the facade's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod python;
