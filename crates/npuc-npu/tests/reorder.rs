//! The weight reorder and scale/bias records against Vela: decoding the stream of Vela's
//! `npu_encode_weights` (reorder + encode) gives exactly npuc's reorder, Vela decodes npuc's
//! encoding of it, and npuc's scale/bias records equal `npu_encode_bias`'s byte for byte.

mod common;

use common::{fixture_sets, oracle_with, vela_decode, write_npy_shaped};
use npuc_npu::codec::{decode, encode};
use npuc_npu::reorder::{reorder, scale_bias_record, Accelerator, ReorderParams, Traversal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Vela's name for an accelerator (`NpuAccelerator` member).
fn vela_name(a: Accelerator) -> &'static str {
    match a {
        Accelerator::U55_32 => "Ethos_U55_32",
        Accelerator::U55_64 => "Ethos_U55_64",
        Accelerator::U55_128 => "Ethos_U55_128",
        Accelerator::U55_256 => "Ethos_U55_256",
        Accelerator::U65_256 => "Ethos_U65_256",
        Accelerator::U65_512 => "Ethos_U65_512",
    }
}

/// Vela's reorder + encode of one OHWI tensor.
fn vela_reorder_encode(w: &[i16], shape: [usize; 4], p: &ReorderParams) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (npy, bin) = (dir.path().join("w.npy"), dir.path().join("w.bin"));
    write_npy_shaped(&npy, w, &shape.map(|d| d as u64));
    oracle_with("reorder", &[(npy, bin.clone())], &oracle_opts(p));
    std::fs::read(bin).expect("read stream")
}

/// Vela's reorder + encode of several OHWI tensors sharing one parameter set.
fn vela_reorder_encode_many(ws: &[(&[i16], [usize; 4])], p: &ReorderParams) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs: Vec<_> =
        (0..ws.len()).map(|i| (dir.path().join(format!("{i}.npy")), dir.path().join(format!("{i}.bin")))).collect();
    for ((w, shape), (npy, _)) in ws.iter().zip(&pairs) {
        write_npy_shaped(npy, w, &shape.map(|d| d as u64));
    }
    oracle_with("reorder", &pairs, &oracle_opts(p));
    pairs.iter().map(|(_, bin)| std::fs::read(bin).expect("read stream")).collect()
}

/// The oracle's command-line options for a parameter set.
fn oracle_opts(p: &ReorderParams) -> Vec<String> {
    let trav = match p.traversal {
        Traversal::DepthFirst => "depth",
        Traversal::PartKernelFirst => "part",
        Traversal::Depthwise => "depthwise",
    };
    vec![
        format!("--accel={}", vela_name(p.accelerator)),
        format!("--ofm-block-depth={}", p.ofm_block_depth),
        format!("--traversal={trav}"),
        format!("--ifm-bits={}", p.ifm_bits),
        format!("--dilation={},{}", p.dilation.0, p.dilation.1),
    ]
}

/// The cases: shapes × parameters covering sub-kernel splits, ragged depths, every traversal.
fn cases() -> Vec<([usize; 4], ReorderParams)> {
    use Accelerator::*;
    use Traversal::*;
    let p = |accelerator, ofm_block_depth, traversal, ifm_bits, dilation| ReorderParams {
        accelerator,
        ofm_block_depth,
        traversal,
        ifm_bits,
        dilation,
    };
    vec![
        ([16, 1, 1, 5], p(U55_128, 16, DepthFirst, 8, (1, 1))),
        ([20, 3, 3, 40], p(U55_128, 16, DepthFirst, 8, (1, 1))),
        ([20, 3, 3, 40], p(U55_128, 8, DepthFirst, 16, (1, 1))),
        ([13, 3, 3, 3], p(U55_128, 16, PartKernelFirst, 8, (1, 1))),
        ([13, 3, 3, 21], p(U65_256, 32, PartKernelFirst, 16, (1, 1))),
        ([24, 5, 5, 6], p(U55_32, 4, PartKernelFirst, 8, (1, 1))),
        ([24, 3, 3, 37], p(U55_32, 8, DepthFirst, 8, (1, 1))),
        ([10, 9, 9, 4], p(U55_256, 16, DepthFirst, 8, (1, 1))),
        ([10, 10, 3, 9], p(U55_64, 8, PartKernelFirst, 8, (1, 1))),
        ([8, 5, 5, 8], p(U55_128, 8, DepthFirst, 8, (2, 2))),
        ([8, 5, 7, 3], p(U65_512, 16, PartKernelFirst, 8, (2, 1))),
        ([35, 3, 3, 1], p(U55_128, 16, Depthwise, 8, (1, 1))),
        ([19, 5, 5, 1], p(U55_32, 8, Depthwise, 16, (1, 2))),
        ([64, 9, 9, 1], p(U65_256, 32, Depthwise, 8, (1, 1))),
    ]
}

