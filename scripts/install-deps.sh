#!/usr/bin/env bash
# Installs the Debian 12 packages kiln's build and tests need (scripts/debian-packages.txt), without their
# Recommends. Idempotent: quiet and fast when all are present. Needs root or sudo to install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/debian-packages.txt" | grep -v '^$')

missing=()
for p in "${PACKAGES[@]}"; do
  # A nodejs that bundles npm (NodeSource's) provides it and conflicts with Debian's npm package.
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
