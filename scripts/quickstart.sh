#!/usr/bin/env bash
# Starts a working local Cordon on this machine: a controller on embedded SQLite (listening on
# 127.0.0.1) and one agent on this host, enrolled automatically. Ctrl-C stops both; run it
# again to pick up where it left off (the data stays in ./cordon-data).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${CORDON_DATA:-$PWD/cordon-data}
PORT=${CORDON_PORT:-7443}
BIN=$PWD/target/release

echo "==> building (release)"
cargo build --release --quiet --bin cordon-controller --bin cordonctl --bin cordon-agent

mkdir -p "$DATA"
if [ ! -f "$DATA/controller/ca.pem" ]; then
  "$BIN/cordon-controller" init --data-dir "$DATA/controller" --listen "127.0.0.1:$PORT" --name 127.0.0.1
fi
export CORDON_ADMIN="$DATA/controller/admin.toml"
# The project's own Sigma rules (rules/), loaded at every start.
if ! grep -q '^\[detection\]' "$DATA/controller/controller.toml"; then
  printf '\n[detection]\nrules_dir = "%s"\n' "$PWD/rules" >>"$DATA/controller/controller.toml"
fi
# ... and its default playbooks (playbooks/). Their notify steps need a [[notify.webhooks]]
# named "soc"; without one they are recorded as failed and the playbooks go on.
if ! grep -q '^\[playbooks\]' "$DATA/controller/controller.toml"; then
  printf '\n[playbooks]\ndir = "%s"\n' "$PWD/playbooks" >>"$DATA/controller/controller.toml"
fi

pids=()
cleanup() {
  echo
  echo "==> stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> starting the controller (log: $DATA/controller.log)"
"$BIN/cordon-controller" serve --data-dir "$DATA/controller" >>"$DATA/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$BIN/cordonctl" agents list >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/cordonctl" agents list >/dev/null || { echo "the controller did not start; see $DATA/controller.log"; exit 1; }

if [ ! -f "$DATA/agent/agent.toml" ]; then
  echo "==> enrolling this host"
  out=$("$BIN/cordonctl" token create --ttl 10m --label quickstart=true)
  token=$(printf '%s\n' "$out" | awk '/^token:/ {print $2}')
  url=$(printf '%s\n' "$out" | awk '/^controller:/ {print $2}')
  fp=$(printf '%s\n' "$out" | awk '/^ca fingerprint:/ {print $3}')
  CORDON_TOKEN="$token" "$BIN/cordon-agent" enroll --controller "$url" --ca-fingerprint "$fp" --state-dir "$DATA/agent"
fi

echo "==> starting the agent (log: $DATA/agent.log)"
"$BIN/cordon-agent" run --state-dir "$DATA/agent" >>"$DATA/agent.log" 2>&1 &
pids+=($!)
agent_id=$(awk -F'"' '/^agent_id/ {print $2}' "$DATA/agent/agent.toml")
for _ in $(seq 1 100); do
  "$BIN/cordonctl" agents show "$agent_id" 2>/dev/null | grep -q 'state: *online' && break
  sleep 0.1
done
"$BIN/cordonctl" agents list

cat <<MSG

Cordon is running: controller https://127.0.0.1:$PORT, agent $agent_id on this host.
Try, in another terminal:
  export CORDON_ADMIN=$CORDON_ADMIN
  $BIN/cordonctl agents show $agent_id
  $BIN/cordonctl ping $agent_id
  $BIN/cordonctl agents inventory $agent_id
  $BIN/cordonctl commands list
  $BIN/cordonctl events query --since 10m     # what the agent has reported
  $BIN/cordonctl events tail                  # follow it live (touch a file in /tmp)
  $BIN/cordonctl rules list                   # the Sigma rules loaded (rules/ in this repo)
  sh -c 'echo aWQK | base64 -d | sh'          # then: $BIN/cordonctl alerts list
  $BIN/cordonctl incidents list
  $BIN/cordonctl playbooks list               # reverse-shell, download-exec, credential-tampering
  $BIN/cordonctl approvals list
  $BIN/cordonctl audit verify
  $BIN/cordonctl token create --ttl 1h        # enrol another host with the command it prints
Press Ctrl-C to stop both.
MSG
wait
