//! The `--help` tree: every subcommand and every flag says what it is, in words of its own.

use super::*;
use std::collections::HashSet;

/// Every subcommand below `cmd` with its path ("cordonctl agents list").
fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let p = format!("{path} {}", sub.get_name());
        out.push((p.clone(), sub.clone()));
        walk(sub, p, out);
    }
}

fn tree() -> Vec<(String, clap::Command)> {
    let mut root = command();
    root.build();
    let mut all = vec![("cordonctl".to_string(), root.clone())];
    walk(&root, "cordonctl".into(), &mut all);
    all
}

#[test]
fn every_subcommand_and_argument_has_help_of_its_own() {
    for (path, cmd) in tree() {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert!(!about.is_empty(), "{path} has no help");
        assert!(!about.contains("every host action"), "{path}: {about}");
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!help.is_empty(), "{path}: argument {id} has no help");
        }
    }
}

#[test]
fn sibling_subcommands_never_share_a_description() {
    for (path, cmd) in tree() {
        let mut seen = HashSet::new();
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(seen.insert(about.clone()), "{path}: {about:?} twice");
        }
    }
}

#[test]
fn unblock_ip_says_what_it_does() {
    let root = command();
    let unblock = root.find_subcommand("unblock-ip").expect("unblock-ip");
    let about = unblock.get_about().expect("about").to_string();
    assert!(about.starts_with("Lifts a block"), "{about}");
}

#[test]
fn the_definition_is_consistent() {
    command().debug_assert();
}
