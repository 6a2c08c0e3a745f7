//! The weight stream encoder: npuc's own choice of zero-run mode, palette and per-chunk
//! Golomb–Rice parameters, written in the layout of docs/ethos-u-weight-stream.md.
//!
//! Plan: (1) for each mode (plain, zero runs) pick the palette that minimises an estimate of
//! the stream size; (2) cut the weight stream into chunks of [`CHUNK`] values, price every
//! (weight option, zero-run option) pair per chunk, and find the cheapest assignment with a
//! Viterbi pass where changing the pair costs a new slice header; (3) keep the cheaper mode
//! and emit its slices, interleaving the two Golomb–Rice streams exactly as the decoder's
//! flow control consumes them.

use super::bits::BitWriter;
use super::{
    CodecError, MAX_PALETTE, MAX_SLICE_VALUES, MAX_VALUE, MAX_WDIV, MAX_ZDIV, MIN_VALUE, STREAM_ALIGN,
    WDIV_UNCOMPRESSED, ZDIV_DISABLE, ZDIV_EOS,
};

/// Weights per chunk of the parameter search; a divisor of [`MAX_SLICE_VALUES`] so forced
/// slice cuts fall on chunk boundaries.
const CHUNK: usize = 64;
/// Per-weight cost standing for "impossible" in the chunk sums: 64 of them still fit a u32,
/// and no possible weight costs more than 32 bits.
const CHUNK_INF: u32 = 1 << 24;
/// Filters at least this long plan both modes on two threads (below it the thread hand-off
/// costs more than it saves).
const PARALLEL_MIN_VALUES: usize = 4096;
/// Bits of a slice header without palette: ZDIV, SLICELEN, WDIV, WTRUNC, NEWPAL.
const SLICE_HEADER_BITS: u64 = 3 + 15 + 3 + 1 + 1;
/// Cost standing for "option not usable for this chunk".
const INF: u64 = u64::MAX / 4;

/// How the weight indices of a slice are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WOpt {
    /// Golomb–Rice with divisor 2^k; `trunc` limits the quotient to 0..=2 in one unary code.
    Grc { k: u32, trunc: bool },
    /// Fixed-width indices.
    Uncompressed,
}

/// Every weight option, in a fixed order used as the DP state index.
const W_OPTS: [WOpt; 13] = [
    WOpt::Grc { k: 0, trunc: false },
    WOpt::Grc { k: 1, trunc: false },
    WOpt::Grc { k: 2, trunc: false },
    WOpt::Grc { k: 3, trunc: false },
    WOpt::Grc { k: 4, trunc: false },
    WOpt::Grc { k: 5, trunc: false },
    WOpt::Grc { k: 0, trunc: true },
    WOpt::Grc { k: 1, trunc: true },
    WOpt::Grc { k: 2, trunc: true },
    WOpt::Grc { k: 3, trunc: true },
    WOpt::Grc { k: 4, trunc: true },
    WOpt::Grc { k: 5, trunc: true },
    WOpt::Uncompressed,
];

/// A Golomb-Rice cost standing for "impossible" in the palette search's (saturating) sums:
/// a sum holding one stays at or above it, while possible sums (below 2^32 weights x 39
/// bits) stay below.
const GRC_INF: u64 = 1 << 40;

/// Number of zero-run Golomb–Rice options (k = 0..=3).
const NZ: usize = MAX_ZDIV as usize + 1;

/// A palette and the index mapping it induces.
#[derive(Debug, Clone)]
struct PaletteChoice {
    /// Entries in sign-magnitude form, most frequent first.
    lut: Vec<u32>,
    /// Bits per entry (2..=9); with no palette, the uncompressed index width.
    bits: u32,
    /// Subtracted from direct sign-magnitude values.
    direct_offset: u32,
    /// Sign-magnitude value → index.
    index_of: Vec<u32>,
    /// Width of an uncompressed index, if every index fits it.
    uncompressed_width: Option<u32>,
}

/// One mode's complete plan: what goes into each stream and the chosen options.
#[derive(Debug)]
struct Plan {
    /// Whether zeros travel as run lengths.
    zero_runs: bool,
    /// Weight-stream indices.
    idx: Vec<u32>,
    /// Zero runs: `runs[0]` precedes the first weight, `runs[i + 1]` follows weight i.
    runs: Vec<u32>,
    /// The palette.
    pal: PaletteChoice,
    /// Per chunk: (index into `W_OPTS`, zero-run k).
    chunk_opts: Vec<(usize, u32)>,
    /// Estimated total bits.
    bits: u64,
}

