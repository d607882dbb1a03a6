#!/usr/bin/env bash
# The Kubernetes manifests' test renders deploy/kustomize with `kubectl kustomize` (offline: no
# cluster); install Debian's kubectl (the kubernetes-client package) when there is none.
# Any kubectl from 1.20 on renders them.
set -uo pipefail
if command -v kubectl >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "ensure-kubectl: installing Debian's kubernetes-client (kubectl)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y kubernetes-client >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y kubernetes-client >/dev/null 2>&1; } \
    || echo "ensure-kubectl: could not install kubernetes-client; the Kubernetes manifests' test will say so" >&2
else
  echo "ensure-kubectl: kubectl is missing; install it (apt-get install -y kubernetes-client) to test the Kubernetes manifests" >&2
fi
exit 0
