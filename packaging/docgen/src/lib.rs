//! The shell completions and manual pages of Cordon's three programs, generated from their
//! own command-line definitions (so they cannot drift from `--help`) and laid out as the
//! packages install them:
//!
//! ```text
//! OUT/bash/NAME                    -> /usr/share/bash-completion/completions/NAME
//! OUT/zsh/_NAME                    -> /usr/share/zsh/vendor-completions/_NAME
//! OUT/fish/NAME.fish               -> /usr/share/fish/vendor_completions.d/NAME.fish
//! OUT/man/NAME.1, NAME-SUB.1, ...  -> /usr/share/man/man1/ (gzipped by the package build)
//! ```
//!
//! Each program gets a page, and so does every subcommand (`cordonctl-agents-list.1`), as
//! git does, so `man cordonctl-isolate` works.
#![forbid(unsafe_code)]

use clap::Command;
use clap_complete::Shell;
use std::io;
use std::path::{Path, PathBuf};

/// The programs, by name, with their command trees.
pub fn programs() -> Vec<Command> {
    vec![
        cordon_agent::cli::command(),
        cordon_controller::cli::command(),
        cordonctl::cli::command(),
    ]
}

/// Writes completions and manual pages for every program under `out`; returns the files.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for cmd in programs() {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        written.extend(completions(&mut cmd, out)?);
        written.extend(man_pages(&cmd, &out.join("man"))?);
    }
    Ok(written)
}

/// Bash, zsh and fish completions for one program.
fn completions(cmd: &mut Command, out: &Path) -> io::Result<Vec<PathBuf>> {
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out.join(shell.to_string());
        std::fs::create_dir_all(&dir)?;
        let file = clap_complete::generate_to(shell, cmd, &name, &dir)?;
        written.push(installed_name(file, shell, &name)?);
    }
    Ok(written)
}

/// bash-completion loads `completions/NAME` when NAME is first completed: no extension.
fn installed_name(file: PathBuf, shell: Shell, name: &str) -> io::Result<PathBuf> {
    if shell != Shell::Bash {
        return Ok(file);
    }
    let plain = file.with_file_name(name);
    std::fs::rename(&file, &plain)?;
    Ok(plain)
}

/// The page of `cmd` and, recursively, of each of its subcommands: a built command names
/// its subcommands `PARENT-SUB`, and the page is named after that.
fn man_pages(cmd: &Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = vec![clap_mangen::Man::new(cmd.clone()).generate_to(dir)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.extend(man_pages(sub, dir)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_gets_completions_and_pages_for_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        for name in ["cordon-agent", "cordon-controller", "cordonctl"] {
            let bash = std::fs::read_to_string(dir.path().join("bash").join(name)).unwrap();
            assert!(bash.contains(&format!("-o default {name}")), "{bash}");
            assert!(dir.path().join("zsh").join(format!("_{name}")).is_file());
            assert!(
                dir.path()
                    .join("fish")
                    .join(format!("{name}.fish"))
                    .is_file()
            );
            assert!(dir.path().join("man").join(format!("{name}.1")).is_file());
        }
        let isolate = std::fs::read_to_string(dir.path().join("man/cordonctl-isolate.1")).unwrap();
        assert!(
            isolate.contains("Cuts the host off the network"),
            "{isolate}"
        );
        let fish = std::fs::read_to_string(dir.path().join("fish/cordonctl.fish")).unwrap();
        assert!(
            fish.contains("unblock-ip") && fish.contains("Lifts a block"),
            "{fish}"
        );
        assert!(dir.path().join("man/cordonctl-agents-list.1").is_file());
        assert!(dir.path().join("man/cordon-agent-enroll.1").is_file());
    }
}