/// Sign-magnitude form of a value: `(|v| << 1) | sign`.
fn sign_magnitude(v: i16) -> u32 {
    (u32::from(v.unsigned_abs()) << 1) | u32::from(v < 0)
}

/// Bits needed to hold `v` (0 for 0).
fn bit_width(v: u32) -> u32 {
    u32::BITS - v.leading_zeros()
}

/// Bits one index costs under an option, or `INF` if the option cannot code it.
fn w_cost(opt: WOpt, idx: u32, uncompressed_width: Option<u32>) -> u64 {
    match opt {
        WOpt::Grc { k, trunc } => {
            let q = idx >> k;
            if trunc {
                if q > 2 {
                    INF
                } else {
                    u64::from(k) + if q == 0 { 1 } else { 2 }
                }
            } else {
                u64::from(q + 1 + k)
            }
        }
        WOpt::Uncompressed => match uncompressed_width {
            Some(w) if bit_width(idx) <= w => u64::from(w),
            _ => INF,
        },
    }
}

/// Encodes signed 9-bit values (−255..=255) into one compressed weight stream, padded with
/// 0xFF to a multiple of 16 bytes. An empty input gives 16 bytes of end-of-stream padding.
pub fn encode(values: &[i16]) -> Result<Vec<u8>, CodecError> {
    if let Some((index, &v)) = values.iter().enumerate().find(|(_, v)| !(MIN_VALUE..=MAX_VALUE).contains(*v)) {
        return Err(CodecError::ValueOutOfRange { index, value: i32::from(v) });
    }
    let mut w = BitWriter::with_capacity(values.len() + 64);
    if !values.is_empty() {
        // The two modes are planned independently; on large filters that is worth a thread.
        let plan = if values.contains(&0) {
            let (plain, zr) = if values.len() >= PARALLEL_MIN_VALUES {
                rayon::join(|| plan(values, false), || plan(values, true))
            } else {
                (plan(values, false), plan(values, true))
            };
            if zr.bits < plain.bits {
                zr
            } else {
                plain
            }
        } else {
            plan(values, false)
        };
        emit(&mut w, &plan);
    }
    w.put(3, ZDIV_EOS);
    let mut bytes = w.finish_ones();
    let padded = bytes.len().div_ceil(STREAM_ALIGN).max(1) * STREAM_ALIGN;
    bytes.resize(padded, 0xFF);
    Ok(bytes)
}

/// Builds the plan of one mode.
fn plan(values: &[i16], zero_runs: bool) -> Plan {
    let mut sm: Vec<u32> = Vec::with_capacity(values.len());
    let mut runs = Vec::new();
    if zero_runs {
        let mut run = 0u32;
        for &v in values {
            if v == 0 {
                run += 1;
            } else {
                runs.push(run);
                sm.push(sign_magnitude(v));
                run = 0;
            }
        }
        runs.push(run);
        if sm.is_empty() {
            // A slice holds at least one weight; an all-zero stream carries one "−0"
            // (sign-magnitude 1), which decodes to 0, after an empty leading run.
            sm.push(1);
            runs = vec![0, run - 1];
        }
    } else {
        sm.extend(values.iter().map(|&v| sign_magnitude(v)));
    }
    let mut hist = vec![0u64; 512];
    for &s in &sm {
        hist[s as usize] += 1;
    }
    let pal = choose_palette(&hist);
    let idx: Vec<u32> = sm.iter().map(|&s| pal.index_of[s as usize]).collect();
    let (chunk_opts, dp_bits) = choose_options(&idx, &runs, zero_runs, &pal);
    let bits = dp_bits + 13 + pal.lut.len() as u64 * u64::from(pal.bits);
    Plan { zero_runs, idx, runs, pal, chunk_opts, bits }
}

