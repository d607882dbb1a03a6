#!/usr/bin/env bash
# The Python SDK's tests use Debian's python3 and Debian's packages of what they need; install
# the missing ones from Debian (never from a Python registry, which these machines do not reach).
# pytest-xdist runs the tests in two processes: most of a test's time is a foreman or worker
# starting, which leaves the other core idle.
set -uo pipefail
PACKAGES=(python3 python3-websockets python3-pytest python3-pytest-asyncio python3-venv python3-setuptools python3-wheel python3-build python3-pip python3-mypy python3-jsonschema python3-pytest-xdist)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "ensure-python: installing Debian's ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null 2>&1; } \
    || echo "ensure-python: could not install ${missing[*]}; the Python tests will say so" >&2
else
  echo "ensure-python: missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) to run the Python tests" >&2
fi
exit 0
