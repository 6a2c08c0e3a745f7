//! The `.npu` container: round trip, deterministic bytes, and every corruption reported
//! as an error (never a panic), plus the simulator catching a wrong stream or offset.

use npuc_interp::{random_inputs, Interpreter, Options, Tensor};
use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, Graph, Op, Operation, Padding, Quantization, TensorType, Value,
};
use npuc_npu::artifact::{self, ArtifactError};
use npuc_npu::lower::{lower, LowerOptions};
use npuc_npu::program::{Command, NpuProgram};
use npuc_npu::sim::simulate;
use npuc_target::Target;

fn q(scale: f32, zp: i64) -> Option<Quantization> {
    Some(Quantization::per_tensor(scale, zp))
}

/// input → conv 3x3 (relu) → logistic (a table) → depth_to_space (the CPU on ethos-u55).
fn small_graph() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input("x", TensorType { dtype: DType::I8, shape: vec![1, 4, 4, 3], quant: q(0.05, -3) });
    let w: Vec<u8> = (0..4 * 3 * 3 * 3).map(|i| ((i * 37 % 255) - 127) as i8 as u8).collect();
    let wq = Quantization::per_channel(vec![0.01, 0.02, 0.015, 0.03], vec![0; 4], 0);
    let w = g.add_const("w", TensorType::new(DType::I8, vec![4, 3, 3, 3]).with_quant(wq), Constant::from_slice(&w));
    let b: Vec<u8> = [100i32, -50, 7, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let b = g.add_const("b", TensorType::new(DType::I32, vec![4]), Constant::from_slice(&b));
    let c =
        g.add_value(Value::new("c", TensorType { dtype: DType::I8, shape: vec![1, 4, 4, 4], quant: q(0.02, -128) }));
    let conv = Conv2dAttrs {
        padding: Padding::Same,
        stride: [1, 1],
        dilation: [1, 1],
        activation: Activation::Relu,
        bias_type: None,
    };
    g.add_op(Operation::new(Op::Conv2d(conv), vec![Some(x), Some(w), Some(b)], vec![c])).expect("conv");
    let s = g.add_value(Value::new(
        "s",
        TensorType { dtype: DType::I8, shape: vec![1, 4, 4, 4], quant: q(1.0 / 256.0, -128) },
    ));
    g.add_op(Operation::new(Op::Logistic, vec![Some(c)], vec![s])).expect("logistic");
    let y = g.add_value(Value::new(
        "y",
        TensorType { dtype: DType::I8, shape: vec![1, 8, 8, 1], quant: q(1.0 / 256.0, -128) },
    ));
    g.add_op(Operation::new(Op::DepthToSpace { block_size: 2 }, vec![Some(s)], vec![y])).expect("d2s");
    g.inputs = vec![x];
    g.outputs = vec![y];
    g
}

fn small_program() -> NpuProgram {
    let t = Target::builtin("ethos-u55-128").expect("target");
    lower(&small_graph(), &t, &LowerOptions { pipeline: "quantize".into(), ..Default::default() }).expect("lower")
}

fn interp(g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    Interpreter::new(g, &Options { threads: 1 }).expect("interp").run(inputs.to_vec()).expect("run")
}

#[test]
fn small_graph_uses_every_kind_of_command() {
    let p = small_program();
    assert!(p.commands.iter().any(|c| matches!(c, Command::Npu(n) if n.weights.is_some())));
    assert!(p.commands.iter().any(|c| matches!(c, Command::Npu(n) if n.lut.is_some())));
    assert!(p.commands.iter().any(|c| matches!(c, Command::Cpu(_))));
    let g = small_graph();
    let inputs = random_inputs(&g, 7);
    assert_eq!(simulate(&p, &inputs).expect("sim"), interp(&g, &inputs));
}

#[test]
fn round_trip_is_exact_and_bytes_are_deterministic() {
    let p = small_program();
    let a = artifact::write(&p);
    assert_eq!(a, artifact::write(&small_program()), "two lowerings give different bytes");
    assert_eq!(artifact::read(&a).expect("read"), p);
    assert_eq!(&a[..8], b"NPUCNPU\0");
}

#[test]
fn every_flipped_byte_is_an_error() {
    let a = artifact::write(&small_program());
    for i in 0..a.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = a.clone();
            b[i] ^= bit;
            assert!(artifact::read(&b).is_err(), "flipping bit {bit:#x} of byte {i} of {} went unnoticed", a.len());
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let a = artifact::write(&small_program());
    for n in 0..a.len() {
        assert!(artifact::read(&a[..n]).is_err(), "a file cut at {n} bytes was accepted");
    }
    let mut longer = a.clone();
    longer.push(0);
    assert!(artifact::read(&longer).is_err());
}

#[test]
fn errors_name_the_section_and_offset() {
    let a = artifact::write(&small_program());
    let mut b = a.clone();
    let last = b.len() - 2;
    b[last] ^= 1;
    let e = artifact::read(&b).expect_err("corrupted metadata");
    assert!(matches!(e, ArtifactError::Checksum { section: "metadata", .. }), "{e}");
    assert!(e.to_string().contains("metadata (bytes "), "{e}");
    let mut v = a.clone();
    v[8] = 9;
    assert!(matches!(artifact::read(&v), Err(ArtifactError::Version { found: 9 })));
    assert!(matches!(artifact::read(b"NOTANPU!rest"), Err(ArtifactError::BadMagic)));
}

