#!/usr/bin/env bash
# The full npuc test suite, runnable on a fresh Debian machine with only Rust and Python:
# installs what is missing (LLVM's lit and FileCheck, the oracle venv), then runs every
# Rust test (unit, snapshot, integration, LiteRT oracle) and the lit tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
llvm=/usr/lib/llvm-22/bin
if [ ! -x "$llvm/FileCheck" ] || [ ! -x "$llvm/lit" ]; then
  echo "== installing llvm-22-tools (lit, FileCheck)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends llvm-22-tools >/dev/null
fi

echo "== oracle venv (.venv)"
tools/setup-venv.sh

echo "== schema ids against the official LiteRT schema"
.venv/bin/python tools/check-tflite-schema.py

echo "== cargo test"
cargo test --workspace --locked

echo "== lit tests"
cargo build --locked -p npuc
PATH="$root/target/debug:$llvm:$PATH" "$llvm/lit" -sv lit-tests
