//! Processes a test starts and owns, for kill tests: copies of sleep under paths the test
//! chooses (so a protected executable can be one only the test runs). Tests kill only these.

use std::path::Path;
use std::process::{Child, Command};

/// A copy of sleep at `path`, started for 300 s.
pub fn sleep_as(path: &Path) -> Child {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy("/usr/bin/sleep", path).unwrap();
    Command::new(path).arg("300").spawn().unwrap()
}

/// Whether `child` ended by SIGKILL (waiting for it is the barrier).
pub fn was_killed(child: &mut Child) -> bool {
    use std::os::unix::process::ExitStatusExt;
    child.wait().unwrap().signal() == Some(9)
}
