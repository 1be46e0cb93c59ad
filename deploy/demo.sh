#!/usr/bin/env bash
# The demo command: installs everything and brings up local Kafka (KRaft) and Redis.
# (Worker, API, dashboard and synthetic traffic join here as they land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
.venv/bin/genpulse dev up
.venv/bin/genpulse dev status
echo "Stop everything with: .venv/bin/genpulse dev down"
