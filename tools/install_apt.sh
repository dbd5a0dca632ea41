#!/usr/bin/env bash
# Installs the Debian packages kwsc's tests use, when they are missing.
# As root it runs apt-get; otherwise it prints one line naming what to install and carries on
# (tests that need a missing tool are skipped, not failed).
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "kwsc: missing Debian packages (tests needing them are skipped): sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "kwsc: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# gcc-arm-none-eabi needs its recommends (libnewlib) for the bare-metal C library.
apt-get install -y -qq "${missing[@]}" >/dev/null
