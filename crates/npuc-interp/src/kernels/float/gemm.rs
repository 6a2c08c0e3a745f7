//! The matrix product behind CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV:
//! `C = clamp(A · Bᵀ + bias)` with B stored like weights, `[out, in]`.
//!
//! Why not a general-purpose sgemm (matrixmultiply): the products of edge models are small
//! and skinny (a 48×48 feature map times 8 to 48 output channels, or 9 pixels times 1280
//! channels), where packing both operands costs as much as multiplying; its own thread
//! pool ignores the interpreter's; and its fused multiply-adds make results depend on the
//! CPU. So:
//! - only one operand is packed, into panels of [`Isa::panel`] rows laid out
//!   `[k][panel]`: the weights when there are more pixels than channels, else the pixels
//!   (`pack_weights`); the other operand's rows are read in place (the input pixels of a
//!   1×1 convolution, im2col rows, or the weights);
//! - a register tile of up to 12 rows × one panel accumulates every output over `k` in
//!   order, starting from 0, with a multiply then an add (never fused): per output this is
//!   exactly TFLite's reference loop `total += input * filter`, and AVX-512, AVX and the
//!   portable version give identical bits;
//! - the bias is added after the sum and the activation clamp applied in the tile, before
//!   the results are stored (`ActivationFunctionWithMinMax(total + bias)`).

use std::sync::OnceLock;

use super::simd::lanes4;
use super::Clamp;

/// The instruction set the kernels run on, detected once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx,
    Portable,
}

impl Isa {
    pub(super) fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Isa::Avx512;
                }
                if std::arch::is_x86_feature_detected!("avx") {
                    return Isa::Avx;
                }
            }
            Isa::Portable
        })
    }

    /// Every instruction set this CPU runs, best first (tests compare them).
    #[cfg(test)]
    pub(super) fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx") {
                v.push(Isa::Avx);
            }
        }
        v.push(Isa::Portable);
        v
    }

    /// Output channels per packed panel.
    fn panel(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::W,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx => avx::W,
            Isa::Portable => portable::W,
        }
    }
}

/// The rows of a matrix packed for the kernels: `n` rows of `k` values, regrouped in panels
/// of `isa.panel()` rows (a last panel of half that width when the rest fits), panel data
/// laid out `[kk][row within panel]` and zero-filled past `n`.
///
/// Either operand of a product can be packed: the weights (`[out, in]` rows) when the
/// product has more pixels than output channels, else the pixels (`[pixel, in]` rows) —
/// whichever is smaller, since packing is the part that is not multiply-adds.
pub(super) struct Packed {
    isa: Isa,
    n: usize,
    k: usize,
    data: Vec<f32>,
    /// `(first row, width, data offset)` per panel.
    panels: Vec<(usize, usize, usize)>,
}

impl Packed {
    /// Packs rows `0..n` of `b` (row `j` at `b[j·ldb..j·ldb + k]`) for this CPU.
    pub(super) fn new(b: &[f32], ldb: usize, n: usize, k: usize) -> Packed {
        Packed::for_isa(Isa::detect(), b, ldb, n, k)
    }

    /// Packs for the kernels of `isa`, which must run on this CPU.
    pub(super) fn for_isa(isa: Isa, b: &[f32], ldb: usize, n: usize, k: usize) -> Packed {
        let wide = isa.panel();
        let narrow = wide / 2;
        let mut panels = Vec::with_capacity(n.div_ceil(narrow));
        let (mut j, mut off) = (0, 0);
        while j < n {
            let w = if n - j <= narrow { narrow } else { wide };
            panels.push((j, w, off));
            j += w;
            off += w * k;
        }
        let mut data = vec![0.0f32; off];
        assert!(n == 0 || k == 0 || b.len() >= (n - 1) * ldb + k, "pack: operand too short");
        for &(j0, w, off) in &panels {
            let cols = (n - j0).min(w);
            let panel = &mut data[off..off + w * k];
            // Blocks of 8 values per row keep the reads sequential and the writes within
            // a few cache lines.
            const KB: usize = 8;
            for k0 in (0..k).step_by(KB) {
                let kn = KB.min(k - k0);
                for j in 0..cols {
                    let src = &b[(j0 + j) * ldb + k0..(j0 + j) * ldb + k0 + kn];
                    for (t, &v) in src.iter().enumerate() {
                        panel[(k0 + t) * w + j] = v;
                    }
                }
            }
        }
        Packed { isa, n, k, data, panels }
    }
}

/// Which operand of `C = A · Bᵀ` (`m × k` times `(n × k)ᵀ`) to pack: `true` for B when
/// that costs no more than packing A and storing the result transposed (each stored
/// value counted as two packed ones; measured on MobileNet's 6×6 and 3×3 layers).
pub(super) fn pack_weights(m: usize, n: usize, k: usize) -> bool {
    n * k <= m * k + 2 * m * n
}

