//! Property tests: random value streams round-trip through npuc's encoder and decoder, and
//! random or damaged bytes never make the decoder panic.

use npuc_npu::codec::{decode, encode, CodecError};
use proptest::prelude::*;

/// Values with a controllable share of zeros and magnitude, so every coding mode is hit.
fn values() -> impl Strategy<Value = Vec<i16>> {
    (0u32..=100, 1i16..=255, 0usize..3000).prop_flat_map(|(zero_pct, mag, len)| {
        proptest::collection::vec((0u32..100, -mag..=mag).prop_map(move |(z, v)| if z < zero_pct { 0 } else { v }), len)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_streams_round_trip(v in values()) {
        let s = encode(&v).unwrap();
        prop_assert_eq!(s.len() % 16, 0);
        prop_assert_eq!(decode(&s).unwrap(), v);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn damaged_streams_never_panic(v in values(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let s = encode(&v).unwrap();
        let _ = decode(&s[..cut.index(s.len() + 1)]);
        let mut d = s.clone();
        let i = flip.index(d.len());
        d[i] ^= 0x5a;
        let _ = decode(&d);
    }
}

#[test]
fn out_of_range_values_are_errors() {
    assert_eq!(encode(&[0, 256]), Err(CodecError::ValueOutOfRange { index: 1, value: 256 }));
    assert_eq!(encode(&[-256]), Err(CodecError::ValueOutOfRange { index: 0, value: -256 }));
}

#[test]
fn truncated_stream_reports_bit_offset() {
    let v: Vec<i16> = (0..500).map(|i| (i % 37) as i16 - 18).collect();
    let s = encode(&v).unwrap();
    let err = decode(&s[..5]).unwrap_err();
    match err {
        CodecError::Truncated { bit, .. } => assert!(bit <= 40, "offset {bit} beyond the 40 bits given"),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn empty_input_is_padding_only() {
    let s = encode(&[]).unwrap();
    assert_eq!(s, vec![0xFF; 16]);
    assert_eq!(decode(&s).unwrap(), Vec::<i16>::new());
}

#[test]
fn concatenated_streams_decode_in_order() {
    let a: Vec<i16> = (0..300).map(|i| (i % 11) as i16 - 5).collect();
    let b: Vec<i16> = (0..200).map(|i| if i % 4 == 0 { 9 } else { 0 }).collect();
    let mut s = encode(&a).unwrap();
    s.extend(encode(&b).unwrap());
    let mut want = a;
    want.extend(b);
    assert_eq!(decode(&s).unwrap(), want);
}

#[test]
fn first_slice_without_palette_is_corrupt() {
    // ZDIV=6, SLICELEN=0, WDIV=0, WTRUNC=0, NEWPAL=0, then padding.
    let bytes = [0x06, 0x00, 0x00, 0xFF];
    assert!(matches!(decode(&bytes), Err(CodecError::Corrupt { bit: 0, .. })));
}
