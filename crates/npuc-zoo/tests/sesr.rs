//! The SESR builders: structure per variant, expanded MACs against the hand-derived
//! formula, numerics through the reference interpreter, and determinism.

use std::collections::BTreeMap;

use npuc_interp::{Data, Interpreter, Observer, Options, Tensor};
use npuc_ir::{Graph, Op, OpId, ValueId};
use npuc_zoo::{sesr, sesr_module, SesrActivation, SesrConfig, SesrVariant, ZooError};

fn count_ops(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for id in g.op_ids() {
        *m.entry(g.op(id).op.mnemonic()).or_insert(0) += 1;
    }
    m
}

fn value_named<'g>(g: &'g Graph, name: &str) -> &'g npuc_ir::Value {
    let found: Vec<ValueId> = g.value_ids().filter(|&v| g.value(v).name == name).collect();
    assert_eq!(found.len(), 1, "expected exactly one value named {name}, found {}", found.len());
    g.value(found[0])
}

fn conv_macs(g: &Graph) -> u64 {
    g.op_ids().filter(|&id| matches!(g.op(id).op, Op::Conv2d(_))).map(|id| npuc_ir::stats::macs(g, id)).sum()
}

/// Expanded conv MACs per low-resolution pixel, from the architecture: input block 5×5
/// 1→p then 1×1 p→f; m body blocks 3×3 f→p then 1×1 p→f; output block 5×5 f→p then
/// 1×1 p→s².
fn macs_per_pixel(f: u64, m: u64, p: u64, s: u64) -> u64 {
    (5 * 5 * p + p * f) + m * (3 * 3 * f * p + p * f) + (5 * 5 * f * p + p * s * s)
}

#[test]
fn m5_x2_batch_32_at_64x64_has_the_published_expanded_macs() {
    let mut c = SesrConfig::new(SesrVariant::M5, 2, 64, 64);
    c.batch = 32;
    let g = sesr(&c).unwrap();
    npuc_ir::verify_graph(&g).unwrap();
    // 318,720 MACs per pixel (6,400 + 4,096 + 5·40,960 + 102,400 + 1,024) × 32·64·64.
    assert_eq!(macs_per_pixel(16, 5, 256, 2), 318_720);
    assert_eq!(conv_macs(&g), 41_775_267_840);
}

#[test]
fn every_variant_and_scale_has_the_right_structure_and_macs() {
    for v in SesrVariant::ALL {
        for scale in [2u32, 4] {
            for act in [SesrActivation::Prelu, SesrActivation::Relu] {
                let (h, w) = (6, 10);
                let mut c = SesrConfig::new(v, scale, h, w);
                c.batch = 2;
                c.activation = act;
                let g = sesr(&c).unwrap();
                let what = c.describe();
                npuc_ir::verify_graph(&g).unwrap_or_else(|e| panic!("{what}: {e}"));
                let (f, m, p, s) = (v.features(), v.body_blocks(), v.default_expansion(), scale as usize);

                let ops = count_ops(&g);
                let act_name = if act == SesrActivation::Prelu { "prelu" } else { "relu" };
                let mut want = BTreeMap::from([
                    ("conv_2d", 2 * (m + 2)),
                    ("add", m + 2),
                    ("sub", 1),
                    ("depth_to_space", if scale == 4 { 2 } else { 1 }),
                    ("minimum", 1),
                    ("maximum", 1),
                ]);
                want.insert(act_name, m);
                assert_eq!(ops, want, "{what}");

                assert_eq!(g.value(g.inputs[0]).ty.shape, vec![2, h, w, 1], "{what}");
                assert_eq!(g.outputs.len(), 1);
                assert_eq!(g.value(g.outputs[0]).ty.shape, vec![2, h * s, w * s, 1], "{what}");
                assert_eq!(value_named(&g, "input_block/conv_kxk/weights").ty.shape, vec![p, 5, 5, 1], "{what}");
                assert_eq!(value_named(&g, "input_block/conv_1x1/weights").ty.shape, vec![f, 1, 1, p], "{what}");
                for i in 0..m {
                    assert_eq!(value_named(&g, &format!("body{i}/conv_kxk")).ty.shape, vec![2, h, w, p]);
                    assert_eq!(value_named(&g, &format!("body{i}/conv_kxk/weights")).ty.shape, vec![p, 3, 3, f]);
                    assert_eq!(value_named(&g, &format!("body{i}/conv_1x1/weights")).ty.shape, vec![f, 1, 1, p]);
                    assert_eq!(value_named(&g, &format!("body{i}/residual")).ty.shape, vec![2, h, w, f]);
                    assert_eq!(value_named(&g, &format!("body{i}/{act_name}")).ty.shape, vec![2, h, w, f]);
                }
                assert_eq!(value_named(&g, "output_block/conv_kxk/weights").ty.shape, vec![p, 5, 5, f], "{what}");
                assert_eq!(value_named(&g, "output_block/conv_1x1/weights").ty.shape, vec![s * s, 1, 1, p], "{what}");
                assert_eq!(value_named(&g, "global_residual").ty.shape, vec![2, h, w, s * s], "{what}");

                let pixels = (2 * h * w) as u64;
                let conv = macs_per_pixel(f as u64, m as u64, p as u64, s as u64) * pixels;
                assert_eq!(conv_macs(&g), conv, "{what}");
                // PReLU costs one multiply per element in the IR's count; ReLU none.
                let prelu = if act == SesrActivation::Prelu { (m * f) as u64 * pixels } else { 0 };
                assert_eq!(npuc_ir::stats::graph_stats(&g).macs, conv + prelu, "{what}");
            }
        }
    }
}

