#!/usr/bin/env bash
# Builds the seed corpus for the import_tflite fuzz target in fuzz/corpus/import_tflite
# (git-ignored): every fixture model of at most 32 KiB plus the bad-input corpus of the
# driver's tests (tools/npuc/tests/bad-inputs). Re-runnable; existing corpus entries the
# fuzzer found are kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/fuzz/corpus/import_tflite"
mkdir -p "$dest"
n=0
for f in "$root"/tools/fixtures/models/*.tflite "$root"/tools/npuc/tests/bad-inputs/*.tflite; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le 32768 ] || continue
    cp "$f" "$dest/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
    n=$((n + 1))
done
echo "seeded $dest with $n files"
