#!/usr/bin/env bash
# Builds, lints, installs and exercises the .deb packages on this machine, then removes and
# purges them. Needs root (CI is root). Every check prints "ok: ..." or "FAIL: ..."; the last
# line counts them.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = "true" ]; then echo "FAIL: the package test needs root"; exit 1; fi
    echo "*** SKIPPING the package test: it needs root ***"
    exit 0
fi

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/tmp/cordon-pkgtest.out 2>&1; then
        echo "ok: $what"
        passed=$((passed + 1))
    else
        echo "FAIL: $what"
        sed 's/^/    /' /tmp/cordon-pkgtest.out
        failed=$((failed + 1))
    fi
}
mode_owner() { # mode_owner PATH MODE OWNER:GROUP
    [ "$(stat -c '%a %U:%G' "$1")" = "$2 $3" ] || { stat -c '%n: %a %U:%G' "$1"; return 1; }
}
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    dpkg --purge cordon-agent cordon-controller cordonctl >/dev/null 2>&1 || true
}
trap cleanup EXIT

command -v lintian >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian; }

packaging/build-debs.sh || { echo "FAIL: building the packages"; exit 1; }
agent_deb=$(ls target/debian/cordon-agent_*.deb)
ctl_deb=$(ls target/debian/cordon-controller_*.deb)
cli_deb=$(ls target/debian/cordonctl_*.deb)

check "lintian reports no errors" lintian --fail-on error --tag-display-limit 0 "$agent_deb" "$ctl_deb" "$cli_deb"
check "lintian finds no program without a manual page" sh -c \
    "! lintian --tag-display-limit 0 '$agent_deb' '$ctl_deb' '$cli_deb' | grep -E 'no-manual-page|binary-without-manpage'"
check "cordonctl is a package of its own; the controller recommends it" sh -c \
    "dpkg-deb -c '$cli_deb' | grep -q ' ./usr/bin/cordonctl\$' && ! dpkg-deb -c '$ctl_deb' | grep -q 'usr/bin/cordonctl' &&
     dpkg-deb -f '$ctl_deb' Recommends | grep -qw cordonctl && ! dpkg-deb -c '$cli_deb' | grep -q 'systemd'"
check "the agent package depends on nftables" sh -c "dpkg-deb -f '$agent_deb' Depends | grep -q nftables"
check "versions come from the workspace" sh -c \
    "[ \"\$(dpkg-deb -f '$agent_deb' Version)\" = \"\$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = \"\(.*\)\"/\1/p' Cargo.toml)\" ]"

dpkg --purge cordon-agent cordon-controller cordonctl >/dev/null 2>&1 || true
check "dpkg -i installs the three packages" dpkg -i "$agent_deb" "$ctl_deb" "$cli_deb"

check "binaries are root-owned and executable" sh -c \
    "for b in cordon-agent cordon-controller cordonctl; do [ \"\$(stat -c '%a %U' /usr/bin/\$b)\" = '755 root' ] || exit 1; done"
