#!/usr/bin/env bash
# Installs the reference peer, ONNX Runtime 1.30 CPU for Node.js, into DIR (default build/ort). Idempotent.
# --ignore-scripts: the package's install step downloads extra files, which cannot be fetched here; the CPU
# library ships inside the package.
set -euo pipefail
dir=${1:-build/ort}
if [[ -f "$dir/node_modules/onnxruntime-node/package.json" ]]; then exit 0; fi
command -v npm >/dev/null || { echo "install-ort: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "install-ort: npm install onnxruntime-node@1.30.0 into $dir"
npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error onnxruntime-node@1.30.0 >/dev/null
