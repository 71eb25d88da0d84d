#!/usr/bin/env bash
# Starts a working local Cordon on this machine: a controller on embedded SQLite (listening on
# 127.0.0.1) with Cordon's Sigma rules and default playbooks, and one agent on this host,
# enrolled automatically. Ctrl-C (SIGINT) or SIGTERM stops both; run it again to pick up where
# it left off (the data stays in ./cordon-data).
#
# Run as root on Debian it installs the system packages it needs when they are missing
# (nftables, for containment); without root it names them and starts what works.
#
# Environment: CORDON_DATA (./cordon-data), CORDON_PORT (7443), CORDON_RULES_DIR (rules/),
# CORDON_PLAYBOOKS_DIR (playbooks/), and CORDON_BIN: a directory holding cordon-controller,
# cordonctl and cordon-agent to use instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

DATA=${CORDON_DATA:-$PWD/cordon-data}
PORT=${CORDON_PORT:-7443}
RULES=${CORDON_RULES_DIR:-$PWD/rules}
PLAYBOOKS=${CORDON_PLAYBOOKS_DIR:-$PWD/playbooks}
for dir in "$RULES" "$PLAYBOOKS"; do
  [ -d "$dir" ] || { echo "quickstart: $dir is not a directory" >&2; exit 1; }
done
RULES=$(cd "$RULES" && pwd)
PLAYBOOKS=$(cd "$PLAYBOOKS" && pwd)
case "$RULES$PLAYBOOKS" in
  *'"'* | *'\'*) echo "quickstart: the rules and playbooks paths may not contain \" or \\" >&2; exit 1 ;;
esac

# Sets KEY = "VALUE" (VALUE without " or \) in [SECTION] of FILE, whatever is there:
# replaces the key, adds it to the section, or adds the section. The rest stays as it was.
set_toml_string() {
  local file=$1 tmp
  tmp=$(mktemp "$file.XXXXXX")
  SECTION="[$2]" KEY=$3 VALUE=$4 awk '
    BEGIN { want = ENVIRON["SECTION"]; key = ENVIRON["KEY"]; line = key " = \"" ENVIRON["VALUE"] "\"" }
    /^[ \t]*\[/ {
      h = $0; sub(/#.*/, "", h); gsub(/[ \t]/, "", h)
      inside = (h == want); print
      if (inside && !seen) { print line; seen = 1 }
      next
    }
    inside && $0 ~ ("^[ \t]*" key "[ \t]*=") { next }
    { print }
    END { if (!seen) { print ""; print want; print line } }
  ' "$file" >"$tmp"
  chmod --reference="$file" "$tmp"
  mv -f "$tmp" "$file"
}

need_packages "network containment: isolate, block-ip" nft:nftables
if [ "$(id -u)" -ne 0 ]; then
  echo "!!! not root: the agent will run without its process sensor (eBPF needs root) and" >&2
  echo "!!!   without containment; run this as root for the full picture" >&2
fi

if [ -n "${CORDON_BIN:-}" ]; then
  BIN=$(cd "$CORDON_BIN" && pwd)
  echo "==> using the binaries in $BIN"
else
  need_packages "building Cordon (a C compiler and linker)" cc:gcc
  echo "==> building (release)"
  cargo build --release --quiet --bin cordon-controller --bin cordonctl --bin cordon-agent
  BIN=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
fi

mkdir -p "$DATA"
if [ ! -f "$DATA/controller/ca.pem" ]; then
  "$BIN/cordon-controller" init --data-dir "$DATA/controller" --listen "127.0.0.1:$PORT" --name 127.0.0.1
fi
export CORDON_ADMIN="$DATA/controller/admin.toml"
# The project's Sigma rules and default playbooks, applied at every start. Their notify steps
# need a [[notify.webhooks]] named "soc"; without one they are recorded as failed and the
# playbooks go on.
config="$DATA/controller/controller.toml"
set_toml_string "$config" detection rules_dir "$RULES"
set_toml_string "$config" playbooks dir "$PLAYBOOKS"
"$BIN/cordon-controller" validate-config --data-dir "$DATA/controller" >/dev/null

pids=()
stopped=
cleanup() {
  [ -n "$stopped" ] && return 0
  stopped=1
  echo
  echo "==> stopping"
  for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

echo "==> starting the controller (log: $DATA/controller.log)"
"$BIN/cordon-controller" serve --data-dir "$DATA/controller" >>"$DATA/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  "$BIN/cordonctl" agents list >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/cordonctl" agents list >/dev/null || { echo "the controller did not start; see $DATA/controller.log"; exit 1; }
rules=$("$BIN/cordonctl" rules list | grep -c ' enabled ' || true)
echo "==> $rules rules enabled (from $RULES); playbooks (from $PLAYBOOKS):"
"$BIN/cordonctl" playbooks list

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
  $BIN/cordonctl rules list                   # the Sigma rules loaded ($RULES)
  sh -c 'echo aWQK | base64 -d | sh'          # then: $BIN/cordonctl alerts list
  $BIN/cordonctl incidents list
  $BIN/cordonctl playbooks list               # reverse-shell, download-exec, suspicious-exec, credential-tampering
  $BIN/cordonctl approvals list
  $BIN/cordonctl audit verify
  $BIN/cordonctl token create --ttl 1h        # enrol another host with the command it prints
Web console: https://127.0.0.1:$((PORT + 1)) (its CA: $DATA/controller/ca.pem); sign in as admin
after: $BIN/cordonctl users set-password admin   # reads the password from standard input
Press Ctrl-C to stop both.
MSG
wait