#[test]
fn write_file_replaces_atomically_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.npu");
    std::fs::write(&path, b"old").expect("seed");
    let p = small_program();
    artifact::write_file(&path, &p).expect("write");
    assert_eq!(artifact::read_file(&path).expect("read"), p);
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "a temporary file was left behind");
}

/// The simulator reads what the artifact says: a changed weight stream or a moved tensor
/// changes the result or fails, even though the file's checksums are valid again.
#[test]
fn corrupted_stream_or_offset_is_seen_by_the_sim() {
    let g = small_graph();
    let inputs = random_inputs(&g, 3);
    let want = interp(&g, &inputs);
    let p = small_program();

    let mut w = p.clone();
    let s = &mut w.weights[0];
    let mid = s.len() / 2;
    s[mid] ^= 0x10;
    let w = artifact::read(&artifact::write(&w)).expect("re-checksummed");
    match simulate(&w, &inputs) {
        Ok(out) => assert_ne!(out, want, "a changed weight stream gave the right answer"),
        Err(e) => assert!(e.to_string().contains("weight"), "{e}"),
    }

    let mut o = p.clone();
    let Some(Command::Npu(n)) = o.commands.iter_mut().find(|c| matches!(c, Command::Npu(n) if n.lut.is_some())) else {
        panic!("no table command");
    };
    n.operands[0].as_mut().expect("ifm").offset += 16;
    match simulate(&o, &inputs) {
        Ok(out) => assert_ne!(out, want, "a moved IFM gave the right answer"),
        Err(e) => assert!(e.to_string().contains("sram"), "{e}"),
    }

    // The int8 convolution requantizes with the records themselves: a changed multiplier
    // or bias is a changed result.
    for byte in [1usize, 8] {
        let mut r = p.clone();
        r.scale_bias[0].iter_mut().for_each(|rec| rec[byte] ^= 0x20);
        let out = simulate(&r, &inputs).expect("a changed record still runs");
        assert_ne!(out, want, "record byte {byte} changed without effect");
    }
}

#[test]
fn float_graphs_are_refused() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models/ds_cnn_f32.tflite");
    let g = npuc_tflite::import_file(&path).expect("import").main().expect("main").clone();
    let t = Target::builtin("ethos-u55-128").expect("target");
    let e = lower(&g, &t, &LowerOptions::default()).expect_err("float graph");
    assert!(e.to_string().contains("quantize first"), "{e}");
}

/// Rewrites the CRCs of `bytes` after a deliberate edit, so the edit reaches the parser and
/// the simulator (layout from docs/artifact-format.md).
fn rechecksum(bytes: &mut [u8]) {
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let tlen = u16::from_le_bytes(bytes[16..18].try_into().unwrap()) as usize;
    for i in 0..artifact::SECTIONS.len() {
        let e = 18 + tlen + 24 * i;
        let off = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap()) as usize;
        let crc = crc32fast::hash(&bytes[off..off + len]);
        bytes[e + 4..e + 8].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&bytes[..header_len - 4]);
    bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
}

/// Past the checksums, any edit of any section is an error or a run: never a
/// panic in the reader or the simulator.
#[test]
fn edited_sections_never_panic_the_reader_or_the_sim() {
    let a = artifact::write(&small_program());
    let inputs = random_inputs(&small_graph(), 1);
    let (mut read_errors, mut runs) = (0, 0);
    let header_len = u32::from_le_bytes(a[12..16].try_into().unwrap()) as usize;
    for i in header_len..a.len() {
        for bit in [0x01u8, 0x80, 0xff] {
            let mut b = a.clone();
            b[i] ^= bit;
            rechecksum(&mut b);
            match artifact::read(&b) {
                Err(_) => read_errors += 1,
                Ok(q) => {
                    let _ = simulate(&q, &inputs);
                    runs += 1;
                }
            }
        }
    }
    assert!(read_errors > 0 && runs > 0, "{read_errors} read errors, {runs} runs");
}

#[test]
fn metadata_carries_the_report_and_the_stage_table() {
    let t = Target::builtin("ethos-u55-128").expect("target");
    let table = serde_json::json!([{"stage": "import", "ops": 3}]);
    let opts = LowerOptions { pipeline: "quantize".into(), stage_table: Some(table.clone()), ..Default::default() };
    let p = artifact::read(&artifact::write(&lower(&small_graph(), &t, &opts).expect("lower"))).expect("read");
    assert_eq!(p.metadata["stage_table"], table);
    assert_eq!(p.metadata["pipeline"], "quantize");
    assert_eq!(p.metadata["npu_ops"], 2);
    assert_eq!(p.metadata["cpu_ops"], 1);
    assert_eq!(p.metadata["encoded_weight_bytes"], p.encoded_weight_bytes());
    assert!(p.metadata["cycles"].is_null(), "no cycle figure before the performance model runs");
}
