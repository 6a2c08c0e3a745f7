//! The Ethos-U weight stream codec: encode and decode throughput on a 1M-value, 75%-pruned,
//! bell-shaped int8 tensor (criterion reports MB/s of int8 weights).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use npuc_npu::codec::{decode, encode};

/// Number of weights in the benchmark tensor.
const N: usize = 1 << 20;

/// Deterministic pruned weights; a xorshift generator keeps the bench free of extra deps.
fn weights() -> Vec<i16> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..N)
        .map(|_| {
            let r = next();
            if r % 4 != 0 {
                return 0;
            }
            // Sum of four uniform bytes, centred: roughly bell-shaped in −127..=127.
            let sum: i32 = (0..4).map(|i| ((r >> (8 + 8 * i)) & 0xFF) as i32 - 128).sum();
            (sum / 4).clamp(-127, 127) as i16
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let w = weights();
    let stream = encode(&w).expect("encodable");
    let mut group = c.benchmark_group("codec_1M_pruned75");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(N as u64));
    group.bench_function("encode", |b| b.iter(|| encode(&w).expect("encodable")));
    group.bench_function("decode", |b| b.iter(|| decode(&stream).expect("decodable")));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
