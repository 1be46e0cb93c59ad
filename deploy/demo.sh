#!/usr/bin/env bash
# The demo command: installs what is missing, brings up local Kafka (KRaft) and Redis, starts
# the worker and the API in the background, sets a demo budget, prints the URLs and a token,
# then runs synthetic traffic in the foreground. Ctrl-C (or the end of the traffic) stops the
# worker and the API; Kafka and Redis keep running until `.venv/bin/genpulse dev down`.
#   DEMO_RATE (events/s, default 200), DEMO_DURATION (s, default 3600), GENPULSE_API_PORT (8000),
#   GENPULSE_KAFKA_PORT (9092), GENPULSE_REDIS_PORT (6379)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
.venv/bin/genpulse dev up --kafka-port "${GENPULSE_KAFKA_PORT:-9092}" \
  --redis-port "${GENPULSE_REDIS_PORT:-6379}"
# shellcheck disable=SC1091
source .genpulse/env
.venv/bin/genpulse topics create  # the worker would too; done first, the API never waits
mkdir -p .genpulse/logs

if [ ! -f .genpulse/demo.env ]; then  # demo tokens, made once and kept out of git
  .venv/bin/python - > .genpulse/demo.env <<'PY'
import secrets
for role in ("READ_TOKENS", "ADMIN_TOKENS", "INGEST_KEYS"):
    print(f"export GENPULSE_API_{role}={secrets.token_urlsafe(24)}")
PY
fi
# shellcheck disable=SC1091
source .genpulse/demo.env
export GENPULSE_API_PORT="${GENPULSE_API_PORT:-8000}"
api="http://127.0.0.1:${GENPULSE_API_PORT}"
if curl -s -o /dev/null "$api/healthz"; then
  echo "port ${GENPULSE_API_PORT} already answers (another demo?); stop it or set GENPULSE_API_PORT" >&2
  exit 1
fi

.venv/bin/genpulse worker --log-level warn > .genpulse/logs/worker.log 2>&1 &
worker_pid=$!
.venv/bin/genpulse api > .genpulse/logs/api.log 2>&1 &
api_pid=$!
trap 'kill "$worker_pid" "$api_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 120); do
  curl -sf "$api/healthz" >/dev/null 2>&1 && break
  kill -0 "$api_pid" 2>/dev/null || { echo "the API exited; see .genpulse/logs/api.log" >&2; exit 1; }
  sleep 0.5
done
curl -sf -X PUT "$api/v1/budgets/global" \
  -H "Authorization: Bearer $GENPULSE_API_ADMIN_TOKENS" -H "Content-Type: application/json" \
  -d '{"daily_budget_usd": "1000.00"}' >/dev/null || echo "(could not set the demo budget)"

cat <<TXT

  Dashboard   $api/dashboard      sign in with the read token below
  API docs    $api/docs
  Prometheus  $api/metrics
  Read token  $GENPULSE_API_READ_TOKENS   (admin and ingest tokens: .genpulse/demo.env)
  Logs        .genpulse/logs/worker.log, .genpulse/logs/api.log

TXT
.venv/bin/genpulse demo traffic --rate "${DEMO_RATE:-200}" --duration "${DEMO_DURATION:-3600}"
