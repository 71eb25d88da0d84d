//! Loading a directory of rule files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::sigma::{ErrorKind, Rule, RuleError, RuleName, parse_rule};

/// What [`load_dir`] found: rules that loaded, rules refused (unsupported or invalid) and
/// rules skipped (a log source Cordon does not produce), each with its path.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<Rule>,
    pub refused: Vec<(String, RuleError)>,
    pub skipped: Vec<(String, RuleError)>,
}

impl LoadReport {
    /// Files looked at.
    pub fn total(&self) -> usize {
        self.loaded.len() + self.refused.len() + self.skipped.len()
    }

    fn add(&mut self, path: String, result: Result<Rule, RuleError>) {
        match result {
            Ok(rule) => self.loaded.push(rule),
            Err(e) if e.kind() == ErrorKind::Skipped => self.skipped.push((path, e)),
            Err(e) => self.refused.push((path, e)),
        }
    }
}

/// Loads every `.yml`/`.yaml` file under `dir`, recursively, in path order. A file that
/// cannot be read (or a directory that cannot be listed) is refused with the I/O error.
pub fn load_dir(dir: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    let (files, unreadable) = yaml_files(dir);
    for (path, e) in unreadable {
        let shown = path.display().to_string();
        report.refused.push((shown.clone(), io_error(&shown, &e)));
    }
    for path in files {
        let shown = path.display().to_string();
        let result = match std::fs::read_to_string(&path) {
            Ok(text) => parse_rule(&text, &shown),
            Err(e) => Err(io_error(&shown, &e)),
        };
        report.add(shown, result);
    }
    report
}

/// Every `.yml`/`.yaml` file under `dir`, recursively, sorted by path, and the directories
/// that could not be listed. Symlinks are followed (a rule directory may link to a shared
/// pack), each directory once.
pub fn yaml_files(dir: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, std::io::Error)>) {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    collect(dir, &mut files, &mut unreadable, &mut HashSet::new());
    files.sort();
    (files, unreadable)
}

fn collect(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
    seen: &mut HashSet<PathBuf>,
) {
    if let Ok(real) = dir.canonicalize()
        && !seen.insert(real)
    {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            unreadable.push((dir.to_path_buf(), e));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files, unreadable, seen);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            files.push(path);
        }
    }
}

fn io_error(path: &str, e: &std::io::Error) -> RuleError {
    RuleError::Invalid {
        rule: RuleName {
            origin: path.to_string(),
            ..RuleName::default()
        },
        message: format!("cannot read: {e}"),
    }
}
