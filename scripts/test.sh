#!/usr/bin/env bash
# The README's test command, and what CI runs: installs the system packages the tests need
# when they are missing (as root, with apt-get; otherwise it names them), runs
# `cargo test --workspace` (extra arguments go to cargo test; with -p/--package only those
# packages are tested), and ends with the totals and
# one line counting the skipped tests and naming them, also when everything passed.
#
# Run it as root: the namespace, containment and eBPF tests need root and skip without it.
# Under CI=true a missing prerequisite fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

need_packages "building (a C compiler and linker)" cc:gcc
need_packages "the network namespace tests" ip:iproute2
need_packages "the containment tests" nft:nftables
need_packages "the tests that drop root or lock files" setpriv:util-linux flock:util-linux
need_packages "stopping the binaries under test" kill:procps
need_packages "the detection samples" chattr:e2fsprogs
need_packages "the webhook TLS test" /etc/ssl/certs/ca-certificates.crt:ca-certificates
need_packages "the benign-workload test" git:git ssh-keygen:openssh-client python3:python3 \
  dpkg-deb:dpkg tar:tar
# The reverse-shell tests (tests/tests/reverse_shell.rs): nc.traditional has -e (netcat-openbsd
# does not), socat and perl for their shells.
need_packages "the reverse-shell tests" nc.traditional:netcat-traditional socat:socat perl:perl
# `python3 -m venv` needs ensurepip, which Debian ships apart from python3.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip' 2>/dev/null; then
  need_packages "the benign-workload test (python3 -m venv)" /nonexistent/ensurepip:python3-venv
fi

# The PostgreSQL store's tests start a private cluster with the server's own binaries
# (initdb, pg_ctl), which the client package alone does not have.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  need_packages "the PostgreSQL store tests" /nonexistent/initdb:postgresql
fi

need_packages "the console's browser tests" node:nodejs npm:npm chromium:chromium
# The browser driver's packages (playwright-core, axe-core), pinned by package-lock.json,
# from the npm registry; again whenever the lock file changes.
browser=tests/browser
if command -v npm >/dev/null 2>&1 &&
  { [ ! -f "$browser/node_modules/.package-lock.json" ] ||
    ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.cordon-lock"; }; then
  echo "==> npm ci in $browser"
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error &&
    cp package-lock.json node_modules/.cordon-lock) ||
    echo "!!! npm ci failed: the browser tests will skip (and fail under CI=true)" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Tests that skip append "NAME<TAB>REASON" here (crate cordon-skips).
export CORDON_SKIPS_FILE="$work/skips"
: >"$CORDON_SKIPS_FILE"

scope=(--workspace)
for arg in "$@"; do
  case "$arg" in -p | --package | --package=*) scope=() ;; esac
done

status=0
# --no-fail-fast: every failing test binary is reported, not just the first.
cargo test --no-fail-fast ${scope[@]+"${scope[@]}"} "$@" 2>&1 | tee "$work/log" || status=$?
# With pipefail the pipeline's status is cargo's unless tee failed.

echo
if [ -s "$CORDON_SKIPS_FILE" ]; then
  sort -u "$CORDON_SKIPS_FILE" | while IFS=$'\t' read -r name reason; do
    echo "  skipped $name: $reason"
  done
fi
names=$(cut -f1 "$CORDON_SKIPS_FILE" | sort -u)
count=$(printf '%s' "$names" | grep -c . || true)
if [ "$count" -gt 0 ]; then
  echo "skipped: $(printf '%s' "$names" | paste -sd, - | sed 's/,/, /g')"
fi
# The closing line: a skipping test returns early and cargo counts it as passed, so it is
# moved from the passed to the skipped count here (with the ignored ones).
awk -v s="$count" '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p - s, f, i + s }' "$work/log"
exit "$status"
