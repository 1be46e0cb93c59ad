#!/usr/bin/env bash
# Installs what genpulse needs on a fresh Debian machine, idempotently:
# system packages (redis-server, chromium; Java 17 + Maven if missing), a .venv with the project and
# its dev extras, and the Kafka broker jars (Maven, cached under ~/.cache/genpulse).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v chromium >/dev/null || need_apt+=(chromium)  # browser tests (Playwright drives it)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} with apt"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.genpulse-installed"
want="$(cat pyproject.toml setup.py producers/integrations/_anthropic_fast.c | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi

.venv/bin/python -c "from genpulse.devservices.kafka import ensure_jars; print('bootstrap: kafka jars in', ensure_jars())"
