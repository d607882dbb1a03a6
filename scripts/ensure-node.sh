#!/usr/bin/env bash
# Make sure Node.js 24 or newer runs this project. When the node on PATH is older (or missing),
# Node 24 is installed from the npm registry into this checkout's .node/ folder (git-ignored),
# which scripts/node-path.sh puts first on PATH for the project's scripts; the machine's own
# node is left as it is. `--global` (or CROWDCOMPUTE_NODE_GLOBAL=1) replaces the machine's node
# instead, with `npm install -g node@24`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
local_bin="$root/.node/node_modules/.bin"
global=${CROWDCOMPUTE_NODE_GLOBAL:-0}
for arg in "$@"; do
  case "$arg" in
    --global) global=1 ;;
    -h|--help)
      echo "usage: bash scripts/ensure-node.sh [--global]"
      echo "  installs Node 24 into $root/.node when the node on PATH is older than 24;"
      echo "  --global (or CROWDCOMPUTE_NODE_GLOBAL=1) replaces the machine's node instead (npm install -g node@24)"
      exit 0 ;;
    *) echo "ensure-node: unknown option $arg (bash scripts/ensure-node.sh --help)" >&2; exit 2 ;;
  esac
done

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v npm >/dev/null; then
  echo "ensure-node: npm is not on PATH; install Node.js with npm (any version) first, then run this again" >&2
  exit 1
fi

if [ "$global" = 1 ]; then
  if [ "$(major node)" -lt 24 ]; then
    echo "ensure-node: found Node $(node --version 2>/dev/null || echo none); replacing the machine's node with Node 24 (npm install -g node@24)" >&2
    npm install -g --force --no-audit --no-fund node@24 >&2
    hash -r
  fi
  echo "ensure-node: $(node --version) ($(command -v node))" >&2
  exit 0
fi

if [ -x "$local_bin/node" ] && [ "$(major "$local_bin/node")" -ge 24 ]; then
  echo "ensure-node: $("$local_bin/node" --version) (.node/, the machine's node is $(node --version 2>/dev/null || echo none))" >&2
  exit 0
fi
if [ "$(major node)" -ge 24 ]; then
  echo "ensure-node: $(node --version) ($(command -v node))" >&2
  exit 0
fi
echo "ensure-node: found Node $(node --version 2>/dev/null || echo none); installing Node 24 from the npm registry into .node/ (the machine's node stays; --global replaces it instead)" >&2
npm install --prefix "$root/.node" --no-audit --no-fund --no-save --loglevel=error node@24 >&2
if [ "$(major "$local_bin/node")" -lt 24 ]; then
  echo "ensure-node: the install left no Node 24 at $local_bin/node; remove $root/.node and run this again, or install Node 24 yourself" >&2
  exit 1
fi
echo "ensure-node: $("$local_bin/node" --version) in .node/; the project's scripts put it first on PATH (scripts/node-path.sh)" >&2