#[test]
fn expansion_override_changes_p_only() {
    let mut c = SesrConfig::new(SesrVariant::M11, 2, 4, 4);
    c.expansion = Some(32);
    let g = sesr(&c).unwrap();
    npuc_ir::verify_graph(&g).unwrap();
    assert_eq!(value_named(&g, "body10/conv_kxk/weights").ty.shape, vec![32, 3, 3, 16]);
    assert_eq!(conv_macs(&g), macs_per_pixel(16, 11, 32, 2) * 16);
}

#[test]
fn weights_biases_and_alphas_are_in_their_ranges() {
    let g = sesr(&SesrConfig::new(SesrVariant::M5, 2, 4, 4)).unwrap();
    let floats = |name: &str| -> Vec<f32> {
        let v = value_named(&g, name);
        let b = v.data.as_ref().and_then(|d| d.bytes()).unwrap_or_else(|| panic!("{name} has no data"));
        b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    for i in 0..5 {
        let alpha = floats(&format!("body{i}/prelu/alpha"));
        assert_eq!(alpha.len(), 16);
        assert!(alpha.iter().all(|&a| a > 0.0 && a < 0.5), "body{i} alpha {alpha:?}");
        assert_eq!(value_named(&g, &format!("body{i}/prelu/alpha")).ty.shape, vec![1, 1, 16]);
        for conv in ["conv_kxk", "conv_1x1"] {
            let b = floats(&format!("body{i}/{conv}/bias"));
            assert!(b.iter().all(|&x| x != 0.0 && x.abs() < 0.1), "body{i}/{conv} bias {b:?}");
            let w = floats(&format!("body{i}/{conv}/weights"));
            assert!(w.iter().all(|x| x.is_finite()) && w.iter().any(|&x| x != 0.0));
        }
    }
    assert_eq!(floats("input_shift/offset"), vec![0.5]);
    assert_eq!(floats("clip/one"), vec![1.0]);
    assert_eq!(floats("clip/zero"), vec![0.0]);
}

fn run(g: &Graph, input: Tensor, observer: Option<&mut dyn Observer>) -> Tensor {
    let it = Interpreter::new(g, &Options { threads: 0 }).unwrap();
    it.run_observed(vec![input], observer).unwrap().remove(0)
}

/// Uniform [0, 1) pixels from a small LCG, so the test does not depend on any one
/// random-input helper.
fn image(shape: Vec<usize>, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let data = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor { shape, data: Data::F32(data) }
}

#[test]
fn m3_x2_runs_in_the_interpreter_with_outputs_in_range() {
    let g = sesr(&SesrConfig::new(SesrVariant::M3, 2, 16, 16)).unwrap();
    let out = run(&g, image(vec![1, 16, 16, 1], 3), None);
    assert_eq!(out.shape, vec![1, 32, 32, 1]);
    let d = out.as_f32().unwrap();
    assert!(d.iter().all(|&v| (0.0..=1.0).contains(&v)), "outside [0, 1]");
    let inside = d.iter().filter(|&&v| v > 0.0 && v < 1.0).count();
    assert!(inside > d.len() / 2, "only {inside} of {} outputs are not clipped", d.len());
}

/// Root mean square of every body block's output, by value name.
struct BlockRms(Vec<(String, f64)>);

impl Observer for BlockRms {
    fn observe(&mut self, g: &Graph, v: ValueId, _: Option<OpId>, t: &Tensor) {
        let name = &g.value(v).name;
        if name.starts_with("body") && (name.ends_with("/prelu") || name.ends_with("/relu")) || name == "long_residual"
        {
            let d = t.data.to_f64_vec();
            let rms = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
            self.0.push((name.clone(), rms));
        }
    }
}

#[test]
fn activations_stay_order_one_in_the_deepest_variants() {
    for v in [SesrVariant::M11, SesrVariant::Xl] {
        for act in [SesrActivation::Prelu, SesrActivation::Relu] {
            for scale in [2, 4] {
                let mut c = SesrConfig::new(v, scale, 12, 12);
                c.activation = act;
                c.seed = 11;
                let g = sesr(&c).unwrap();
                let mut rms = BlockRms(Vec::new());
                let out = run(&g, image(vec![1, 12, 12, 1], 5), Some(&mut rms));
                let what = c.describe();
                assert_eq!(rms.0.len(), 12, "{what}: {:?}", rms.0);
                for (name, r) in &rms.0 {
                    assert!(r.is_finite() && *r > 0.05 && *r < 5.0, "{what}: {name} has rms {r}");
                }
                let d = out.as_f32().unwrap();
                assert!(d.iter().all(|v| v.is_finite()));
                let zeros = d.iter().filter(|&&v| v == 0.0).count();
                let ones = d.iter().filter(|&&v| v == 1.0).count();
                assert!(zeros + ones < d.len() / 2, "{what}: {zeros} zeros and {ones} ones of {}", d.len());
            }
        }
    }
}

/// With the output block silenced, SESR is nearest-neighbour upsampling: this pins the
/// broadcast of the global residual and the depth_to_space order, for ×2 and ×4.
#[test]
fn without_the_output_block_the_network_is_nearest_neighbour_upsampling() {
    for scale in [2usize, 4] {
        let mut g = sesr(&SesrConfig::new(SesrVariant::M3, scale as u32, 3, 5)).unwrap();
        for name in ["output_block/conv_1x1/weights", "output_block/conv_1x1/bias"] {
            let v = g.value_ids().find(|&v| g.value(v).name == name).unwrap();
            let len = g.value(v).data.as_ref().unwrap().len();
            g.value_mut(v).data = Some(npuc_ir::Constant::from(vec![0u8; len]));
        }
        let x = image(vec![1, 3, 5, 1], 9);
        let out = run(&g, x.clone(), None);
        assert_eq!(out.shape, vec![1, 3 * scale, 5 * scale, 1]);
        let (xi, yo) = (x.as_f32().unwrap(), out.as_f32().unwrap());
        for r in 0..3 * scale {
            for c in 0..5 * scale {
                assert_eq!(yo[r * 5 * scale + c], xi[(r / scale) * 5 + c / scale], "x{scale} at ({r}, {c})");
            }
        }
    }
}

#[test]
fn same_seed_exports_identical_bytes_and_another_seed_does_not() {
    let mut c = SesrConfig::new(SesrVariant::M3, 2, 8, 12);
    let a = npuc_tflite::export(&sesr_module(&c).unwrap()).unwrap();
    let b = npuc_tflite::export(&sesr_module(&c).unwrap()).unwrap();
    assert!(a == b, "two builds with seed 0 differ");
    c.seed = 1;
    let d = npuc_tflite::export(&sesr_module(&c).unwrap()).unwrap();
    assert!(a != d, "seeds 0 and 1 built the same model");
}

#[test]
fn the_module_round_trips_through_tflite() {
    let m = sesr_module(&SesrConfig::new(SesrVariant::M5, 4, 5, 7)).unwrap();
    let back = npuc_tflite::import(bytes::Bytes::from(npuc_tflite::export(&m).unwrap())).unwrap();
    let g = back.main().unwrap();
    npuc_ir::verify_graph(g).unwrap();
    assert_eq!(count_ops(g), count_ops(m.main().unwrap()));
    assert_eq!(back.signatures.len(), 1);
    assert_eq!(g.value(g.outputs[0]).ty.shape, vec![1, 20, 28, 1]);
}

#[test]
fn names_and_bad_options() {
    assert_eq!(SesrVariant::from_name("sesr-m5"), Some(SesrVariant::M5));
    assert_eq!(SesrVariant::from_name("SESR_XL"), Some(SesrVariant::Xl));
    assert_eq!(SesrVariant::from_name("sesr-m6"), None);
    for v in SesrVariant::ALL {
        assert_eq!(SesrVariant::from_name(v.name()), Some(v));
    }
    assert!(matches!(sesr(&SesrConfig::new(SesrVariant::M3, 3, 4, 4)), Err(ZooError::BadScale { scale: 3 })));
    assert!(matches!(
        sesr(&SesrConfig::new(SesrVariant::M3, 2, 0, 5)),
        Err(ZooError::BadSize { what: "height", value: 0, .. })
    ));
    assert!(matches!(
        sesr(&SesrConfig::new(SesrVariant::M3, 4, 5, 1 << 30)),
        Err(ZooError::BadSize { what: "width", .. })
    ));
    let mut c = SesrConfig::new(SesrVariant::M3, 2, 4, 4);
    c.expansion = Some(0);
    assert!(matches!(sesr(&c), Err(ZooError::BadSize { what: "expansion", value: 0, .. })));
    c.expansion = None;
    c.batch = 0;
    assert!(matches!(sesr(&c), Err(ZooError::BadSize { what: "batch", value: 0, .. })));
    assert!(SesrActivation::from_name("gelu").is_err());
    assert_eq!(SesrActivation::from_name("ReLU").unwrap(), SesrActivation::Relu);
}