/// Builds the palette of `n` most frequent values (`n` = 0 or 2..=32).
fn palette_of(order: &[u32], hist: &[u64], n: usize) -> PaletteChoice {
    let mut lut: Vec<u32> = order.iter().copied().take(n).collect();
    if n == 2 && lut.len() == 1 {
        // A one-entry palette cannot be expressed; pad with an unused entry.
        lut.push(if lut[0] == 0 { 1 } else { 0 });
    }
    let mut in_pal = [false; 512];
    for &e in &lut {
        in_pal[e as usize] = true;
    }
    // Direct values are coded as sm − DIROFS + palsize, so DIROFS may be at most the smallest
    // direct value present (and fits 5 bits).
    let min_direct = (0..512u32).find(|&s| hist[s as usize] > 0 && !in_pal[s as usize]);
    let direct_offset = min_direct.map_or(0, |m| m.min(31));
    let size = lut.len() as u32;
    let mut index_of = vec![0u32; 512];
    for (s, slot) in index_of.iter_mut().enumerate() {
        let s = s as u32;
        *slot = if s >= direct_offset { s - direct_offset + size } else { 0 };
    }
    for (i, &e) in lut.iter().enumerate() {
        index_of[e as usize] = i as u32;
    }
    let max_idx = (0..512).filter(|&s| hist[s] > 0).map(|s| index_of[s]).max().unwrap_or(0);
    let (bits, uncompressed_width) = if lut.is_empty() {
        let b = bit_width(max_idx).clamp(2, 9);
        (b, (bit_width(max_idx) <= b).then_some(b))
    } else {
        let b = lut.iter().map(|&e| bit_width(e)).max().unwrap_or(0).clamp(2, 9);
        let width = bit_width(size - 1);
        (b, (bit_width(max_idx) <= width).then_some(width))
    };
    PaletteChoice { lut, bits, direct_offset, index_of, uncompressed_width }
}

/// Picks the palette size minimising palette bits plus the cheapest single weight option.
fn choose_palette(hist: &[u64]) -> PaletteChoice {
    let mut order: Vec<u32> = (0..512u32).filter(|&s| hist[s as usize] > 0).collect();
    // Most frequent first; ties to the smaller value so the order is deterministic.
    order.sort_by_key(|&s| (std::cmp::Reverse(hist[s as usize]), s));
    let mut best: Option<(u64, PaletteChoice)> = None;
    let max_n = order.len().min(MAX_PALETTE);
    let sizes = std::iter::once(0).chain(2..=max_n.max(2));
    // Golomb-Rice bits per index for the first 12 options (they do not depend on the
    // palette), impossible codes at GRC_INF; the uncompressed option is priced per palette.
    let grc: Vec<[u64; 12]> = (0..512 + MAX_PALETTE as u32)
        .map(|i| std::array::from_fn(|o| w_cost(W_OPTS[o], i, None).min(GRC_INF)))
        .collect();
    for n in sizes {
        let pal = palette_of(&order, hist, n);
        // Every present value has its own index (palette entries and direct values never
        // share one), so the data cost is a sum over the distinct values.
        let mut sums = [0u64; 12];
        let mut plain = 0u64;
        for &s in &order {
            let (c, i) = (hist[s as usize], pal.index_of[s as usize]);
            for (x, &bits) in sums.iter_mut().zip(&grc[i as usize]) {
                *x = x.saturating_add(c.saturating_mul(bits));
            }
            plain = plain.saturating_add(c.saturating_mul(w_cost(WOpt::Uncompressed, i, pal.uncompressed_width)));
        }
        let grc_best = sums.iter().map(|&x| if x >= GRC_INF { INF } else { x }).min().unwrap_or(INF);
        let data = grc_best.min(plain);
        let total = data.saturating_add(pal.lut.len() as u64 * u64::from(pal.bits));
        if best.as_ref().is_none_or(|(b, _)| total < *b) {
            best = Some((total, pal));
        }
    }
    match best {
        Some((_, pal)) => pal,
        None => palette_of(&order, hist, 0),
    }
}

