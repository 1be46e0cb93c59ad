#!/usr/bin/env bash
# The one test command: installs everything, runs static checks, then the whole suite against
# real Kafka and Redis (started by the test fixtures unless GENPULSE_KAFKA_BOOTSTRAP /
# GENPULSE_REDIS_URL point at running ones). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh

echo "== ruff"
.venv/bin/ruff check .  # (one command a line: `set -e` ignores a failure left of `&&`)
.venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$status"
