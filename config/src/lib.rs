//! dsrlb's configuration file. `Config::from_toml` parses, fills defaults and
//! validates; every error names the key path it is about (`services[1].targets[0].weight`)
//! and all semantic errors are reported at once. Nothing here touches DPDK.
//!
//! - `types`: the sections as serde types, their defaults and limits
//! - `load`: reading and parsing a file
//! - `validate`: every semantic problem, one `problems` method a section
//! - `restart`: which changes need a restart rather than a reload
//! - `error`: a problem at its key, and all of a file's
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod load;
mod mac;
mod restart;
mod types;
mod validate;

pub use error::{ConfigError, KeyError};
pub use mac::Mac;
pub use types::*;

/// Whether `n` is prime: a Maglev table's size must be (the dataplane's builder and
/// this crate's validation ask the same question here).
pub fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d: &u64| d * d <= u64::from(n))
            .all(|d| u64::from(n) % d != 0)
}

#[cfg(test)]
mod tests;
