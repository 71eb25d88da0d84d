#!/usr/bin/env bash
# The dependency audit, with cargo-deny and the policy in deny.toml: licenses, banned duplicate
# versions and wildcards, sources (crates.io only), and the RustSec advisories. Installs
# cargo-deny from crates.io when it is missing.
#
# The advisory database is a git repository on GitHub. Where it cannot be fetched (CI reaches
# only the package registries) the advisories are checked against the copy cargo-deny keeps
# (~/.cargo/advisory-dbs), saying how old it is, or, with no copy, skipped with a loud line.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny@0.20.2

cargo deny check licenses bans sources

# (Reachability is asked of git itself: with a cached copy, cargo-deny goes on quietly when
# its fetch fails.)
if timeout 60 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny check advisories
  exit 0
fi
# (No copy on a fresh machine: the directory is missing, which must not end the script.)
dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
cached=""
if [ -d "$dbs" ]; then
  cached=$(find "$dbs" -mindepth 1 -maxdepth 1 -type d | head -n 1 || true)
fi
if [ -n "$cached" ] && git -C "$cached" log -1 >/dev/null 2>&1; then
  echo "==> the advisory database cannot be fetched: checking against the cached copy of $(git -C "$cached" log -1 --format=%cs)"
  cargo deny --offline check advisories
else
  echo "!!! advisories SKIPPED: the RustSec advisory database cannot be fetched here and no copy is cached (licenses, bans and sources were checked)"
fi