/// `c[i·ldc + j] = clamp(Σ_kk a[i·lda + kk] · B[j][kk] + bias[j])` for `i < m`, `j < b.rows()`,
/// with B packed.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &Packed,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    clamp: Clamp,
) {
    let (n, k) = (b.n, b.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n && ldc >= n, "gemm: C too short");
    assert!(k == 0 || (a.len() >= (m - 1) * lda + k && lda >= k), "gemm: A too short");
    // The bias padded to whole panels (zero without one: TFLite adds 0 then).
    let mut padded = vec![0.0f32; b.panels.last().map_or(0, |&(j, w, _)| j + w)];
    if let Some(bias) = bias {
        padded[..n].copy_from_slice(&bias[..n]);
    }
    let (lo, hi) = clamp.bounds();
    let job = Job {
        transposed: false,
        rows: m,
        cols: n,
        k,
        a: a.as_ptr(),
        lda,
        packed: b,
        bias: padded.as_ptr(),
        c: c.as_mut_ptr(),
        ldc,
        lo,
        hi,
    };
    // SAFETY: the asserts bound every access: rows i < m of A read k values at stride lda
    // and rows of C take n values at stride ldc; panels and the padded bias cover whole
    // panel widths; the ISA was detected on this CPU.
    unsafe { run(&job) }
}

/// The same product with A packed instead (`a.rows()` pixels) and B (`n` rows of `ldb`)
/// read in place: `c[i·ldc + j] = clamp(Σ_kk A[i][kk] · b[j·ldb + kk] + bias[j])`. The tiles
/// compute `Cᵀ` and store it transposed.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_packed_a(
    a: &Packed,
    n: usize,
    b: &[f32],
    ldb: usize,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    clamp: Clamp,
) {
    if a.n == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (a.n - 1) * ldc + n && ldc >= n, "gemm: C too short");
    // SAFETY: C is checked above; the rest is checked by the callee.
    unsafe { gemm_packed_a_raw(a, n, b, ldb, bias, c.as_mut_ptr(), ldc, clamp) }
}

/// [`gemm_packed_a`] writing through a pointer, so that threads can fill disjoint column
/// ranges of one C.
///
/// # Safety
/// `c` must be valid for writes of `c[i·ldc + j]`, `i < a.rows()`, `j < n`, and nothing else
/// may access those elements meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_packed_a_raw(
    a: &Packed,
    n: usize,
    b: &[f32],
    ldb: usize,
    bias: Option<&[f32]>,
    c: *mut f32,
    ldc: usize,
    clamp: Clamp,
) {
    let (m, k) = (a.n, a.k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (b.len() >= (n - 1) * ldb + k && ldb >= k), "gemm: B too short");
    let zeros;
    let bias = match bias {
        Some(b) => &b[..n],
        None => {
            zeros = vec![0.0f32; n];
            &zeros[..]
        }
    };
    let (lo, hi) = clamp.bounds();
    let job = Job {
        transposed: true,
        rows: n,
        cols: m,
        k,
        a: b.as_ptr(),
        lda: ldb,
        packed: a,
        bias: bias.as_ptr(),
        c,
        ldc,
        lo,
        hi,
    };
    // SAFETY: tile rows are rows j < n of b (k values at stride ldb, checked above), tile
    // columns the packed pixels i < m; the caller vouches for C; the bias has n values.
    run(&job)
}

/// One product for the ISA kernels: `rows` rows of `a` (stride `lda`, `k` values each)
/// against the packed operand's `cols` rows. Not transposed: `c[row·ldc + col]`, bias per
/// column (padded to whole panels). Transposed: `c[col·ldc + row]`, bias per row.
struct Job<'a> {
    transposed: bool,
    rows: usize,
    cols: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    packed: &'a Packed,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    lo: f32,
    hi: f32,
}

/// Runs a job on the ISA its operand was packed for.
///
/// # Safety
/// The job's pointers must be valid as its description says.
unsafe fn run(job: &Job<'_>) {
    match job.packed.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::run(job),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx => avx::run(job),
        Isa::Portable => portable::run(job),
    }
}

/// Operands of one register tile: `R` rows of `a` (stride `lda`) against one packed panel.
/// Not transposed: `c[r·ldc + col]` for `col < cols`, bias per column (`bias[col]`, padded).
/// Transposed: `c[col·ldc + r]`, bias per row (`bias[r]`).
struct Tile {
    k: usize,
    a: *const f32,
    lda: usize,
    bp: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    lo: f32,
    hi: f32,
}

