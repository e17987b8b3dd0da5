//! Config load and validation over arbitrary text: an error (naming a key) or a
//! config, never a panic; and a config that loads must load again, the same, from
//! its own TOML (what reload compares against).
#![no_main]

use config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, "fuzz.toml") else {
        return;
    };
    let again = Config::from_toml(&config.to_toml(), "again.toml");
    assert_eq!(again.as_ref().ok(), Some(&config), "{again:?}");
});
