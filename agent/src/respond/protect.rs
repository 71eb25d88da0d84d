//! What the responders must not touch, known by file identity (device and inode) rather than
//! by a name or a path string anyone can imitate: protected executables for kill (a copy of
//! sleep named `sshd` is not sshd), protected files for quarantine (the agent's own files, the
//! libraries it runs on, the tools it needs, the host's critical files). Each protected path
//! is resolved once at start and again at every check, so a binary replaced by an upgrade is
//! known by both its old inode (which a running process still holds) and its new one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A file's identity on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of_stat(st: &rustix::fs::Stat) -> Self {
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    /// The identity of what `path` names, following symlinks (so `/proc/PID/exe` gives the
    /// executable the process runs); None if it cannot be read.
    pub fn of_path(path: &Path) -> Option<Self> {
        rustix::fs::stat(path).ok().map(|st| Self::of_stat(&st))
    }
}

/// A set of protected paths, each known by the identities it has had since the agent started.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    paths: Vec<PathBuf>,
    at_start: Vec<(PathBuf, FileId)>,
}

impl Protected {
    /// Protects `paths` (missing ones are fine: they may appear later).
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let at_start = resolve(&paths);
        Self { paths, at_start }
    }

    /// The protected path whose file is `id`, now or when the agent started.
    pub fn matching(&self, id: FileId) -> Option<PathBuf> {
        self.at_start
            .iter()
            .cloned()
            .chain(resolve(&self.paths))
            .find(|(_, known)| *known == id)
            .map(|(path, _)| path)
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Protects `paths` from now on (a reloaded configuration): a path this set already held
    /// keeps the identity it had when the agent started, a new one is resolved now.
    pub fn reloaded(&self, paths: Vec<PathBuf>) -> Self {
        let mut at_start: Vec<(PathBuf, FileId)> = self
            .at_start
            .iter()
            .filter(|(p, _)| paths.contains(p))
            .cloned()
            .collect();
        let kept: Vec<PathBuf> = at_start.iter().map(|(p, _)| p.clone()).collect();
        let added: Vec<PathBuf> = paths
            .iter()
            .filter(|p| !kept.contains(p))
            .cloned()
            .collect();
        at_start.extend(resolve(&added));
        Self { paths, at_start }
    }
}

fn resolve(paths: &[PathBuf]) -> Vec<(PathBuf, FileId)> {
    paths
        .iter()
        .filter_map(|p| FileId::of_path(p).map(|id| (p.clone(), id)))
        .collect()
}

/// The files a process has mapped, from its `/proc/PID/maps` text: its executable, the
/// dynamic loader, libc and every other library it runs on.
pub fn mapped_files(maps: &str) -> Vec<PathBuf> {
    let found: BTreeSet<PathBuf> = maps
        .lines()
        // address perms offset dev inode path; the path may hold spaces.
        .filter_map(|l| l.splitn(6, ' ').nth(5))
        .map(|p| p.trim_start())
        .filter(|p| p.starts_with('/'))
        .map(|p| PathBuf::from(p.strip_suffix(" (deleted)").unwrap_or(p)))
        .collect();
    found.into_iter().collect()
}

/// Where `program` is found on the search path `path_var` (as `PATH` lists it).
pub fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    path_var
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_not_the_protected_file_but_the_file_under_another_name_is() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("sshd");
        std::fs::write(&real, b"real").unwrap();
        let p = Protected::new(vec![real.clone(), tmp.path().join("missing")]);
        let copy = tmp.path().join("copy/sshd");
        std::fs::create_dir(tmp.path().join("copy")).unwrap();
        std::fs::copy(&real, &copy).unwrap();
        assert_eq!(p.matching(FileId::of_path(&copy).unwrap()), None);
        let link = tmp.path().join("other-name");
        std::fs::hard_link(&real, &link).unwrap();
        assert_eq!(
            p.matching(FileId::of_path(&link).unwrap()),
            Some(real.clone())
        );
        // Replaced (as an upgrade does): the old file, still held open, and the new one.
        let old = FileId::of_path(&real).unwrap();
        std::fs::remove_file(&real).unwrap();
        std::fs::write(&real, b"new").unwrap();
        assert_eq!(p.matching(old), Some(real.clone()));
        assert_eq!(p.matching(FileId::of_path(&real).unwrap()), Some(real));
    }

    #[test]
    fn a_reloaded_set_keeps_the_start_identity_of_paths_it_still_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let [kept, dropped, added] = ["kept", "dropped", "added"].map(|n| tmp.path().join(n));
        for f in [&kept, &dropped, &added] {
            std::fs::write(f, n_bytes(f)).unwrap();
        }
        let p = Protected::new(vec![kept.clone(), dropped.clone()]);
        let old = FileId::of_path(&kept).unwrap();
        let dropped_id = FileId::of_path(&dropped).unwrap();
        std::fs::remove_file(&kept).unwrap();
        std::fs::write(&kept, b"upgraded").unwrap();
        let r = p.reloaded(vec![kept.clone(), added.clone()]);
        assert_eq!(r.matching(old), Some(kept.clone()));
        assert_eq!(r.matching(FileId::of_path(&kept).unwrap()), Some(kept));
        assert_eq!(r.matching(FileId::of_path(&added).unwrap()), Some(added));
        assert_eq!(r.matching(dropped_id), None);
    }

    fn n_bytes(p: &Path) -> Vec<u8> {
        p.display().to_string().into_bytes()
    }

    #[test]
    fn mapped_files_are_read_from_maps() {
        let maps = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1234  /usr/bin/cordon-agent
7f0000000000-7f0000001000 r-xp 00000000 fd:01 99    /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000002000-7f0000003000 r--p 00000000 fd:01 98    /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f0000004000-7f0000005000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
7f0000006000-7f0000007000 r--p 00000000 fd:01 97    /opt/with space/lib.so (deleted)
";
        let files = mapped_files(maps);
        assert_eq!(
            files,
            [
                "/opt/with space/lib.so",
                "/usr/bin/cordon-agent",
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ]
            .map(PathBuf::from)
        );
        let own = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            mapped_files(&own)
                .iter()
                .any(|p| p.to_string_lossy().contains("libc"))
        );
    }
}
