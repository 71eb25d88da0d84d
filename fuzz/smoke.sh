#!/usr/bin/env bash
# CI's fuzz smoke run: every target for SECONDS (default 30) from its seed corpus, failing on
# the first crash, hang or memory blow-up (the log's end is printed then). The long runs (10
# minutes and more) are fuzz/run.sh TARGET SECONDS, by hand.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in sigma_rule playbook csr config_files spool_segment agent_state utmp dpkg_status network_records fanotify_events edge_policy proc_syscall nft_listing agent_message agent_stream admin_request enrol_request; do
  echo "==> fuzz $target for ${secs}s"
  if ! ./run.sh "$target" "$secs" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $target FAILED"
    exit 1
  fi
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
done