#[test]
fn reorder_matches_vela() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut total = (0usize, 0usize);
    for (shape, params) in cases() {
        let n: usize = shape.iter().product();
        // Non-zero weights, so a misplaced padding zero cannot go unnoticed.
        let w: Vec<i16> = (0..n)
            .map(|_| if rng.random_bool(0.5) { rng.random_range(1..=120) } else { rng.random_range(-120..=-1) })
            .collect();
        let ours = reorder(&w, shape, &params).expect("valid case");
        let vela_stream = vela_reorder_encode(&w, shape, &params);
        let vela_values = decode(&vela_stream).expect("npuc decodes Vela's stream");
        assert!(
            ours == vela_values,
            "{shape:?} {params:?}: reorder differs ({} vs {} values)",
            ours.len(),
            vela_values.len()
        );
        let our_stream = encode(&ours).expect("encodable");
        let back = vela_decode(&[&our_stream]);
        assert!(back[0] == ours, "{shape:?} {params:?}: Vela decodes npuc's stream differently");
        println!("{shape:?} {:?}: npuc {} bytes, vela {} bytes", params.traversal, our_stream.len(), vela_stream.len());
        assert!(our_stream.len() <= vela_stream.len(), "{shape:?} {params:?}: npuc larger than Vela");
        total.0 += our_stream.len();
        total.1 += vela_stream.len();
    }
    println!("total: npuc {} bytes, vela {} bytes", total.0, total.1);
}

/// Fixture conv weights reordered as Vela would for an Ethos-U55-128 with 16-deep OFM blocks
/// (part-kernel-first when IFM depth ≤ 8): same reorder, and the encoded size per model.
#[test]
fn fixture_weights_reordered_match_vela() {
    let sets = fixture_sets();
    let mut per_model: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut worse = Vec::new();
    for traversal in [Traversal::DepthFirst, Traversal::PartKernelFirst, Traversal::Depthwise] {
        let params = ReorderParams {
            accelerator: Accelerator::U55_128,
            ofm_block_depth: 16,
            traversal,
            ifm_bits: 8,
            dilation: (1, 1),
        };
        let chosen: Vec<_> = sets
            .iter()
            .filter_map(|s| {
                let (shape, dw) = s.ohwi?;
                let t = if dw {
                    Traversal::Depthwise
                } else if shape[3] <= 8 {
                    Traversal::PartKernelFirst
                } else {
                    Traversal::DepthFirst
                };
                (t == traversal).then_some((s, shape))
            })
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let inputs: Vec<(&[i16], [usize; 4])> = chosen.iter().map(|(s, sh)| (s.values.as_slice(), *sh)).collect();
        let vela = vela_reorder_encode_many(&inputs, &params);
        let ours: Vec<Vec<u8>> = chosen
            .iter()
            .map(|(s, sh)| encode(&reorder(&s.values, *sh, &params).expect("valid fixture")).expect("encodable"))
            .collect();
        let refs: Vec<&[u8]> = ours.iter().map(|o| o.as_slice()).collect();
        let vela_back = vela_decode(&refs);
        for (((s, sh), v), (o, back)) in chosen.iter().zip(&vela).zip(ours.iter().zip(&vela_back)) {
            let want = reorder(&s.values, *sh, &params).expect("valid fixture");
            assert!(decode(v).expect("npuc decodes Vela") == want, "{}: reorder differs from Vela", s.name);
            assert!(back == &want, "{}: Vela decodes npuc's stream differently", s.name);
            let model = s.name.split('/').next().unwrap_or("?").to_string();
            let e = per_model.entry(model).or_default();
            e.0 += o.len();
            e.1 += v.len();
            if o.len() > v.len() {
                worse.push(format!("{} (+{})", s.name, o.len() - v.len()));
            }
        }
    }
    println!("{:<28} {:>10} {:>10} {:>7}", "model (U55-128, reordered)", "npuc", "vela", "ratio");
    for (m, (n, v)) in &per_model {
        println!("{m:<28} {n:>10} {v:>10} {:>7.3}", *n as f64 / *v as f64);
    }
    println!("tensors where npuc > vela: {worse:?}");
    assert!(per_model.len() >= 5, "expected the fixture models, got {per_model:?}");
    for (m, (n, v)) in &per_model {
        assert!(n <= v, "{m}: npuc {n} bytes > Vela {v} bytes");
    }
}

#[test]
fn scale_bias_records_match_vela() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut rows: Vec<[i64; 3]> = vec![[0, 0, 0], [-1, 1, 1], [(1 << 39) - 1, u32::MAX as i64, 63], [-(1 << 39), 0, 0]];
    for _ in 0..50 {
        rows.push([
            rng.random_range(-(1i64 << 39)..(1i64 << 39)),
            rng.random_range(0..=u32::MAX as i64),
            rng.random_range(0..64),
        ]);
    }
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (npy, bin) = (dir.path().join("b.npy"), dir.path().join("b.bin"));
    write_npy_shaped(&npy, &flat, &[rows.len() as u64, 3]);
    oracle_with("bias", &[(npy, bin.clone())], &[]);
    let vela = std::fs::read(bin).expect("read records");
    let ours: Vec<u8> =
        rows.iter().flat_map(|r| scale_bias_record(r[0], r[1] as u32, r[2] as u32).expect("in range")).collect();
    assert_eq!(ours, vela);
    assert!(scale_bias_record(1 << 39, 0, 0).is_err());
    assert!(scale_bias_record(0, 0, 64).is_err());
}
