//! The weight stream decoder. It reads slices until the data ends, exactly as the bit layout
//! in docs/ethos-u-weight-stream.md describes, and reports any truncation or impossible field
//! with its bit offset instead of panicking.

use super::bits::BitReader;
use super::{CodecError, MAX_WDIV, MAX_ZDIV, WDIV_UNCOMPRESSED, ZDIV_DISABLE, ZDIV_EOS};

/// Upper bound on decoded values per stream; far above any layer, it keeps a corrupt stream
/// (whose zero runs can claim huge lengths) from exhausting memory.
const MAX_DECODED: usize = 1 << 26;

/// Largest weight index a valid stream can hold: a sign-magnitude 9-bit value (≤ 511) plus
/// the palette size (≤ 32).
const MAX_INDEX: u32 = 511 + 32;

/// Unary positions per chunk of the weight stream.
const W_CHUNK: usize = 12;

/// Palette state, which persists across slices until a slice sets NEWPAL.
#[derive(Debug, Clone)]
struct Palette {
    /// Number of entries (0 = no palette).
    size: u32,
    /// Bits per entry, also the uncompressed width when there is no palette.
    bits: u32,
    /// Offset subtracted from direct (non-palette) sign-magnitude values.
    direct_offset: u32,
    /// Entries in sign-magnitude form.
    lut: [u32; 32],
    /// Whether the slice that defined it used a zero-run stream.
    zero_runs: bool,
}

/// Decodes one or more concatenated weight streams into their signed 9-bit values.
///
/// Truncated or corrupt input yields an error naming the field and bit offset.
pub fn decode(stream: &[u8]) -> Result<Vec<i16>, CodecError> {
    let mut r = BitReader::new(stream);
    let mut out = Vec::new();
    // After an end-of-stream marker the next slice starts a new stream and must define a
    // palette before any slice can reuse one.
    let mut pal: Option<Palette> = None;
    while r.pos() < r.len_bits() {
        let slice_bit = r.pos();
        let zdiv = r.get(3, "ZDIV")?;
        if zdiv == ZDIV_EOS {
            r.align();
            pal = None;
            continue;
        }
        if zdiv > MAX_ZDIV && zdiv != ZDIV_DISABLE {
            return Err(corrupt(slice_bit, format!("ZDIV {zdiv} is reserved")));
        }
        decode_slice(&mut r, zdiv, &mut pal, &mut out, slice_bit)?;
    }
    Ok(out)
}

/// Builds a `Corrupt` error.
fn corrupt(bit: usize, what: String) -> CodecError {
    CodecError::Corrupt { bit, what }
}

