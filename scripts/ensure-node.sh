#!/usr/bin/env bash
# Make sure Node.js 24 or newer is on PATH; upgrade from the npm registry if it is older.
set -euo pipefail
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 24 ]; then
  echo "ensure-node: found Node $(node --version 2>/dev/null || echo none); installing Node 24 from the npm registry" >&2
  npm install -g --force node@24 >&2
  hash -r
fi
echo "ensure-node: $(node --version)" >&2
