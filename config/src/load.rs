//! Reading a file: TOML through serde (a type error names its key path, line and
//! column), then every semantic problem at once (validate.rs).

use crate::{Config, ConfigError, KeyError};
use std::path::Path;

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: source.clone(),
            errors: vec![KeyError {
                key: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
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