/// Viterbi over chunks: state = (weight option, zero-run k); staying costs nothing extra,
/// switching costs a slice header. Returns the option per chunk and the total bits
/// (headers included, palette excluded).
fn choose_options(idx: &[u32], runs: &[u32], zero_runs: bool, pal: &PaletteChoice) -> (Vec<(usize, u32)>, u64) {
    let nchunks = idx.len().div_ceil(CHUNK);
    let nz = if zero_runs { NZ } else { 1 };
    let nstates = W_OPTS.len() * nz;
    let mut cost = vec![INF; nstates];
    let mut back: Vec<Vec<u16>> = Vec::with_capacity(nchunks);
    let mut chunk_cost = vec![0u64; nstates];
    let mut wc = [0u64; 13];
    let mut zc = [0u64; NZ];
    // Bits of every index under every weight option, looked up per weight in the loop below
    // (the encoder's hot path: one row per index, one column per option). Rows are 16 u32
    // wide with impossible options at CHUNK_INF, so a chunk's sums are plain vector adds.
    let max_idx = idx.iter().copied().max().unwrap_or(0) as usize;
    let table: Vec<[u32; 16]> = (0..=max_idx)
        .map(|i| {
            std::array::from_fn(|o| match W_OPTS.get(o) {
                Some(&opt) => {
                    u32::try_from(w_cost(opt, i as u32, pal.uncompressed_width)).map_or(CHUNK_INF, |c| c.min(CHUNK_INF))
                }
                None => CHUNK_INF,
            })
        })
        .collect();
    for c in 0..nchunks {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(idx.len());
        let mut sums = [0u32; 16];
        for &i in &idx[lo..hi] {
            let row = &table[i as usize];
            for j in 0..16 {
                sums[j] += row[j];
            }
        }
        for (x, &s) in wc.iter_mut().zip(&sums) {
            // A sum past CHUNK_INF holds an impossible weight: the option cannot code the chunk.
            *x = if s >= CHUNK_INF { INF } else { u64::from(s) };
        }
        zc.iter_mut().for_each(|x| *x = 0);
        if zero_runs {
            // Chunk c carries the runs after its weights; the first also the leading run.
            let rlo = if c == 0 { 0 } else { lo + 1 };
            for &r in &runs[rlo..=hi] {
                for (k, x) in zc.iter_mut().enumerate() {
                    *x += u64::from((r >> k) + 1) + k as u64;
                }
            }
        }
        for s in 0..nstates {
            chunk_cost[s] = wc[s / nz].saturating_add(zc[s % nz]);
        }
        // Cheapest predecessor overall, for a switch.
        let (best_s, best_c) = cost.iter().copied().enumerate().min_by_key(|&(_, c)| c).unwrap_or((0, INF));
        // A new slice starts at chunk 0 and every MAX_SLICE_VALUES weights anyway.
        let forced = lo % MAX_SLICE_VALUES == 0;
        let mut b = vec![0u16; nstates];
        let mut next = vec![INF; nstates];
        for s in 0..nstates {
            let switch = if c == 0 { 0 } else { best_c.saturating_add(SLICE_HEADER_BITS) };
            let stay = if forced { cost[s].saturating_add(SLICE_HEADER_BITS) } else { cost[s] };
            let (from, base) = if c > 0 && stay <= switch { (s, stay) } else { (best_s, switch) };
            let base = if c == 0 { SLICE_HEADER_BITS } else { base };
            next[s] = base.saturating_add(chunk_cost[s]);
            b[s] = from as u16;
        }
        cost = next;
        back.push(b);
    }
    let (mut s, total) = cost.iter().copied().enumerate().min_by_key(|&(_, c)| c).unwrap_or((0, INF));
    let mut opts = vec![(0usize, 0u32); nchunks];
    for c in (0..nchunks).rev() {
        opts[c] = (s / nz, if zero_runs { (s % nz) as u32 } else { ZDIV_DISABLE });
        s = back[c][s] as usize;
    }
    (opts, total)
}

/// Writes every slice of a plan.
fn emit(w: &mut BitWriter, p: &Plan) {
    let mut start = 0usize;
    let mut first = true;
    while start < p.idx.len() {
        let opt = p.chunk_opts[start / CHUNK];
        let mut end = start;
        while end < p.idx.len() && p.chunk_opts[end / CHUNK] == opt && end - start < MAX_SLICE_VALUES {
            end = (end + CHUNK).min(p.idx.len());
        }
        emit_slice(w, p, start, end, W_OPTS[opt.0], opt.1, first);
        first = false;
        start = end;
    }
}

