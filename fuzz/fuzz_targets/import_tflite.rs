//! Fuzzes the TFLite importer with arbitrary bytes.
//!
//! Invariants checked:
//! - `npuc_tflite::import` never panics, whatever the bytes (it may return an error);
//! - a model it accepts can be printed as text IR without panicking (`npuc print`);
//! - a model it accepts exports to TFLite, and the exported bytes import again, with the
//!   same number of graphs and of ops per graph (import → export → import round trip).
//!
//! Run with `cargo fuzz run import_tflite` (see docs/fuzzing.md).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(module) = npuc_tflite::import(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = npuc_ir::print::print_module(&module, &npuc_ir::print::PrintOptions::default());
    let exported = match npuc_tflite::export(&module) {
        Ok(b) => b,
        Err(e) => panic!("an imported model failed to export: {e}"),
    };
    let again = match npuc_tflite::import(Bytes::from(exported)) {
        Ok(m) => m,
        Err(e) => panic!("an exported model failed to re-import: {e}"),
    };
    assert_eq!(again.graphs.len(), module.graphs.len(), "graph count changed in the round trip");
    for (i, (a, b)) in module.graphs.iter().zip(&again.graphs).enumerate() {
        assert_eq!(a.op_count(), b.op_count(), "graph {i}: op count changed in the round trip");
    }
});
