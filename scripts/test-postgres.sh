#!/usr/bin/env bash
# The store and API tests again, on PostgreSQL, when it is reachable: the scale-out database must
# behave as SQLite does. pytest-django creates (and drops) test_<name>; the name is per run, so
# two runs on one server never share a database. Skips with a message when PostgreSQL is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

base="${C4C_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
hostport="${base#*://}"
hostport="${hostport#*@}"
host="${hostport%%:*}"
port="${hostport##*:}"
if ! timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  echo "PostgreSQL is not reachable at $host:$port: skipping the PostgreSQL pass"
  exit 0
fi
echo "PostgreSQL pass: tests/executions -m 'not slow' on $host:$port"
DATABASE_URL="$base/c4c_ci_$$" .venv/bin/pytest tests/executions -m "not slow" -p no:cacheprovider "$@"
# The slow tests of leases, cancel, waits and signals wait on real time, but their
# compare-and-set and their wake-ups must hold here too.
DATABASE_URL="$base/c4c_ci_$$" .venv/bin/pytest tests/executions/test_leases.py \
  tests/executions/test_cancel.py tests/executions/test_waits.py \
  tests/executions/api/test_signals.py -m slow -p no:cacheprovider "$@"
# Schedules: each slot claimed once; two scheduler processes race for slots (slow) on one database.
DATABASE_URL="$base/c4c_ci_$$" .venv/bin/pytest tests/schedules -p no:cacheprovider "$@"
