//! A collection's arguments: `key=value` pairs as the command carries them (a key may repeat,
//! as `root` does), read by each collector with a clear error for a key it does not know or
//! a value it cannot use.

use std::str::FromStr;

/// `key=value` pairs, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(Vec<(String, String)>);

/// Why a collection's arguments were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("unknown argument {key:?}; this collector takes {known}")]
    Unknown { key: String, known: String },
    #[error("argument {key} given more than once")]
    Repeated { key: String },
    #[error("argument {key}={value:?}: {why}")]
    Bad {
        key: String,
        value: String,
        why: String,
    },
}

/// One `key=value` argument, as a command line gives it.
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

impl Args {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Refuses a key not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ArgsError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((key, _)) => Err(ArgsError::Unknown {
                key: key.clone(),
                known: if known.is_empty() {
                    "no arguments".into()
                } else {
                    known.join(", ")
                },
            }),
            None => Ok(()),
        }
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `key`, if given.
    pub fn one(&self, key: &str) -> Result<Option<&str>, ArgsError> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(ArgsError::Repeated { key: key.into() }),
        }
    }

    /// The one value of `key` parsed as `T`, if given.
    pub fn parsed<T: FromStr>(&self, key: &str) -> Result<Option<T>, ArgsError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.one(key)? else {
            return Ok(None);
        };
        value.parse().map(Some).map_err(|e: T::Err| ArgsError::Bad {
            key: key.into(),
            value: value.into(),
            why: e.to_string(),
        })
    }

    /// The error for `key`'s `value`, which the collector cannot use because of `why`.
    pub fn bad(key: &str, value: &str, why: impl Into<String>) -> ArgsError {
        ArgsError::Bad {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        }
    }
}