/// Writes the slice holding weights `start..end` (and their runs).
fn emit_slice(w: &mut BitWriter, p: &Plan, start: usize, end: usize, wopt: WOpt, zdiv: u32, new_palette: bool) {
    let nvalues = end - start;
    let (wdiv_field, trunc, wdiv, uncompressed) = match wopt {
        WOpt::Grc { k, trunc } => (k, trunc, k, false),
        WOpt::Uncompressed => (WDIV_UNCOMPRESSED, false, p.pal.uncompressed_width.unwrap_or(9), true),
    };
    debug_assert!(wdiv_field <= MAX_WDIV || wdiv_field == WDIV_UNCOMPRESSED);
    w.put(3, if p.zero_runs { zdiv } else { ZDIV_DISABLE });
    w.put(15, (nvalues - 1) as u32);
    w.put(3, wdiv_field);
    w.put(1, u32::from(trunc));
    w.put(1, u32::from(new_palette));
    if new_palette {
        let pal = &p.pal;
        w.put(5, pal.direct_offset);
        w.put(5, (pal.lut.len() as u32).saturating_sub(1));
        w.put(3, pal.bits - 2);
        for &e in &pal.lut {
            w.put(pal.bits, e);
        }
    }
    let idx = &p.idx[start..end];
    // Weight unary codes, one per position: 0 ends a symbol, 1 adds one and ends it, 2 adds
    // two and continues (in truncated mode every code ends a symbol).
    let mut w_codes: Vec<u8> = Vec::new();
    if !uncompressed {
        w_codes.reserve(idx.len());
        for &i in idx {
            let q = i >> wdiv;
            if trunc {
                w_codes.push(q as u8);
            } else {
                w_codes.extend(std::iter::repeat_n(2u8, (q / 2) as usize));
                w_codes.push((q % 2) as u8);
            }
        }
    }
    let runs: &[u32] = if p.zero_runs {
        if new_palette {
            &p.runs[start..=end]
        } else {
            &p.runs[start + 1..=end]
        }
    } else {
        &[]
    };
    let z_nvalues = runs.len();
    // Zero-run unary bits: q ones then a zero.
    let mut z_bits: Vec<bool> = Vec::new();
    for &r in runs {
        z_bits.extend(std::iter::repeat_n(true, (r >> zdiv) as usize));
        z_bits.push(false);
    }
    let w_max_symbols = if uncompressed && wdiv > 5 { 8 } else { 12 };
    let z_unary_len = if zdiv < 3 { 12 } else { 8 };
    let wmask = (1u32 << wdiv) - 1;
    let zmask = (1u32 << zdiv) - 1;
    let (mut wc, mut zc) = (0usize, 0usize);
    let (mut w_pos, mut z_pos) = (0usize, 0usize);
    // Symbols decoded in the previous chunk (first symbol, count); their remainders follow
    // the next chunk's unary parts.
    let mut w_prev: Option<(usize, usize)> = None;
    let mut z_prev: Option<(usize, usize)> = None;
    loop {
        let balance = if p.zero_runs { w_pos as i64 - z_pos as i64 } else { 0 };
        let w_enable = (balance < 8 || !p.zero_runs) && w_pos < nvalues;
        let z_enable = balance >= 0 && p.zero_runs && z_pos < z_nvalues;
        let mut w_cur = None;
        let (mut unary1, mut n1) = (0u32, 0u32);
        if w_enable {
            let mut nsym = w_max_symbols;
            if !uncompressed {
                let mut unary0 = 0u32;
                nsym = 0;
                for i in 0..12 {
                    let code = w_codes.get(wc + i).copied().unwrap_or(0);
                    if code > 0 {
                        unary0 |= 1 << i;
                        if code == 2 {
                            unary1 |= 1 << n1;
                        }
                        n1 += 1;
                    }
                    if code < 2 || trunc {
                        nsym += 1;
                    }
                }
                wc += 12;
                w.put(12, unary0);
            }
            w_cur = Some((w_pos, nsym));
            w_pos += nsym;
        }
        let mut z_cur = None;
        if z_enable {
            let mut unary = 0u32;
            let mut nsym = 0;
            for i in 0..z_unary_len {
                if z_bits.get(zc + i).copied().unwrap_or(false) {
                    unary |= 1 << i;
                } else {
                    nsym += 1;
                }
            }
            zc += z_unary_len;
            w.put(z_unary_len as u32, unary);
            z_cur = Some((z_pos, nsym));
            z_pos += nsym;
        }
        if w_enable && !uncompressed {
            w.put(n1, unary1);
        }
        if let Some((s, n)) = w_prev {
            for &i in idx.iter().take((s + n).min(nvalues)).skip(s) {
                w.put(wdiv, i & wmask);
            }
        }
        if let Some((s, n)) = z_prev {
            for &r in runs.iter().take((s + n).min(z_nvalues)).skip(s) {
                w.put(zdiv, r & zmask);
            }
        }
        w_prev = w_cur;
        z_prev = z_cur;
        if w_prev.is_none() && z_prev.is_none() {
            break;
        }
    }
}
