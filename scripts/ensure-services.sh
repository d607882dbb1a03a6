#!/usr/bin/env bash
# Start the local PostgreSQL if it is installed and not answering (the tests of the
# PostgreSQL store use it; the embedded SQLite default needs nothing).
set -uo pipefail
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if [ -d /etc/postgresql ]; then
    echo "ensure-services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
  fi
fi
exit 0
