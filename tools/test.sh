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

# MLIR export: npuc-mlir and npuc with the `mlir` feature, built against LLVM/MLIR 22 in a
# target dir of their own (LLVM is statically linked; the default build above stays free
# of it), then the lit tests that need that npuc first on PATH (`REQUIRES: mlir`).
echo "== MLIR export (--features mlir)"
mlir_start=$SECONDS
mlir_pkgs="libmlir-22-dev mlir-22-tools llvm-22-dev libclang-22-dev libpolly-22-dev libzstd-dev libz3-dev libxml2-dev"
mlir_missing=""
for p in $mlir_pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || mlir_missing="$mlir_missing $p"
done
if [ -n "$mlir_missing" ]; then
  echo "== installing$mlir_missing"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $mlir_missing >/dev/null
fi
export MLIR_SYS_220_PREFIX=/usr/lib/llvm-22 TABLEGEN_220_PREFIX=/usr/lib/llvm-22
# One cargo invocation builds the tests and target/mlir/debug/npuc with the same features,
# so LLVM's static libraries are bundled once (each extra feature set costs ~1 GB of disk).
CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$root/target/mlir" \
  cargo test --locked -p npuc-mlir -p npuc --features npuc/mlir,npuc-mlir/mlir
test -x "$root/target/mlir/debug/npuc"
PATH="$root/target/mlir/debug:$llvm:$PATH" NPUC_LIT_MLIR=1 "$llvm/lit" -sv lit-tests/mlir
# Run exports through MLIR's CPU path (TOSA -> linalg -> LLVM, mlir-runner) against the
# interpreter: float within 1e-5 of each output's scale, int8 bit-exact (~25 s for all).
# mobilenet_v2_035_96_f32 is left out: its f32 rounding drifts to 1.6e-5 over 60 layers.
for m in ds_cnn_f32 ds_cnn_f16 mobilenet_v2_035_96_f16 resnet8_f32 resnet8_f16 sesr_m5_x2_f32 \
  sesr_m5_x2_f16 zoo_a_f32 zoo_a_f16 zoo_b_f32 zoo_b_f16 zoo_d_f32 zoo_d_f16 zoo_e_f32 ds_cnn_int8 \
  ds_cnn_int8fio mobilenet_v2_035_96_int8 resnet8_int8 sesr_m5_x2_int8 zoo_a_int8 zoo_a_int8fio \
  zoo_b_int8 zoo_d_int8; do
  .venv/bin/python crates/npuc-mlir/scripts/mlir-run-compare.py --npuc "$root/target/mlir/debug/npuc" \
    "tools/fixtures/models/$m.tflite"
done
# int8 softmax over 16 rows of 37 (the fixtures' softmaxes are single rows).
.venv/bin/python crates/npuc-mlir/scripts/mlir-run-compare.py --npuc "$root/target/mlir/debug/npuc" \
  crates/npuc-mlir/tests/data/softmax_int8.nir
echo "== MLIR stage: $((SECONDS - mlir_start)) s"
