#!/usr/bin/env bash
# Makes sure the system programs Parley's tests and demo need are present:
#   redis-server (storage and queues), espeak-ng (real synthesized speech for tests and the demo).
# As root it installs missing ones with apt-get; otherwise it says exactly what to install.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [espeak-ng]=espeak-ng)
missing=()
for program in redis-server espeak-ng; do
  command -v "$program" >/dev/null 2>&1 || missing+=("${package_of[$program]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

cat >&2 <<MSG
Parley needs these system packages, which are missing: ${missing[*]}
Install them, then run the command again:
  Debian/Ubuntu:  sudo apt-get install ${missing[*]}
  macOS:          brew install ${missing[*]}
MSG
exit 1
