#!/usr/bin/env bash
# Builds the cordon-agent, cordon-controller and cordonctl .deb packages from a release build:
#   packaging/build-debs.sh        ->  target/debian/{cordon-agent,cordon-controller,cordonctl}_VERSION_ARCH.deb
# The version is the workspace's; library dependencies come from dpkg-shlibdeps. Each package
# carries its programs' manual pages and bash, zsh and fish completions, generated from their
# command lines by cordon-docgen.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pkg=$root/packaging

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
out=$root/target/debian
# Where cargo puts the binaries (CARGO_TARGET_DIR, if set).
bins=${CARGO_TARGET_DIR:-$root/target}/release

# The agent package ships the eBPF process sensor: the committed agent/bpf/process.bpf.o,
# embedded at build time (no clang needed; scripts/build-bpf.sh rebuilds it).
rm -rf "$out"
mkdir -p "$out"

echo "==> release build"
cargo build --release --bin cordon-agent --bin cordon-controller --bin cordonctl --bin cordon-docgen
docs=$out/docs
"$bins/cordon-docgen" "$docs"

# Library dependencies of the binaries (dpkg-shlibdeps wants a debian/control to exist).
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: cordon\n\nPackage: cordon\nArchitecture: any\n' >"$shl/debian/control"
libdeps=$(cd "$shl" && dpkg-shlibdeps -O "$bins/cordon-agent" "$bins/cordon-controller" "$bins/cordonctl" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')

# A program's manual pages (its own and one per subcommand, gzipped) and its completions.
install_docs() { # install_docs STAGE BIN
    local stage=$1 bin=$2
    install -d -m 0755 "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions" \
        "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
    for page in "$docs/man/$bin.1" "$docs/man/$bin"-*.1; do
        gzip -9n <"$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"
        chmod 0644 "$stage/usr/share/man/man1/$(basename "$page").gz"
    done
    install -m 0644 "$docs/bash/$bin" "$stage/usr/share/bash-completion/completions/$bin"
    install -m 0644 "$docs/zsh/_$bin" "$stage/usr/share/zsh/vendor-completions/_$bin"
    install -m 0644 "$docs/fish/$bin.fish" "$stage/usr/share/fish/vendor_completions.d/$bin.fish"
}

# lintian takes yaml-rust2 (a YAML parser written in Rust, which keeps libyaml's error strings)
# for an embedded copy of libyaml; there is no C library inside.
yaml_override() { # yaml_override STAGE PACKAGE BIN
    install -d -m 0755 "$1/usr/share/lintian/overrides"
    printf '%s\n' "# yaml-rust2, a Rust YAML parser, not libyaml" \
        "$2: embedded-library libyaml [usr/bin/$3]" >"$1/usr/share/lintian/overrides/$2"
    chmod 0644 "$1/usr/share/lintian/overrides/$2"
}

# build NAME SUMMARY EXTRA_DEPENDS RECOMMENDS DESCRIPTION BIN...
# A systemd unit, a config file and maintainer scripts are shipped when packaging/ has them.
build() {
    local name=$1 summary=$2 extra=$3 recommends=$4 description=$5
    shift 5
    local stage=$out/stage/$name
    rm -rf "$stage"
    install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/doc/$name"
    for bin in "$@"; do
        install -m 0755 "$bins/$bin" "$stage/usr/bin/$bin"
        strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$bin"
        install_docs "$stage" "$bin"
    done
    if [ -f "$pkg/systemd/$name.service" ]; then
        install -d -m 0755 "$stage/lib/systemd/system"
        install -m 0644 "$pkg/systemd/$name.service" "$stage/lib/systemd/system/$name.service"
    fi
    local conf=${name#cordon-}
    if [ -f "$pkg/config/$conf.toml" ]; then
        install -d -m 0755 "$stage/etc/cordon"
        install -m 0644 "$pkg/config/$conf.toml" "$stage/etc/cordon/$conf.toml"
        echo "/etc/cordon/$conf.toml" >"$stage/DEBIAN/conffiles"
        chmod 0644 "$stage/DEBIAN/conffiles"
    fi
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
        yaml_override "$stage" cordon-controller cordon-controller
    fi
    if [ "$name" = cordonctl ]; then
        yaml_override "$stage" cordonctl cordonctl
    fi
    if [ "$name" = cordon-agent ]; then
        # Edge policies carry Sigma rules, which the agent compiles with the same parser.
        yaml_override "$stage" cordon-agent cordon-agent
    fi
    for script in postinst prerm postrm; do
        if [ -f "$pkg/deb/$name/$script" ]; then
            install -m 0755 "$pkg/deb/$name/$script" "$stage/DEBIAN/$script"
        fi
    done
    local size
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: The Cordon developers <cordon-dev@example.org>
Installed-Size: $size
Depends: $libdeps${extra:+, $extra}
${recommends:+Recommends: $recommends
}Section: admin
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

build cordon-agent "Cordon EDR agent" "nftables" "" \
" The agent of Cordon, an endpoint detection and response system for Linux. It
 keeps one mutually authenticated gRPC stream to the Cordon controller, reports
 what it sees on the host, and carries out the signed commands the controller
 sends: network isolation, process kill, file quarantine and IP blocking." \
    cordon-agent

build cordon-controller "Cordon EDR controller" "adduser" "cordonctl" \
" The controller of Cordon, an endpoint detection and response system for Linux.
 It enrols agents, keeps their streams, stores what they report in SQLite and
 sends them signed commands. Administer it with cordonctl (package cordonctl)." \
    cordon-controller

build cordonctl "Cordon EDR administration command line" "" "" \
" cordonctl administers a Cordon controller (an endpoint detection and response
 system for Linux) over its mutually authenticated admin API: enrolment tokens,
 agents, containment, events, rules, alerts, incidents, playbooks and the audit
 log. It does not need the controller installed on the same machine." \
    cordonctl

rm -rf "$out/stage"
rm -rf "$docs"
