//! Which changes a reload can apply and which need a restart.

use crate::{Config, KeyError};

/// Sections whose every key is fixed at start (EAL, ports, workers, their flow
/// tables, the sockets dsrlb listens on): a reload that changes one is refused.
const RESTART_KEYS: [&str; 7] = [
    "dataplane",
    "ports",
    "flows",
    "control",
    "metrics",
    "bgp",
    "ha",
];

impl Config {
    /// What a reload from `self` to `next` would change that only a restart can: one
    /// entry per changed key, e.g. `dataplane.worker_lcores`. Empty: `next` can be
    /// applied live.
    pub fn needs_restart_for(&self, next: &Config) -> Vec<KeyError> {
        let (Ok(before), Ok(after)) = (toml::Value::try_from(self), toml::Value::try_from(next))
        else {
            return vec![KeyError {
                key: String::new(),
                message: "cannot compare the two configs".into(),
            }];
        };
        let mut changed = Vec::new();
        for section in RESTART_KEYS {
            diff_keys(
                section.to_owned(),
                before.get(section),
                after.get(section),
                &mut changed,
            );
        }
        changed
            .into_iter()
            .map(|key| KeyError {
                key,
                message: "changed: this needs a restart (fixed at start-up), not a reload".into(),
            })
            .collect()
    }
}

/// Keys under `key` whose values differ, as dotted paths (arrays by index).
fn diff_keys(key: String, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) => {
            let mut names: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                diff_keys(format!("{key}.{name}"), ta.get(name), tb.get(name), out);
            }
        }
        (Some(toml::Value::Array(aa)), Some(toml::Value::Array(ab))) if aa.len() == ab.len() => {
            for (i, (x, y)) in aa.iter().zip(ab).enumerate() {
                if x.is_table() || y.is_table() {
                    diff_keys(format!("{key}[{i}]"), Some(x), Some(y), out);
                } else if x != y {
                    out.push(key.clone());
                    return;
                }
            }
        }
        (x, y) if x != y => out.push(key),
        _ => {}
    }
}
