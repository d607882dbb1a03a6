#!/usr/bin/env bash
# The browser tests drive Debian's Chromium; install it from Debian's packages when missing
# (never a browser downloaded by a test tool).
set -uo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "ensure-chromium: installing Debian's chromium" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1; } \
    || echo "ensure-chromium: could not install chromium; the browser tests will say so" >&2
else
  echo "ensure-chromium: /usr/bin/chromium is missing; install it (apt-get install -y chromium) to run the browser tests" >&2
fi
exit 0
