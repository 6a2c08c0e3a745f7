//! TFLite → IR → TFLite → IR on every fixture: the IR is unchanged and the second export
//! is byte-identical to the first (export is deterministic and a fixed point).

mod common;

use bytes::Bytes;
use npuc_ir::print::{print_module, PrintOptions};

fn full() -> PrintOptions {
    PrintOptions { full_constants: true, ..Default::default() }
}

#[test]
fn every_fixture_round_trips_through_the_ir() {
    for path in common::fixtures() {
        let original = std::fs::read(&path).unwrap();
        let m1 = npuc_tflite::import(Bytes::from(original)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out1 = npuc_tflite::export(&m1).unwrap_or_else(|e| panic!("{}: export: {e}", path.display()));
        let m2 = npuc_tflite::import(Bytes::from(out1.clone()))
            .unwrap_or_else(|e| panic!("{}: re-import: {e}", path.display()));
        let (t1, t2) = (print_module(&m1, &full()), print_module(&m2, &full()));
        assert!(t1 == t2, "{}: IR changed across a TFLite round trip", path.display());
        let out2 = npuc_tflite::export(&m2).unwrap();
        assert!(out1 == out2, "{}: second export differs from the first", path.display());
        assert_eq!(&out1[4..8], b"TFL3");
    }
}

#[test]
fn constants_are_shared_with_the_file_not_copied() {
    let path = common::fixtures().into_iter().find(|p| common::stem(p) == "mobilenet_v2_035_96_f32").unwrap();
    let file = Bytes::from(std::fs::read(&path).unwrap());
    let range = file.as_ptr() as usize..file.as_ptr() as usize + file.len();
    let m = npuc_tflite::import(file.clone()).unwrap();
    let g = m.main().unwrap();
    let mut n = 0;
    for v in g.value_ids() {
        if let Some(c) = &g.value(v).data {
            let p = c.bytes().unwrap().as_ptr() as usize;
            assert!(range.contains(&p), "constant '{}' was copied out of the file", g.value(v).name);
            n += 1;
        }
    }
    assert!(n > 50, "expected the weights of MobileNetV2, found {n} constants");
}

#[test]
fn buffer_data_is_16_byte_aligned_on_export() {
    use npuc_tflite::generated::tflite as fb;
    for path in common::fixtures() {
        let m = npuc_tflite::import(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
        let out = npuc_tflite::export(&m).unwrap();
        let model = fb::root_as_model(&out).unwrap();
        for (i, b) in model.buffers().unwrap().iter().enumerate() {
            if let Some(d) = b.data() {
                if !d.is_empty() {
                    let off = d.bytes().as_ptr() as usize - out.as_ptr() as usize;
                    assert_eq!(off % 16, 0, "{}: buffer {i} starts at offset {off}", path.display());
                }
            }
        }
    }
}

/// IF/WHILE carry graph indices: they survive export as IfOptions/WhileOptions, and a file
/// whose index points past its subgraphs is rejected on import, naming the op.
#[test]
fn control_flow_indices_round_trip_and_are_checked() {
    let path = common::fixtures().into_iter().find(|p| common::stem(p) == "zoo_c_f32").unwrap();
    let mut m = npuc_tflite::import(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
    let g = &m.graphs[0];
    let calls: Vec<_> = g.op_ids().filter(|&id| !g.op(id).op.callees().is_empty()).collect();
    let ops: Vec<_> = calls.iter().map(|&id| g.op(id).op.clone()).collect();
    assert_eq!(
        ops,
        [npuc_ir::Op::If { then_graph: 2, else_graph: 1 }, npuc_ir::Op::While { cond_graph: 3, body_graph: 4 }]
    );
    *m.graphs[0].op_kind_mut(calls[1]) = npuc_ir::Op::While { cond_graph: 3, body_graph: 7 };
    let bytes = npuc_tflite::export(&m).unwrap();
    let err = npuc_tflite::import(Bytes::from(bytes)).unwrap_err().to_string();
    assert!(err.contains("body graph #7 does not exist (the module has 5 graphs)"), "{err}");
    assert!(err.contains("while") && err.contains("subgraph 0"), "{err}");
}
