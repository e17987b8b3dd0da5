//! Reading a file: TOML through serde (a type error names its key path, line and
//! column), then every semantic problem at once (validate.rs).

use crate::{Config, ConfigError, KeyError};
use std::path::Path;

/// The largest config file read: thousands of services fit in far less.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

impl Config {
    /// Reads and checks the file at `path`, which must be a regular file of at most
    /// `MAX_FILE_BYTES` (a FIFO would hang the read, a device fill memory).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let fail = |message: String| ConfigError {
            source: source.clone(),
            errors: vec![KeyError {
                key: String::new(),
                message,
            }],
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(format!(
                "{} bytes, more than a config file may be ({MAX_FILE_BYTES})",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Self::from_toml(&text, &source)
    }

    /// Parses and validates; `source` names the file in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigError> {
        let fail = |errors| ConfigError {
            source: source.to_owned(),
            errors,
        };
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let message = e.inner().message().to_owned();
            let at = e.inner().span().map(|span| line_col(text, span.start));
            let message = match at {
                Some((line, col)) => format!("{message} (line {line}, column {col})"),
                None => message,
            };
            fail(vec![KeyError { key, message }])
        })?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(fail(errors))
        }
    }

    /// The resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}
