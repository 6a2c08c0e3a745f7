//! Interoperability with Vela's `ethosu.mlw_codec` (the reference codec): Vela decodes
//! npuc's streams to exactly the input values, and npuc decodes Vela's streams to exactly the
//! values Vela encoded; plus the size comparison against Vela.

mod common;

use common::{fixture_sets, synthetic_sets, vela_decode, vela_encode, Set};
use npuc_npu::codec::{decode, encode};

/// All sets the interop tests run on.
fn all_sets() -> Vec<Set> {
    let mut sets = fixture_sets();
    sets.extend(synthetic_sets());
    sets
}

#[test]
fn vela_decodes_npuc_streams() {
    let mut sets = all_sets();
    // The empty stream (0 values) too: npuc writes only end-of-stream padding.
    sets.push(Set { name: "empty".into(), values: Vec::new(), ohwi: None });
    let streams: Vec<Vec<u8>> = sets.iter().map(|s| encode(&s.values).expect("encodable")).collect();
    for (s, st) in sets.iter().zip(&streams) {
        assert_eq!(st.len() % 16, 0, "{}: stream not 16-byte aligned", s.name);
    }
    let refs: Vec<&[u8]> = streams.iter().map(|s| s.as_slice()).collect();
    let decoded = vela_decode(&refs);
    for (s, d) in sets.iter().zip(&decoded) {
        assert!(d == &s.values, "{}: Vela decoded {} values, expected {}", s.name, d.len(), s.values.len());
    }
}

#[test]
fn npuc_decodes_vela_streams() {
    // Vela's encoder cannot write an empty stream (its own decoder rejects the result), so
    // the empty set is only in the other direction.
    let sets = all_sets();
    let refs: Vec<&[i16]> = sets.iter().map(|s| s.values.as_slice()).collect();
    let streams = vela_encode(&refs);
    let stream_refs: Vec<&[u8]> = streams.iter().map(|s| s.as_slice()).collect();
    let vela_decoded = vela_decode(&stream_refs);
    for ((s, st), vd) in sets.iter().zip(&streams).zip(&vela_decoded) {
        let ours = decode(st).unwrap_or_else(|e| panic!("{}: npuc cannot decode Vela's stream: {e}", s.name));
        assert_eq!(vd, &s.values, "{}: Vela's own round trip differs", s.name);
        assert!(ours == *vd, "{}: npuc decoded {} values, Vela {}", s.name, ours.len(), vd.len());
    }
}

#[test]
fn size_against_vela() {
    let sets = all_sets();
    let refs: Vec<&[i16]> = sets.iter().map(|s| s.values.as_slice()).collect();
    let vela = vela_encode(&refs);
    let (mut tot_n, mut tot_v) = (0usize, 0usize);
    let mut worse = Vec::new();
    println!("{:<60} {:>8} {:>10} {:>10} {:>7}", "set", "values", "npuc", "vela", "ratio");
    for (s, v) in sets.iter().zip(&vela) {
        let n = encode(&s.values).expect("encodable").len();
        tot_n += n;
        tot_v += v.len();
        println!("{:<60} {:>8} {:>10} {:>10} {:>7.3}", s.name, s.values.len(), n, v.len(), n as f64 / v.len() as f64);
        if n > v.len() {
            worse.push(format!("{} (+{} bytes)", s.name, n - v.len()));
        }
    }
    println!("{:<60} {:>8} {:>10} {:>10} {:>7.3}", "TOTAL", "", tot_n, tot_v, tot_n as f64 / tot_v as f64);
    println!("sets where npuc > vela: {worse:?}");
    // The size goal, per set: npuc's stream is never larger than Vela's.
    assert!(worse.is_empty(), "npuc larger than Vela on: {worse:?}");
    assert!(tot_n <= tot_v, "npuc total {tot_n} bytes > Vela total {tot_v} bytes");
}
