#!/usr/bin/env bash
# Installs the Debian packages edgeproxy needs to build, run and test, when they are missing. Run as root.
# Every dependency is a Debian package (see DESIGN.md); nothing is downloaded any other way.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libh2o-evloop-dev libssl-dev libyaml-dev libmbedtls-dev liblmdb-dev libjansson-dev liblua5.4-dev openssl ca-certificates)
test_pkgs=(libcmocka-dev curl nghttp2-client clang libclang-rt-14-dev e2fsprogs mount util-linux) # the last three: the cache disk test
want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")
command -v node >/dev/null 2>&1 || want+=(nodejs)
# npm installs the JS test clients (tests/e2e/package.json); Debian's npm package when node came without it
[ "${1:-}" = "--test" ] && ! command -v npm >/dev/null 2>&1 && want+=(npm)

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
