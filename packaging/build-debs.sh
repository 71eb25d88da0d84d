#!/usr/bin/env bash
# Builds the cordon-agent and cordon-controller .deb packages from a release build:
#   packaging/build-debs.sh        ->  target/debian/cordon-{agent,controller}_VERSION_ARCH.deb
# The version is the workspace's; library dependencies come from dpkg-shlibdeps.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkg=$root/packaging

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
out=$root/target/debian

# The agent package ships the eBPF process sensor: the committed agent/bpf/process.bpf.o,
# embedded at build time (no clang needed; scripts/build-bpf.sh rebuilds it).
rm -rf "$out"
mkdir -p "$out"

echo "==> release build"
cargo build --release --bin cordon-agent --bin cordon-controller --bin cordonctl

# Library dependencies of the binaries (dpkg-shlibdeps wants a debian/control to exist).
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: cordon\n\nPackage: cordon\nArchitecture: any\n' >"$shl/debian/control"
libdeps=$(cd "$shl" && dpkg-shlibdeps -O "$root/target/release/cordon-agent" "$root/target/release/cordon-controller" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')

# build NAME SUMMARY EXTRA_DEPENDS DESCRIPTION BIN... -- UNIT CONFIG
build() {
    local name=$1 summary=$2 extra=$3 description=$4
    shift 4
    local stage=$out/stage/$name
    rm -rf "$stage"
    install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/cordon" \
        "$stage/usr/share/doc/$name"
    for bin in "$@"; do
        install -m 0755 "target/release/$bin" "$stage/usr/bin/$bin"
        strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$bin"
    done
    install -m 0644 "$pkg/systemd/$name.service" "$stage/lib/systemd/system/$name.service"
    local conf=${name#cordon-}
    install -m 0644 "$pkg/config/$conf.toml" "$stage/etc/cordon/$conf.toml"
    install -m 0644 "$pkg/copyright" "$stage/usr/share/doc/$name/copyright"
    install -m 0644 README.md "$stage/usr/share/doc/$name/README.md"
    {
        echo "$name ($version) unstable; urgency=medium"
        echo
        echo "  * Release $version."
        echo
        echo " -- The Cordon developers <cordon-dev@example.org>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
    } | gzip -9n >"$stage/usr/share/doc/$name/changelog.gz"
    chmod 0644 "$stage/usr/share/doc/$name/changelog.gz"
    if [ "$name" = cordon-controller ]; then
        # The project's Sigma rules, loaded at start (detection.rules_dir).
        install -d -m 0755 "$stage/usr/share/cordon/rules/linux"
        install -m 0644 rules/linux/*.yml "$stage/usr/share/cordon/rules/linux/"
        # ... and its default playbooks (playbooks.dir).
        install -d -m 0755 "$stage/usr/share/cordon/playbooks"
        install -m 0644 playbooks/*.yml playbooks/README.md "$stage/usr/share/cordon/playbooks/"
        # lintian takes yaml-rust2 (a YAML parser written in Rust, which keeps libyaml's error
        # strings) for an embedded copy of libyaml; there is no C library inside.
        install -d -m 0755 "$stage/usr/share/lintian/overrides"
        printf '%s\n' \
            "# yaml-rust2, a Rust YAML parser, not libyaml" \
            "cordon-controller: embedded-library libyaml [usr/bin/cordon-controller]" \
            "cordon-controller: embedded-library libyaml [usr/bin/cordonctl]" \
            >"$stage/usr/share/lintian/overrides/cordon-controller"
        chmod 0644 "$stage/usr/share/lintian/overrides/cordon-controller"
    fi
    for script in postinst prerm postrm; do
        install -m 0755 "$pkg/deb/$name/$script" "$stage/DEBIAN/$script"
    done
    echo "/etc/cordon/$conf.toml" >"$stage/DEBIAN/conffiles"
    chmod 0644 "$stage/DEBIAN/conffiles"
    local size
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: The Cordon developers <cordon-dev@example.org>
Installed-Size: $size
Depends: $libdeps${extra:+, $extra}
Section: admin
Priority: optional
Homepage: https://example.org/cordon
Description: $summary
$description
CONTROL
    (cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
    chmod 0644 "$stage/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/${name}_${version}_${arch}.deb" >/dev/null
    echo "built $out/${name}_${version}_${arch}.deb"
}

build cordon-agent "Cordon EDR agent" "nftables" \
" The agent of Cordon, an endpoint detection and response system for Linux. It
 keeps one mutually authenticated gRPC stream to the Cordon controller, reports
 what it sees on the host, and carries out the signed commands the controller
 sends: network isolation, process kill, file quarantine and IP blocking." \
    cordon-agent

build cordon-controller "Cordon EDR controller and cordonctl" "adduser" \
" The controller of Cordon, an endpoint detection and response system for Linux.
 It enrols agents, keeps their streams, stores what they report in SQLite and
 sends them signed commands; cordonctl is the administrator's command line." \
    cordon-controller cordonctl

rm -rf "$out/stage"
