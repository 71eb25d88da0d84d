//! The database's files are private to the controller whatever the umask: the database is
//! created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the mode of
//! the database), files left more open by an earlier version are tightened at every open, and
//! a data directory that others can enter is closed to them (0700, as `init` makes it).

use super::StoreError;
use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the database and its `-wal` and `-shm` files.
pub const DB_MODE: u32 = 0o600;
/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;

/// The database file and the two files SQLite keeps beside it in WAL mode.
pub fn db_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Makes `db` (created empty if missing), its `-wal` and `-shm` files (where they exist) and
/// the directory holding them accessible to their owner only.
pub fn make_private(db: &Path) -> Result<(), StoreError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        tighten(dir, DIR_MODE)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .mode(DB_MODE)
        .open(db)
        .map_err(|source| StoreError::CreateFile {
            path: db.display().to_string(),
            source,
        })?;
    for file in db_files(db) {
        if file.exists() {
            tighten(&file, DB_MODE)?;
        }
    }
    Ok(())
}

/// Takes away from `path` every permission beyond `mode` (which only holds owner bits).
fn tighten(path: &Path, mode: u32) -> Result<(), StoreError> {
    let current = fs::metadata(path)
        .map_err(|source| StoreError::Stat {
            path: path.display().to_string(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if current & !mode == 0 {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{:o}", current & mode), "tightening permissions");
    fs::set_permissions(path, Permissions::from_mode(current & mode)).map_err(|source| {
        StoreError::SetMode {
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_is_private_and_open_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        let db = dir.path().join("x.db");
        make_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(dir.path()), 0o700);

        let [_, wal, shm] = db_files(&db);
        for p in [&db, &wal, &shm] {
            fs::write(p, b"").unwrap();
            fs::set_permissions(p, Permissions::from_mode(0o664)).unwrap();
        }
        make_private(&db).unwrap();
        for p in [&db, &wal, &shm] {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
    }
}
