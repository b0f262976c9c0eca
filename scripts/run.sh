#!/usr/bin/env bash
# One command to try edgeproxy on a fresh Debian 12 machine (as root): installs what is missing, builds, starts the demo
# origin and runs edgeproxy in the foreground with conf/edge.yaml. Then: curl -k https://localhost:8443/
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/edgeproxy -t -c conf/edge.yaml

node examples/demo-origin.mjs &
origin=$!
trap 'kill $origin 2>/dev/null || true' EXIT
echo "edgeproxy: try  curl -k https://localhost:8443/  curl -k https://localhost:8443/api/hello  curl -k https://localhost:8443/hello/you  (Ctrl-C stops)"
./build/edgeproxy -c conf/edge.yaml
