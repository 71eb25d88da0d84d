# Sourced by scripts/quickstart.sh and scripts/test.sh: installs the Debian packages a script
# needs when they are missing. As root, with apt-get, it installs them (one `apt-get update`
# first); otherwise it names exactly what to install and why, and the caller goes on with
# what works.
#
#   need_packages PURPOSE COMMAND:PACKAGE...
#   e.g. need_packages "network containment (isolate, block-ip)" nft:nftables
#
# COMMAND is looked up on PATH and in /usr/sbin and /sbin (not on a normal user's PATH); a
# COMMAND starting with / is a file that must exist instead.

# Whether COMMAND (or the file, for a path) is there.
have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

need_packages() {
  local what=$1 pair missing=() seen=" "
  shift
  for pair in "$@"; do
    if ! have "${pair%%:*}" && [[ "$seen" != *" ${pair#*:} "* ]]; then
      missing+=("${pair#*:}")
      seen+="${pair#*:} "
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${missing[*]} (for $what)"
    if [ -z "${CORDON_APT_UPDATED:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      CORDON_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    return 0
  fi
  echo "!!! missing for $what: ${missing[*]}" >&2
  echo "!!!   install as root: apt-get install ${missing[*]}" >&2
  echo "!!!   going on without: $what will not work" >&2
}