/// Decodes the slice whose ZDIV field was just read, appending its values to `out`.
fn decode_slice(
    r: &mut BitReader<'_>,
    zdiv: u32,
    pal: &mut Option<Palette>,
    out: &mut Vec<i16>,
    slice_bit: usize,
) -> Result<(), CodecError> {
    let zero_runs = zdiv != ZDIV_DISABLE;
    let nvalues = r.get(15, "SLICELEN")? as usize + 1;
    let wdiv = r.get(3, "WDIV")?;
    let trunc = r.get(1, "WTRUNC")? == 1;
    let new_palette = r.get(1, "NEWPAL")? == 1;
    if new_palette {
        let direct_offset = r.get(5, "DIROFS")?;
        let field = r.get(5, "PALSIZE")?;
        // PALSIZE holds size − 1, except that 0 means "no palette": a one-entry palette
        // cannot be expressed.
        let size = if field > 0 { field + 1 } else { 0 };
        let bits = r.get(3, "PALBITS")? + 2;
        let mut lut = [0u32; 32];
        for e in lut.iter_mut().take(size as usize) {
            *e = r.get(bits, "PALETTE")?;
        }
        *pal = Some(Palette { size, bits, direct_offset, lut, zero_runs });
    }
    let Some(p) = pal.as_ref() else {
        return Err(corrupt(slice_bit, "first slice of a stream does not define a palette (NEWPAL=0)".into()));
    };
    if p.zero_runs != zero_runs {
        // The palette excludes zero when zero runs are on, so a slice may only switch mode
        // together with a new palette.
        return Err(corrupt(slice_bit, "slice switches zero-run mode without a new palette".into()));
    }
    let (uncompressed, wdiv) = if wdiv == WDIV_UNCOMPRESSED {
        let width = if p.size > 0 { u32::BITS - (p.size - 1).leading_zeros() } else { p.bits };
        (true, width)
    } else if wdiv > MAX_WDIV {
        return Err(corrupt(slice_bit, format!("WDIV {wdiv} is reserved")));
    } else {
        (false, wdiv)
    };
    let w_max_symbols = if uncompressed && wdiv > 5 { 8 } else { W_CHUNK };
    let z_unary_len: u32 = if zdiv < 3 { 12 } else { 8 };
    // With a new palette the zero-run stream also carries the run before the first weight.
    let z_nvalues = nvalues + usize::from(new_palette);

    let mut w_value = vec![0u32; nvalues];
    let mut z_value = if zero_runs { vec![0usize; z_nvalues] } else { Vec::new() };
    let (mut w_pos, mut z_pos) = (0usize, 0usize);
    let (mut w_prev_pos, mut z_prev_pos) = (0usize, 0usize);
    let (mut w_carry, mut z_carry) = (0u32, 0usize);
    let mut w_q = [0u32; W_CHUNK];
    let mut z_q = [0usize; W_CHUNK];
    let (mut w_prev_q, mut z_prev_q) = ([0u32; W_CHUNK], [0usize; W_CHUNK]);
    let (mut w_prev_n, mut z_prev_n) = (0usize, 0usize);
    let (mut w_prev_enable, mut z_prev_enable) = (false, false);
    loop {
        // Flow control: the weight stream may run at most 8 symbols ahead of the zero-run
        // stream, and the zero-run stream never runs ahead of the weights.
        let balance = if zero_runs { w_pos as i64 - z_pos as i64 } else { 0 };
        let w_enable = (balance < 8 || !zero_runs) && w_pos < nvalues;
        let z_enable = balance >= 0 && zero_runs && z_pos < z_nvalues;
        let mut w_unary0 = 0u32;
        if w_enable && !uncompressed {
            w_unary0 = r.get(W_CHUNK as u32, "WUNARY0")?;
        }
        let mut z_n = 0usize;
        if z_enable {
            let bit = r.pos();
            let z_unary = r.get(z_unary_len, "ZUNARY")?;
            let mut cnt = z_carry;
            for i in 0..z_unary_len {
                if z_unary & (1 << i) != 0 {
                    cnt += 1;
                } else {
                    z_q[z_n] = cnt;
                    z_n += 1;
                    cnt = 0;
                }
            }
            if cnt > MAX_DECODED {
                return Err(corrupt(bit, "zero run too long".into()));
            }
            z_carry = cnt;
            z_pos += z_n;
        }
        let mut w_n = 0usize;
        if w_enable {
            let bit = r.pos();
            let ones = (w_unary0 & ((1 << w_max_symbols) - 1)).count_ones();
            let mut w_unary1 = r.get(ones, "WUNARY1")?;
            let mut cnt = w_carry;
            for i in 0..w_max_symbols {
                let mut code = 0;
                if w_unary0 & (1 << i) != 0 {
                    code = if w_unary1 & 1 != 0 { 2 } else { 1 };
                    w_unary1 >>= 1;
                }
                cnt += code;
                if code < 2 || trunc {
                    w_q[w_n] = cnt;
                    w_n += 1;
                    cnt = 0;
                }
            }
            if cnt > MAX_INDEX {
                return Err(corrupt(bit, "weight quotient too large".into()));
            }
            w_carry = cnt;
            w_pos += w_n;
        }
        if w_prev_enable {
            for &q in w_prev_q.iter().take(w_prev_n) {
                if w_prev_pos >= nvalues {
                    break;
                }
                let bit = r.pos();
                let rem = r.get(wdiv, "WREMAIN")?;
                let v = (q << wdiv) + rem;
                if v > MAX_INDEX {
                    return Err(corrupt(bit, format!("weight index {v} out of range")));
                }
                w_value[w_prev_pos] = v;
                w_prev_pos += 1;
            }
        }
        if z_prev_enable {
            for &q in z_prev_q.iter().take(z_prev_n) {
                if z_prev_pos >= z_nvalues {
                    break;
                }
                let rem = r.get(zdiv, "ZREMAIN")? as usize;
                z_value[z_prev_pos] = (q << zdiv) + rem;
                z_prev_pos += 1;
            }
        }
        w_prev_enable = w_enable;
        w_prev_n = w_n;
        w_prev_q = w_q;
        z_prev_enable = z_enable;
        z_prev_n = z_n;
        z_prev_q = z_q;
        if !(w_prev_enable || z_prev_enable) {
            break;
        }
    }

    // Interleave: [leading run], then each weight followed by its run.
    let total: usize = nvalues.saturating_add(z_value.iter().fold(0usize, |a, &z| a.saturating_add(z)));
    if out.len().saturating_add(total) > MAX_DECODED {
        return Err(corrupt(slice_bit, format!("slice decodes to {total} values, more than {MAX_DECODED}")));
    }
    out.reserve(total);
    let mut z_iter = z_value.iter();
    if zero_runs && new_palette {
        if let Some(&z) = z_iter.next() {
            out.resize(out.len() + z, 0);
        }
    }
    for &idx in &w_value {
        let sm = if idx < p.size { p.lut[idx as usize] } else { idx - p.size + p.direct_offset };
        let mag = (sm >> 1) as i16;
        if mag > super::MAX_VALUE {
            return Err(corrupt(slice_bit, format!("decoded magnitude {mag} exceeds 255")));
        }
        out.push(if sm & 1 != 0 { -mag } else { mag });
        if zero_runs {
            if let Some(&z) = z_iter.next() {
                out.resize(out.len() + z, 0);
            }
        }
    }
    Ok(())
}