/// One implementation per instruction set: `tile::<R, NV, T>` computes R rows × one panel
/// of NV vectors; `run` picks the instance.
macro_rules! gemm_impl {
    (
        $(#[$attr:meta])* mod $name:ident, $(features = $feat:literal,)? lanes = $l:expr, rows = ($mrw:expr, $mrn:expr),
        zero = $zero:path, load = $load:path, store = $store:path, splat = $splat:path,
        add = $add:path, mul = $mul:path, max = $max:path, min = $min:path $(,)?
    ) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[cfg(target_arch = "x86_64")]
            #[allow(unused_imports)]
            use std::arch::x86_64::*;

            /// Width of a wide panel (two vectors).
            pub(super) const W: usize = $l * 2;
            /// Rows of a tile against a wide / a narrow panel (what the registers hold).
            const MR_WIDE: usize = $mrw;
            const MR_NARROW: usize = $mrn;

            $(#[target_feature(enable = $feat)])?
            #[inline]
            unsafe fn tile<const R: usize, const NV: usize, const T: bool>(t: &Tile) {
                let mut acc = [[$zero(); NV]; R];
                let mut rows = [t.a; R];
                for (r, p) in rows.iter_mut().enumerate() {
                    *p = t.a.add(r * t.lda);
                }
                let mut b = t.bp;
                for kk in 0..t.k {
                    let mut bv = [$zero(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = $load(b.add(v * $l));
                    }
                    for r in 0..R {
                        let av = $splat(*rows[r].add(kk));
                        for v in 0..NV {
                            acc[r][v] = $add(acc[r][v], $mul(av, bv[v]));
                        }
                    }
                    b = b.add(NV * $l);
                }
                let (lov, hiv) = ($splat(t.lo), $splat(t.hi));
                for r in 0..R {
                    let mut biasv = [$zero(); NV];
                    for (v, x) in biasv.iter_mut().enumerate() {
                        *x = if T { $splat(*t.bias.add(r)) } else { $load(t.bias.add(v * $l)) };
                    }
                    // max(lo, x) then min(hi, ·) in this operand order pass NaN through,
                    // as TFLite's `std::min(std::max(x, lo), hi)` does.
                    let mut out = [$zero(); NV];
                    for v in 0..NV {
                        out[v] = $min(hiv, $max(lov, $add(acc[r][v], biasv[v])));
                    }
                    if !T && t.cols == NV * $l {
                        let dst = t.c.add(r * t.ldc);
                        for v in 0..NV {
                            $store(dst.add(v * $l), out[v]);
                        }
                    } else {
                        let mut tmp = [[0.0f32; $l]; NV];
                        for v in 0..NV {
                            $store(tmp[v].as_mut_ptr(), out[v]);
                        }
                        let flat = tmp.as_flattened();
                        if T {
                            for (col, &x) in flat[..t.cols].iter().enumerate() {
                                *t.c.add(col * t.ldc + r) = x;
                            }
                        } else {
                            std::ptr::copy_nonoverlapping(flat.as_ptr(), t.c.add(r * t.ldc), t.cols);
                        }
                    }
                }
            }

            /// Runs every tile of a job: row blocks against the wide panels, then against
            /// the narrow panel (if any), each with as many rows as its registers allow.
            $(#[target_feature(enable = $feat)])?
            pub(super) unsafe fn run(job: &Job<'_>) {
                for &(j0, w, off) in &job.packed.panels {
                    let (mr, wide) = if w == W { (MR_WIDE, true) } else { (MR_NARROW, false) };
                    let mut i = 0;
                    while i < job.rows {
                        let r = (job.rows - i).min(mr);
                        let (c, bias) = if job.transposed {
                            (job.c.add(j0 * job.ldc + i), job.bias.add(i))
                        } else {
                            (job.c.add(i * job.ldc + j0), job.bias.add(j0))
                        };
                        let t = Tile {
                            k: job.k,
                            a: job.a.add(i * job.lda),
                            lda: job.lda,
                            bp: job.packed.data.as_ptr().add(off),
                            bias,
                            c,
                            ldc: job.ldc,
                            cols: (job.cols - j0).min(w),
                            lo: job.lo,
                            hi: job.hi,
                        };
                        match (wide, job.transposed) {
                            (true, false) => gemm_impl!(@rows r, 2, false, &t),
                            (true, true) => gemm_impl!(@rows r, 2, true, &t),
                            (false, false) => gemm_impl!(@rows r, 1, false, &t),
                            (false, true) => gemm_impl!(@rows r, 1, true, &t),
                        }
                        i += r;
                    }
                }
            }
        }
    };
    (@rows $r:expr, $nv:literal, $t:literal, $tile:expr) => {
        match $r {
            12 => tile::<12, $nv, $t>($tile),
            11 => tile::<11, $nv, $t>($tile),
            10 => tile::<10, $nv, $t>($tile),
            9 => tile::<9, $nv, $t>($tile),
            8 => tile::<8, $nv, $t>($tile),
            7 => tile::<7, $nv, $t>($tile),
            6 => tile::<6, $nv, $t>($tile),
            5 => tile::<5, $nv, $t>($tile),
            4 => tile::<4, $nv, $t>($tile),
            3 => tile::<3, $nv, $t>($tile),
            2 => tile::<2, $nv, $t>($tile),
            _ => tile::<1, $nv, $t>($tile),
        }
    };
}

/// AVX-512 tiles in inline assembly.
///
/// The AVX-512 intrinsics and `#[target_feature(enable = "avx512f")]` need Rust 1.89 and the
/// workspace supports 1.85, while `asm!` (with `const` operands, 1.82) does not depend on
/// target features; the code only runs after `is_x86_feature_detected!("avx512f")`.
/// A tile sums `acc += a · b` with a separate multiply and add (`vmulps`, `vaddps`), in `k`
/// order from 0, exactly like the other ISAs; with `EPI` it then adds the bias per column
/// and clamps (`vmaxps lo, x` then `vminps hi, y`: `x < lo ? lo : x`, `hi < y ? hi : y`, as
/// TFLite), else it stores the raw sums. Rows go to `dst + r·ldc` (bytes).
/// Registers: `zmm0..zmm11` accumulators, `zmm12..zmm15` for the packed row, the broadcast
/// value and the product; only `zmm0..zmm15`, which the `xmm0..xmm15` clobbers cover.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::asm;

    use super::{Job, Packed};

    /// Width of a wide panel (two 16-lane vectors); a narrow panel has 16.
    pub(super) const W: usize = 32;
    /// Rows of a tile against a wide / a narrow panel.
    const MR_WIDE: usize = 6;
    const MR_NARROW: usize = 12;

    /// Arguments: `k`, `a` (row r at `a + r·lda` bytes), `lda`, packed panel, `dst`, `ldc`
    /// (bytes), bias (one panel's worth), `[lo, hi]`.
    type TileFn = unsafe fn(usize, *const f32, usize, *const f32, *mut f32, usize, *const f32, *const f32);

    /// `$r` rows × 32 columns.
    macro_rules! wide_tile {
        ($name:ident, $r:literal, $epi:literal) => {
            /// # Safety
            /// Rows of `a` hold `k` values, `bp` `32·k`; `dst` rows take 32 values; `bias`
            /// 32 values when `EPI`; AVX-512F present.
            #[allow(clippy::too_many_arguments)]
            unsafe fn $name(
                k: usize,
                a: *const f32,
                lda: usize,
                bp: *const f32,
                dst: *mut f32,
                ldc: usize,
                bias: *const f32,
                lohi: *const f32,
            ) {
                let a3 = a.wrapping_byte_add(3 * lda);
                asm!(
                    "vxorps xmm0, xmm0, xmm0",
                    "vxorps xmm1, xmm1, xmm1",
                    "vxorps xmm2, xmm2, xmm2",
                    "vxorps xmm3, xmm3, xmm3",
                    "vxorps xmm4, xmm4, xmm4",
                    "vxorps xmm5, xmm5, xmm5",
                    "vxorps xmm6, xmm6, xmm6",
                    "vxorps xmm7, xmm7, xmm7",
                    "vxorps xmm8, xmm8, xmm8",
                    "vxorps xmm9, xmm9, xmm9",
                    "vxorps xmm10, xmm10, xmm10",
                    "vxorps xmm11, xmm11, xmm11",
                    "test {k}, {k}",
                    "jz 3f",
                    "2:",
                    "vmovups zmm12, [{b}]",
                    "vmovups zmm13, [{b} + 64]",
                    "vbroadcastss zmm14, dword ptr [{a0}]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm0, zmm0, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm1, zmm1, zmm15",
                    ".if {r} > 1",
                    "vbroadcastss zmm14, dword ptr [{a0} + {lda}]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm2, zmm2, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm3, zmm3, zmm15",
                    ".endif",
                    ".if {r} > 2",
                    "vbroadcastss zmm14, dword ptr [{a0} + {lda}*2]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm4, zmm4, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm5, zmm5, zmm15",
                    ".endif",
                    ".if {r} > 3",
                    "vbroadcastss zmm14, dword ptr [{a3}]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm6, zmm6, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm7, zmm7, zmm15",
                    ".endif",
                    ".if {r} > 4",
                    "vbroadcastss zmm14, dword ptr [{a3} + {lda}]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm8, zmm8, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm9, zmm9, zmm15",
                    ".endif",
                    ".if {r} > 5",
                    "vbroadcastss zmm14, dword ptr [{a3} + {lda}*2]",
                    "vmulps zmm15, zmm14, zmm12",
                    "vaddps zmm10, zmm10, zmm15",
                    "vmulps zmm15, zmm14, zmm13",
                    "vaddps zmm11, zmm11, zmm15",
                    ".endif",
                    "add {a0}, 4",
                    "add {a3}, 4",
                    "add {b}, 128",
                    "dec {k}",
                    "jnz 2b",
                    "3:",
                    "lea {a3}, [{dst} + {ldc}*2]",
                    "add {a3}, {ldc}",
                    ".if {epi}",
                    "vmovups zmm12, [{bias}]",
                    "vmovups zmm13, [{bias} + 64]",
                    "vbroadcastss zmm14, dword ptr [{lohi}]",
                    "vbroadcastss zmm15, dword ptr [{lohi} + 4]",
                    "vaddps zmm0, zmm0, zmm12",
                    "vmaxps zmm0, zmm14, zmm0",
                    "vminps zmm0, zmm15, zmm0",
                    "vaddps zmm1, zmm1, zmm13",
                    "vmaxps zmm1, zmm14, zmm1",
                    "vminps zmm1, zmm15, zmm1",
                    ".if {r} > 1",
                    "vaddps zmm2, zmm2, zmm12",
                    "vmaxps zmm2, zmm14, zmm2",
                    "vminps zmm2, zmm15, zmm2",
                    "vaddps zmm3, zmm3, zmm13",
                    "vmaxps zmm3, zmm14, zmm3",
                    "vminps zmm3, zmm15, zmm3",
                    ".endif",
                    ".if {r} > 2",
                    "vaddps zmm4, zmm4, zmm12",
                    "vmaxps zmm4, zmm14, zmm4",
                    "vminps zmm4, zmm15, zmm4",
                    "vaddps zmm5, zmm5, zmm13",
                    "vmaxps zmm5, zmm14, zmm5",
                    "vminps zmm5, zmm15, zmm5",
                    ".endif",
                    ".if {r} > 3",
                    "vaddps zmm6, zmm6, zmm12",
                    "vmaxps zmm6, zmm14, zmm6",
                    "vminps zmm6, zmm15, zmm6",
                    "vaddps zmm7, zmm7, zmm13",
                    "vmaxps zmm7, zmm14, zmm7",
                    "vminps zmm7, zmm15, zmm7",
                    ".endif",
                    ".if {r} > 4",
                    "vaddps zmm8, zmm8, zmm12",
                    "vmaxps zmm8, zmm14, zmm8",
                    "vminps zmm8, zmm15, zmm8",
                    "vaddps zmm9, zmm9, zmm13",
                    "vmaxps zmm9, zmm14, zmm9",
                    "vminps zmm9, zmm15, zmm9",
                    ".endif",
                    ".if {r} > 5",
                    "vaddps zmm10, zmm10, zmm12",
                    "vmaxps zmm10, zmm14, zmm10",
                    "vminps zmm10, zmm15, zmm10",
                    "vaddps zmm11, zmm11, zmm13",
                    "vmaxps zmm11, zmm14, zmm11",
                    "vminps zmm11, zmm15, zmm11",
                    ".endif",
                    ".endif",
                    "vmovups [{dst}], zmm0",
                    "vmovups [{dst} + 64], zmm1",
                    ".if {r} > 1",
                    "vmovups [{dst} + {ldc}], zmm2",
                    "vmovups [{dst} + {ldc} + 64], zmm3",
                    ".endif",
                    ".if {r} > 2",
                    "vmovups [{dst} + {ldc}*2], zmm4",
                    "vmovups [{dst} + {ldc}*2 + 64], zmm5",
                    ".endif",
                    ".if {r} > 3",
                    "vmovups [{a3}], zmm6",
                    "vmovups [{a3} + 64], zmm7",
                    ".endif",
                    ".if {r} > 4",
                    "vmovups [{a3} + {ldc}], zmm8",
                    "vmovups [{a3} + {ldc} + 64], zmm9",
                    ".endif",
                    ".if {r} > 5",
                    "vmovups [{a3} + {ldc}*2], zmm10",
                    "vmovups [{a3} + {ldc}*2 + 64], zmm11",
                    ".endif",
                    "vzeroupper",
                    k = inout(reg) k => _,
                    a0 = inout(reg) a => _,
                    a3 = inout(reg) a3 => _,
                    lda = in(reg) lda,
                    b = inout(reg) bp => _,
                    dst = in(reg) dst,
                    ldc = in(reg) ldc,
                    bias = in(reg) bias,
                    lohi = in(reg) lohi,
                    r = const $r,
                    epi = const $epi,
                    out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                    out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                    out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                    out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                    options(nostack),
                );
            }
        };
    }

    /// `$r` rows × 16 columns.
    macro_rules! narrow_tile {
        ($name:ident, $r:literal, $epi:literal) => {
            /// # Safety
            /// Rows of `a` hold `k` values, `bp` `16·k`; `dst` rows take 16 values; `bias`
            /// 16 values when `EPI`; AVX-512F present.
            #[allow(clippy::too_many_arguments)]
            unsafe fn $name(
                k: usize,
                a: *const f32,
                lda: usize,
                bp: *const f32,
                dst: *mut f32,
                ldc: usize,
                bias: *const f32,
                lohi: *const f32,
            ) {
                let a3 = a.wrapping_byte_add(3 * lda);
                let a6 = a.wrapping_byte_add(6 * lda);
                let a9 = a.wrapping_byte_add(9 * lda);
                asm!(
                    "vxorps xmm0, xmm0, xmm0",
                    "vxorps xmm1, xmm1, xmm1",
                    "vxorps xmm2, xmm2, xmm2",
                    "vxorps xmm3, xmm3, xmm3",
                    "vxorps xmm4, xmm4, xmm4",
                    "vxorps xmm5, xmm5, xmm5",
                    "vxorps xmm6, xmm6, xmm6",
                    "vxorps xmm7, xmm7, xmm7",
                    "vxorps xmm8, xmm8, xmm8",
                    "vxorps xmm9, xmm9, xmm9",
                    "vxorps xmm10, xmm10, xmm10",
                    "vxorps xmm11, xmm11, xmm11",
                    "test {k}, {k}",
                    "jz 3f",
                    "2:",
                    "vmovups zmm12, [{b}]",
                    "vbroadcastss zmm13, dword ptr [{a0}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm0, zmm0, zmm14",
                    ".if {r} > 1",
                    "vbroadcastss zmm13, dword ptr [{a0} + {lda}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm1, zmm1, zmm14",
                    ".endif",
                    ".if {r} > 2",
                    "vbroadcastss zmm13, dword ptr [{a0} + {lda}*2]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm2, zmm2, zmm14",
                    ".endif",
                    ".if {r} > 3",
                    "vbroadcastss zmm13, dword ptr [{a3}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm3, zmm3, zmm14",
                    ".endif",
                    ".if {r} > 4",
                    "vbroadcastss zmm13, dword ptr [{a3} + {lda}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm4, zmm4, zmm14",
                    ".endif",
                    ".if {r} > 5",
                    "vbroadcastss zmm13, dword ptr [{a3} + {lda}*2]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm5, zmm5, zmm14",
                    ".endif",
                    ".if {r} > 6",
                    "vbroadcastss zmm13, dword ptr [{a6}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm6, zmm6, zmm14",
                    ".endif",
                    ".if {r} > 7",
                    "vbroadcastss zmm13, dword ptr [{a6} + {lda}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm7, zmm7, zmm14",
                    ".endif",
                    ".if {r} > 8",
                    "vbroadcastss zmm13, dword ptr [{a6} + {lda}*2]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm8, zmm8, zmm14",
                    ".endif",
                    ".if {r} > 9",
                    "vbroadcastss zmm13, dword ptr [{a9}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm9, zmm9, zmm14",
                    ".endif",
                    ".if {r} > 10",
                    "vbroadcastss zmm13, dword ptr [{a9} + {lda}]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm10, zmm10, zmm14",
                    ".endif",
                    ".if {r} > 11",
                    "vbroadcastss zmm13, dword ptr [{a9} + {lda}*2]",
                    "vmulps zmm14, zmm13, zmm12",
                    "vaddps zmm11, zmm11, zmm14",
                    ".endif",
                    "add {a0}, 4",
                    "add {a3}, 4",
                    "add {a6}, 4",
                    "add {a9}, 4",
                    "add {b}, 64",
                    "dec {k}",
                    "jnz 2b",
                    "3:",
                    "lea {a3}, [{dst} + {ldc}*2]",
                    "add {a3}, {ldc}",
                    "lea {a6}, [{a3} + {ldc}*2]",
                    "add {a6}, {ldc}",
                    "lea {a9}, [{a6} + {ldc}*2]",
                    "add {a9}, {ldc}",
                    ".if {epi}",
                    "vmovups zmm12, [{bias}]",
                    "vbroadcastss zmm13, dword ptr [{lohi}]",
                    "vbroadcastss zmm14, dword ptr [{lohi} + 4]",
                    "vaddps zmm0, zmm0, zmm12",
                    "vmaxps zmm0, zmm13, zmm0",
                    "vminps zmm0, zmm14, zmm0",
                    ".if {r} > 1",
                    "vaddps zmm1, zmm1, zmm12",
                    "vmaxps zmm1, zmm13, zmm1",
                    "vminps zmm1, zmm14, zmm1",
                    ".endif",
                    ".if {r} > 2",
                    "vaddps zmm2, zmm2, zmm12",
                    "vmaxps zmm2, zmm13, zmm2",
                    "vminps zmm2, zmm14, zmm2",
                    ".endif",
                    ".if {r} > 3",
                    "vaddps zmm3, zmm3, zmm12",
                    "vmaxps zmm3, zmm13, zmm3",
                    "vminps zmm3, zmm14, zmm3",
                    ".endif",
                    ".if {r} > 4",
                    "vaddps zmm4, zmm4, zmm12",
                    "vmaxps zmm4, zmm13, zmm4",
                    "vminps zmm4, zmm14, zmm4",
                    ".endif",
                    ".if {r} > 5",
                    "vaddps zmm5, zmm5, zmm12",
                    "vmaxps zmm5, zmm13, zmm5",
                    "vminps zmm5, zmm14, zmm5",
                    ".endif",
                    ".if {r} > 6",
                    "vaddps zmm6, zmm6, zmm12",
                    "vmaxps zmm6, zmm13, zmm6",
                    "vminps zmm6, zmm14, zmm6",
                    ".endif",
                    ".if {r} > 7",
                    "vaddps zmm7, zmm7, zmm12",
                    "vmaxps zmm7, zmm13, zmm7",
                    "vminps zmm7, zmm14, zmm7",
                    ".endif",
                    ".if {r} > 8",
                    "vaddps zmm8, zmm8, zmm12",
                    "vmaxps zmm8, zmm13, zmm8",
                    "vminps zmm8, zmm14, zmm8",
                    ".endif",
                    ".if {r} > 9",
                    "vaddps zmm9, zmm9, zmm12",
                    "vmaxps zmm9, zmm13, zmm9",
                    "vminps zmm9, zmm14, zmm9",
                    ".endif",
                    ".if {r} > 10",
                    "vaddps zmm10, zmm10, zmm12",
                    "vmaxps zmm10, zmm13, zmm10",
                    "vminps zmm10, zmm14, zmm10",
                    ".endif",
                    ".if {r} > 11",
                    "vaddps zmm11, zmm11, zmm12",
                    "vmaxps zmm11, zmm13, zmm11",
                    "vminps zmm11, zmm14, zmm11",
                    ".endif",
                    ".endif",
                    "vmovups [{dst}], zmm0",
                    ".if {r} > 1",
                    "vmovups [{dst} + {ldc}], zmm1",
                    ".endif",
                    ".if {r} > 2",
                    "vmovups [{dst} + {ldc}*2], zmm2",
                    ".endif",
                    ".if {r} > 3",
                    "vmovups [{a3}], zmm3",
                    ".endif",
                    ".if {r} > 4",
                    "vmovups [{a3} + {ldc}], zmm4",
                    ".endif",
                    ".if {r} > 5",
                    "vmovups [{a3} + {ldc}*2], zmm5",
                    ".endif",
                    ".if {r} > 6",
                    "vmovups [{a6}], zmm6",
                    ".endif",
                    ".if {r} > 7",
                    "vmovups [{a6} + {ldc}], zmm7",
                    ".endif",
                    ".if {r} > 8",
                    "vmovups [{a6} + {ldc}*2], zmm8",
                    ".endif",
                    ".if {r} > 9",
                    "vmovups [{a9}], zmm9",
                    ".endif",
                    ".if {r} > 10",
                    "vmovups [{a9} + {ldc}], zmm10",
                    ".endif",
                    ".if {r} > 11",
                    "vmovups [{a9} + {ldc}*2], zmm11",
                    ".endif",
                    "vzeroupper",
                    k = inout(reg) k => _,
                    a0 = inout(reg) a => _,
                    a3 = inout(reg) a3 => _,
                    a6 = inout(reg) a6 => _,
                    a9 = inout(reg) a9 => _,
                    lda = in(reg) lda,
                    b = inout(reg) bp => _,
                    dst = in(reg) dst,
                    ldc = in(reg) ldc,
                    bias = in(reg) bias,
                    lohi = in(reg) lohi,
                    r = const $r,
                    epi = const $epi,
                    out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                    out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                    out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                    out("xmm12") _, out("xmm13") _, out("xmm14") _,
                    options(nostack),
                );
            }
        };
    }

    wide_tile!(w1e, 1, 1);
    wide_tile!(w2e, 2, 1);
    wide_tile!(w3e, 3, 1);
    wide_tile!(w4e, 4, 1);
    wide_tile!(w5e, 5, 1);
    wide_tile!(w6e, 6, 1);
    wide_tile!(w1r, 1, 0);
    wide_tile!(w2r, 2, 0);
    wide_tile!(w3r, 3, 0);
    wide_tile!(w4r, 4, 0);
    wide_tile!(w5r, 5, 0);
    wide_tile!(w6r, 6, 0);
    narrow_tile!(n1e, 1, 1);
    narrow_tile!(n2e, 2, 1);
    narrow_tile!(n3e, 3, 1);
    narrow_tile!(n4e, 4, 1);
    narrow_tile!(n5e, 5, 1);
    narrow_tile!(n6e, 6, 1);
    narrow_tile!(n7e, 7, 1);
    narrow_tile!(n8e, 8, 1);
    narrow_tile!(n9e, 9, 1);
    narrow_tile!(n10e, 10, 1);
    narrow_tile!(n11e, 11, 1);
    narrow_tile!(n12e, 12, 1);
    narrow_tile!(n1r, 1, 0);
    narrow_tile!(n2r, 2, 0);
    narrow_tile!(n3r, 3, 0);
    narrow_tile!(n4r, 4, 0);
    narrow_tile!(n5r, 5, 0);
    narrow_tile!(n6r, 6, 0);
    narrow_tile!(n7r, 7, 0);
    narrow_tile!(n8r, 8, 0);
    narrow_tile!(n9r, 9, 0);
    narrow_tile!(n10r, 10, 0);
    narrow_tile!(n11r, 11, 0);
    narrow_tile!(n12r, 12, 0);

    /// Tiles by rows − 1: wide with epilogue, wide raw, narrow with epilogue, narrow raw.
    const WIDE_EPI: [TileFn; MR_WIDE] = [w1e, w2e, w3e, w4e, w5e, w6e];
    const WIDE_RAW: [TileFn; MR_WIDE] = [w1r, w2r, w3r, w4r, w5r, w6r];
    const NARROW_EPI: [TileFn; MR_NARROW] = [n1e, n2e, n3e, n4e, n5e, n6e, n7e, n8e, n9e, n10e, n11e, n12e];
    const NARROW_RAW: [TileFn; MR_NARROW] = [n1r, n2r, n3r, n4r, n5r, n6r, n7r, n8r, n9r, n10r, n11r, n12r];

    /// Runs every tile of a job (see `gemm_impl!`'s `run`). Whole panels of a
    /// non-transposed job are stored by the tiles; partial panels and transposed jobs go
    /// through a buffer.
    ///
    /// # Safety
    /// As for [`super::run`], on a CPU with AVX-512F.
    pub(super) unsafe fn run(job: &Job<'_>) {
        let packed: &Packed = job.packed;
        let lohi = [job.lo, job.hi];
        let mut sums = [0.0f32; MR_NARROW * 16];
        let (lda, ldc) = (job.lda * 4, job.ldc * 4);
        for &(j0, w, off) in &packed.panels {
            let wide = w == W;
            let mr = if wide { MR_WIDE } else { MR_NARROW };
            let cols = (job.cols - j0).min(w);
            let bp = packed.data.as_ptr().add(off);
            let mut i = 0;
            while i < job.rows {
                let r = (job.rows - i).min(mr);
                let a = job.a.add(i * job.lda);
                if job.transposed {
                    let tile = if wide { WIDE_RAW[r - 1] } else { NARROW_RAW[r - 1] };
                    tile(job.k, a, lda, bp, sums.as_mut_ptr(), w * 4, job.bias, lohi.as_ptr());
                    for rr in 0..r {
                        let b = *job.bias.add(i + rr);
                        for (col, &v) in sums[rr * w..rr * w + cols].iter().enumerate() {
                            let y = v + b;
                            let y = if y < job.lo { job.lo } else { y };
                            *job.c.add((j0 + col) * job.ldc + i + rr) = if job.hi < y { job.hi } else { y };
                        }
                    }
                } else {
                    let tile = if wide { WIDE_EPI[r - 1] } else { NARROW_EPI[r - 1] };
                    let c = job.c.add(i * job.ldc + j0);
                    if cols == w {
                        tile(job.k, a, lda, bp, c, ldc, job.bias.add(j0), lohi.as_ptr());
                    } else {
                        tile(job.k, a, lda, bp, sums.as_mut_ptr(), w * 4, job.bias.add(j0), lohi.as_ptr());
                        for rr in 0..r {
                            std::ptr::copy_nonoverlapping(sums.as_ptr().add(rr * w), c.add(rr * job.ldc), cols);
                        }
                    }
                }
                i += r;
            }
        }
    }
}

gemm_impl! {
    #[cfg(target_arch = "x86_64")]
    mod avx, features = "avx", lanes = 8, rows = (6, 12),
    zero = _mm256_setzero_ps, load = _mm256_loadu_ps, store = _mm256_storeu_ps, splat = _mm256_set1_ps,
    add = _mm256_add_ps, mul = _mm256_mul_ps, max = _mm256_max_ps, min = _mm256_min_ps,
}

gemm_impl! {
    mod portable, lanes = 4, rows = (4, 8),
    zero = lanes4::zero, load = lanes4::load, store = lanes4::store, splat = lanes4::splat,
    add = lanes4::add, mul = lanes4::mul, max = lanes4::max, min = lanes4::min,
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::Activation;

    /// Every instruction set, both packings and partial panels give the bits of the
    /// reference loop: `Σ a·b` in `k` order from 0, then the bias, then the clamp.
    #[test]
    fn every_isa_and_packing_matches_the_reference_loop_bit_for_bit() {
        let vals = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2246822519).wrapping_add(seed) >> 8) as f32 / (1 << 23) as f32 - 1.0)
                .collect()
        };
        let clamp = Clamp::new(Activation::Relu6);
        for &(m, n, k) in &[(1usize, 1usize, 1usize), (7, 33, 19), (40, 8, 5), (13, 50, 0), (9, 100, 64), (25, 17, 130)]
        {
            let a = vals(m * k, 1);
            let b = vals(n * k, 2);
            let bias = vals(n, 3);
            let mut want = vec![0.0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    let mut total = 0.0f32;
                    for t in 0..k {
                        total += a[i * k + t] * b[j * k + t];
                    }
                    want[i * n + j] = clamp.apply(total + bias[j]);
                }
            }
            let same = |got: &[f32]| got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
            for isa in Isa::available() {
                let mut got = vec![f32::NAN; m * n];
                gemm(m, &a, k, &Packed::for_isa(isa, &b, k, n, k), Some(&bias), &mut got, n, clamp);
                assert!(same(&got), "{isa:?}, B packed, {m}x{n}x{k}");
                let mut got = vec![f32::NAN; m * n];
                gemm_packed_a(&Packed::for_isa(isa, &a, k, m, k), n, &b, k, Some(&bias), &mut got, n, clamp);
                assert!(same(&got), "{isa:?}, A packed, {m}x{n}x{k}");
            }
        }
    }
}
