#!/usr/bin/env bash
# Runs one fuzz target for a time: fuzz/run.sh TARGET [SECONDS] (default 60). Targets:
# sigma_rule, playbook, csr, config_files, spool_segment, agent_state, utmp, dpkg_status,
# network_records, fanotify_events, edge_policy, proc_syscall, nft_listing, agent_message,
# agent_stream, admin_request, enrol_request
# (seeds for proc_syscall and nft_listing: fuzz/regressions/TARGET only; nft_listing's are
# real `nft -j list table` output)
# (fuzz/smoke.sh runs them all briefly).
# The seed corpus is built afresh from the project's own files (Cordon's rules and
# playbooks, the SigmaHQ rules in ../shared when present) plus fuzz/regressions/TARGET,
# the inputs that once broke a parser. Needs the nightly toolchain and cargo-fuzz
# (installed from crates.io when missing).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
secs=${2:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
case "$target" in
  sigma_rule)
    find ../rules ../../shared/sigma/linux -name '*.yml' 2>/dev/null | head -2000 |
      while read -r f; do cp "$f" "$corpus/$(sha256sum "$f" | cut -c1-16)"; done ;;
  playbook)
    cp ../playbooks/*.yml "$corpus/" ;;
  config_files)
    cp ../packaging/config/*.toml "$corpus/" ;;
  dpkg_status)
    # This machine's own status file, when it has one, beside the committed sample.
    cp /var/lib/dpkg/status "$corpus/host-status" 2>/dev/null || true ;;
  spool_segment | agent_state | utmp | network_records | fanotify_events | edge_policy | \
    agent_message | agent_stream | admin_request | enrol_request)
    # Real files, written by the agent's own code (agent/examples/fuzz_seeds/); for utmp,
    # generated records, never this host's; for fanotify_events, encoded events.
    cargo run -q --manifest-path ../Cargo.toml -p cordon-agent --example fuzz_seeds -- \
      "$target" "$corpus" ;;
esac
cp regressions/"$target"/* "$corpus/" 2>/dev/null || true
# -rss_limit_mb: a parser that balloons on a small input is a finding, not a slow run.
cargo +nightly fuzz run "$target" "$corpus" -- \
  -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 -timeout=10 -print_final_stats=1
