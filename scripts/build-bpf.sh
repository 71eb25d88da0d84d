#!/usr/bin/env bash
# Builds the agent's eBPF sensors: every agent/bpf/NAME.bpf.c -> agent/bpf/NAME.bpf.o (today
# process and network), CO-RE objects the agent embeds (agent/build.rs never runs clang, so
# building Cordon needs neither clang nor libbpf-dev). Commit each object together with its
# manifest, agent/bpf/NAME.bpf.o.manifest: the source's SHA-256, the exact flags, the versions
# of the tools and headers, and the object's SHA-256.
#
#   scripts/build-bpf.sh          rebuild the object and rewrite the manifest
#   scripts/build-bpf.sh --check  fail when a committed object is stale (CI runs this):
#                                 the source or the flags differ from the manifest, the
#                                 object is not the one it names, or a rebuild differs in
#                                 any byte
#
# Needs clang and libbpf-dev (Debian 12: clang 14, libbpf 1.1). The build is reproducible:
# the compilation directory recorded in the debug info is fixed to ".", and nothing else
# depends on the path or the time, so the same tools give the same bytes anywhere.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../agent/bpf" && pwd)"

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

die() { echo "build-bpf: $*" >&2; exit 1; }

command -v clang >/dev/null 2>&1 || die "clang is missing (apt-get install clang libbpf-dev)"
[ -f /usr/include/bpf/bpf_helpers.h ] || die "the libbpf headers are missing (apt-get install libbpf-dev)"
multiarch="/usr/include/$(uname -m)-linux-gnu"
[ -d "$multiarch" ] || die "$multiarch is missing (the kernel's asm headers: apt-get install linux-libc-dev)"

# -g: BTF, which CO-RE needs. bpfel: the object is little-endian BPF, the same for x86_64 and
# aarch64. -fdebug-compilation-dir=.: no absolute path of this checkout in the debug info.
flags="-O2 -g -Wall -Werror -target bpfel -fdebug-compilation-dir=. -I$multiarch"

package_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Prints the manifest's value for KEY ("key: value" lines).
recorded() {
  sed -n "s/^$1: //p" "$dir/$manifest"
}

# Compiles the source into $1. The flags are deliberately split into words.
compile() {
  # shellcheck disable=SC2086
  (cd "$dir" && clang $flags -c "$source_file" -o "$1")
}

write_manifest() {
  {
    echo "# Written by scripts/build-bpf.sh; checked by its --check (CI) and agent/tests/bpf_object.rs."
    echo "source_sha256: $(sha256 "$dir/$source_file")"
    echo "flags: $flags"
    echo "clang: $(clang --version | head -n 1)"
    echo "libbpf-dev: $(package_version libbpf-dev)"
    echo "linux-libc-dev: $(package_version linux-libc-dev)"
    echo "object_sha256: $(sha256 "$dir/$object")"
  } >"$dir/$manifest"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

stale() {
  echo "build-bpf: agent/bpf/$object is stale: $*" >&2
  echo "build-bpf: run scripts/build-bpf.sh and commit agent/bpf/$object and agent/bpf/$manifest" >&2
  exit 1
}

build() {
  compile "$scratch/$object"
  mv -f "$scratch/$object" "$dir/$object"
  write_manifest
  echo "built agent/bpf/$object ($(stat -c %s "$dir/$object") bytes); commit it with agent/bpf/$manifest"
}

check() {
  [ -f "$dir/$object" ] && [ -f "$dir/$manifest" ] || stale "the object or its manifest is missing"
  [ "$(recorded source_sha256)" = "$(sha256 "$dir/$source_file")" ] ||
    stale "$source_file changed since the object was built"
  [ "$(recorded flags)" = "$flags" ] ||
    stale "the flags changed (recorded: $(recorded flags); now: $flags)"
  [ "$(recorded object_sha256)" = "$(sha256 "$dir/$object")" ] ||
    stale "the object is not the one its manifest names"
  compile "$scratch/$object"
  if ! cmp -s "$scratch/$object" "$dir/$object"; then
    echo "build-bpf: recorded tools: $(recorded clang); libbpf-dev $(recorded libbpf-dev); linux-libc-dev $(recorded linux-libc-dev)" >&2
    echo "build-bpf: tools here:     $(clang --version | head -n 1); libbpf-dev $(package_version libbpf-dev); linux-libc-dev $(package_version linux-libc-dev)" >&2
    stale "a rebuild differs from it (if the tools above differ, rebuild with the recorded ones)"
  fi
  echo "build-bpf: agent/bpf/$object is up to date (a rebuild is byte-identical)"
}

for path in "$dir"/*.bpf.c; do
  source_file=$(basename "$path")
  object=${source_file%.c}.o
  manifest=$object.manifest
  "$mode"
done