check "config files are conffiles, 0644 root" sh -c \
    "dpkg-query -W -f='\${Conffiles}' cordon-agent | grep -q /etc/cordon/agent.toml &&
     dpkg-query -W -f='\${Conffiles}' cordon-controller | grep -q /etc/cordon/controller.toml &&
     [ \"\$(stat -c '%a %U' /etc/cordon/agent.toml /etc/cordon/controller.toml | sort -u)\" = '644 root' ]"
for bin in cordon-agent cordon-controller cordonctl; do
    check "$bin has its manual page" sh -c "zcat /usr/share/man/man1/$bin.1.gz | grep -q '^\\.TH $bin 1'"
    check "$bin has bash, zsh and fish completions" sh -c \
        "bash -c 'source /usr/share/bash-completion/completions/$bin && complete -p $bin' &&
         grep -q '#compdef $bin' /usr/share/zsh/vendor-completions/_$bin &&
         grep -q 'complete -c $bin' /usr/share/fish/vendor_completions.d/$bin.fish"
done
check "every cordonctl subcommand has a page" sh -c \
    "zcat /usr/share/man/man1/cordonctl-unblock-ip.1.gz | grep -q 'Lifts a block' &&
     zcat /usr/share/man/man1/cordonctl-events-query.1.gz | grep -q 'JSON lines'"
check "units are installed" test -f /lib/systemd/system/cordon-agent.service -a -f /lib/systemd/system/cordon-controller.service
check "the controller has its own system user" sh -c \
    "uid=\$(id -u cordon-controller) && [ \"\$uid\" -lt 1000 ] && [ \"\$(getent passwd cordon-controller | cut -d: -f7)\" = /usr/sbin/nologin ]"
check "the agent's state directory is 0700 root" mode_owner /var/lib/cordon-agent 700 root:root
check "the controller's state directory is 0700 cordon-controller" mode_owner /var/lib/cordon-controller 700 cordon-controller:cordon-controller
check "systemd-analyze verify accepts both units" systemd-analyze verify /lib/systemd/system/cordon-agent.service /lib/systemd/system/cordon-controller.service
check "the installed configs validate" sh -c \
    "cordon-agent validate-config --config /etc/cordon/agent.toml && cordon-controller validate-config --config /etc/cordon/controller.toml"
printf 'heartbeat_interval_secs = 0\n' >/tmp/cordon-bad.toml
check "validate-config refuses a bad file, naming the setting" sh -c \
    "out=\$(cordon-agent validate-config --config /tmp/cordon-bad.toml 2>&1) && exit 1; echo \"\$out\"; echo \"\$out\" | grep -q 'cordon-bad.toml.*heartbeat_interval_secs'"

# Run the installed binaries as the units would: the controller as its own user, on loopback.
as_ctl() { runuser -u cordon-controller -- "$@"; }
check "the controller initialises its data on first start (as its user)" \
    as_ctl cordon-controller init --if-missing --data-dir /var/lib/cordon-controller --config /etc/cordon/controller.toml
check "a second start leaves it as it is" sh -c \
    "runuser -u cordon-controller -- cordon-controller init --if-missing --data-dir /var/lib/cordon-controller --config /etc/cordon/controller.toml | grep -q 'already holds'"
check "the CA key is private to the controller user" mode_owner /var/lib/cordon-controller/ca.key 600 cordon-controller:cordon-controller
runuser -u cordon-controller -- cordon-controller serve --data-dir /var/lib/cordon-controller --config /etc/cordon/controller.toml \
    >/tmp/cordon-pkg-controller.log 2>&1 &
pids+=($!)
export CORDON_ADMIN=/var/lib/cordon-controller/admin.toml
check "the installed controller serves" sh -c 'for i in $(seq 1 100); do cordonctl agents list >/dev/null 2>&1 && exit 0; sleep 0.1; done; cat /tmp/cordon-pkg-controller.log; exit 1'

# Non-interactive enrolment: the token from a file.
cordonctl token create --ttl 10m >/tmp/cordon-token.txt 2>&1
awk '/^token:/ {print $2}' /tmp/cordon-token.txt >/tmp/cordon-token
url=$(awk '/^controller:/ {print $2}' /tmp/cordon-token.txt)
fp=$(awk '/^ca fingerprint:/ {print $3}' /tmp/cordon-token.txt)
check "the installed agent enrols with a token file" \
    cordon-agent enroll --controller "$url" --ca-fingerprint "$fp" --token-file /tmp/cordon-token --state-dir /var/lib/cordon-agent
check "the agent key is 0600 root" mode_owner /var/lib/cordon-agent/key.pem 600 root:root
cordon-agent run --state-dir /var/lib/cordon-agent --config /etc/cordon/agent.toml >/tmp/cordon-pkg-agent.log 2>&1 &
pids+=($!)
agent_id=$(awk -F'"' '/^agent_id/ {print $2}' /var/lib/cordon-agent/agent.toml)
check "the installed agent comes online and answers a ping" sh -c \
    "for i in \$(seq 1 100); do cordonctl ping $agent_id --wait 2 >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/cordon-pkg-agent.log; exit 1"
check "the packaged Sigma rules are loaded" sh -c \
    "[ \$(cordonctl rules list | grep -c enabled) -ge 20 ]"
check "the packaged playbooks are loaded" sh -c \
    "[ \$(cordonctl playbooks list | grep -c enabled) -ge 3 ]"
check "the audit log verifies" cordonctl audit verify
check "the installed agent runs the eBPF process sensor" sh -c \
    "for i in \$(seq 1 50); do cordonctl agents show $agent_id | grep -q 'process: ebpf' && exit 0; sleep 0.2; done; cordonctl agents show $agent_id; exit 1"
check "cordonctl --json shows a process event's kind by name" sh -c \
    "for i in \$(seq 1 50); do cordonctl events query --agent $agent_id --kind process --limit 10 --json | grep -Eq '\"kind\":\"(exec|exit)\"' && exit 0; /bin/true; sleep 0.2; done; exit 1"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

before=$(md5sum /var/lib/cordon-agent/agent.toml /var/lib/cordon-controller/ca.pem)
check "reinstalling (an upgrade) keeps enrolment and the CA" sh -c \
    "dpkg -i '$agent_deb' '$ctl_deb' '$cli_deb' >/dev/null && [ \"\$(md5sum /var/lib/cordon-agent/agent.toml /var/lib/cordon-controller/ca.pem)\" = '$before' ]"

check "remove takes the binaries, keeps state and config" sh -c \
    "dpkg -r cordon-agent cordon-controller cordonctl >/dev/null && [ ! -e /usr/bin/cordon-agent ] && [ ! -e /usr/bin/cordonctl ] &&
     [ ! -e /usr/share/man/man1/cordonctl.1.gz ] && [ ! -e /usr/share/bash-completion/completions/cordonctl ] &&
     [ -f /var/lib/cordon-agent/agent.toml ] && [ -f /var/lib/cordon-controller/ca.key ] && [ -f /etc/cordon/agent.toml ]"
check "purge removes state, config and the user" sh -c \
    "dpkg --purge cordon-agent cordon-controller cordonctl >/dev/null && [ ! -e /var/lib/cordon-agent ] && [ ! -e /var/lib/cordon-controller ] &&
     [ ! -e /etc/cordon/agent.toml ] && [ ! -e /etc/cordon/controller.toml ] && ! getent passwd cordon-controller"

for unit in cordon-agent cordon-controller; do
    echo "systemd-analyze security $unit: $(systemd-analyze security --offline=true packaging/systemd/$unit.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p')"
done
echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
