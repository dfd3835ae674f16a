#!/usr/bin/env bash
# Proves that the README's two commands work on a machine that starts from nothing: makes a minimal Debian 12 root
# with debootstrap, installs only what the README asks for first (git, make), clones this repository into it and
# runs `make demo` and `make test` inside the chroot, timing each step. Needs root; about 8 minutes on 2 cores with
# a nearby mirror (too slow for CI). A development machine cannot fool it: nothing installed on the host is visible inside the root.
#
#   sudo bash scripts/fresh-machine-test.sh [--keep] [--root DIR] [--ref REF]
#
# --root DIR: where to make the root (default: a new folder under /var/tmp); --keep: leave it afterwards;
# --ref REF: the commit to clone (default: HEAD; uncommitted changes are not part of the test).
#
# The Debian mirror is the one this machine's apt already uses (/etc/apt/sources.list.d/*.sources, else
# /etc/apt/sources.list), read at run time. What a network behind a TLS-inspecting proxy needs is carried in: the
# host's extra CA certificates (/usr/local/share/ca-certificates), the proxy and NODE_EXTRA_CA_CERTS environment,
# and resolv.conf.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
root="" keep=0 ref=HEAD
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --ref) ref="$2"; shift 2 ;;
    *) echo "fresh-machine-test: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "fresh-machine-test: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }

t0=$(date +%s)
timings=()
step() {  # step NAME COMMAND...: runs and times one step
  local name="$1"; shift
  local s; s=$(date +%s)
  echo "==== fresh-machine-test: $name"
  "$@"
  timings+=("$(printf '%-44s %5ds' "$name" $(( $(date +%s) - s )))")
}

mirror() {
  local m=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # deb822: the first "URIs:" of a stanza whose Suites include bookworm (not the security archive).
    m=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {
               if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
    [[ -n "$m" ]] && break
  done
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [[ -n "$m" ]] || { echo "fresh-machine-test: no bookworm mirror found in /etc/apt/sources.list.d or sources.list" >&2; exit 2; }
  echo "$m"
}

command -v debootstrap >/dev/null || step "host: apt-get install debootstrap" \
  bash -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null'

MIRROR=$(mirror)
[[ -n "$root" ]] || root=$(mktemp -d /var/tmp/kiln-fresh.XXXXXX)
mkdir -p "$root"
echo "fresh-machine-test: root $root, mirror $MIRROR, commit $(git -C "$repo" rev-parse --short "$ref")"

mounts=()
cleanup() {
  local rc=$?
  for (( i=${#mounts[@]}-1; i>=0; i-- )); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [[ $keep -eq 0 ]]; then rm -rf --one-file-system "$root"; else echo "fresh-machine-test: kept $root"; fi
  exit $rc
}
trap cleanup EXIT

# minbase: the Essential packages and apt. ca-certificates: to trust the proxy's CA for npm's registry.
log="$root.debootstrap.log"
step "debootstrap --variant=minbase bookworm" \
  bash -c "debootstrap --variant=minbase --include=ca-certificates bookworm '$root' '$MIRROR' >'$log' 2>&1 || { tail -30 '$log' >&2; exit 1; }"
rm -f "$log"

for m in proc sys dev dev/pts; do
  mkdir -p "$root/$m"
  case "$m" in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sys "$root/sys" ;;
    *) mount --bind "/$m" "$root/$m" ;;
  esac
  mounts+=("$root/$m")
done
mkdir -p "$root/dev/shm"
mount -t tmpfs shm "$root/dev/shm"; mounts+=("$root/dev/shm")

# The network as the host sees it: DNS, extra CA certificates, proxy settings.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -rL /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
chroot "$root" update-ca-certificates >/dev/null 2>&1
envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY NODE_EXTRA_CA_CERTS; do
  [[ -n "${!v:-}" ]] && envs+=("$v=${!v}")
done
in_root() { chroot "$root" /usr/bin/env -i "${envs[@]}" bash -c "$1"; }

# What the README asks for before its first command.
step "root: apt-get install git make" in_root 'apt-get update -qq && apt-get install -y -qq --no-install-recommends git make >/dev/null'

# The repository as a user would clone it (committed state only).
step "clone the repository" bash -c "git clone -q --no-hardlinks '$repo' '$root/root/kiln' && git -C '$root/root/kiln' checkout -q '$(git -C "$repo" rev-parse "$ref")'"

step "make demo (installs the packages, builds, runs)" in_root 'cd /root/kiln && make demo'
step "make test" in_root 'cd /root/kiln && make test'
step "scripts/check-deps.sh --self-test" in_root 'cd /root/kiln && bash scripts/check-deps.sh --self-test'

echo "==== fresh-machine-test: passed in $(( $(date +%s) - t0 ))s"
for t in "${timings[@]}"; do echo "  $t"; done
