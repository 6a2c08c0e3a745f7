//! Concrete linear maps (convolution, depthwise convolution, fully connected) with explicit
//! zero padding, and the exact algebra on them: composition, sums, identities, scaling and
//! shifting of inputs and outputs, padding.
//!
//! Weights are held in f64 so that a chain of compositions adds no rounding of its own; the
//! result is rounded to f32 once, when it is written back into the graph.
//!
//! Every operation comes as a cheap check on shapes and attributes (`can_*`) and the
//! computation; the checks are what the e-graph rules test before they fire.

use std::fmt;

/// How a kernel's weights are laid out and applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// Dense spatial convolution; weights `[kh][kw][cin][cout]`.
    Conv,
    /// Depthwise convolution with multiplier 1 (`cin == cout`); weights `[kh][kw][c]`.
    Depthwise,
    /// Fully connected on `[N, cin]`; weights `[cin][cout]` (`kh = kw = 1`, no padding).
    Dense,
}

/// An affine map `y = W ⊛ x + b` with explicit zero padding, as the e-graph manipulates it.
#[derive(Clone, PartialEq)]
pub struct Kernel {
    /// Weight layout and how the kernel is applied.
    pub kind: KernelKind,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Strides `[h, w]`.
    pub stride: [usize; 2],
    /// Dilations `[h, w]` (normalised to 1 along an axis where the kernel has one tap).
    pub dilation: [usize; 2],
    /// Zero padding `[top, bottom, left, right]` in input pixels.
    pub pads: [usize; 4],
    /// Weights, laid out as [`KernelKind`] says.
    pub w: Vec<f64>,
    /// Bias per output channel.
    pub bias: Vec<f64>,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {}x{} {}->{} stride {:?} dilation {:?} pads {:?}",
            self.kind, self.kh, self.kw, self.cin, self.cout, self.stride, self.dilation, self.pads
        )
    }
}

/// Effective extent of `k` taps `d` apart.
fn extent(k: usize, d: usize) -> usize {
    (k - 1) * d + 1
}

impl Kernel {
    /// Checks the invariants a kernel built from outside must satisfy.
    pub fn is_well_formed(&self) -> bool {
        let taps = self.kh * self.kw;
        let wlen = match self.kind {
            KernelKind::Conv => taps * self.cin * self.cout,
            KernelKind::Depthwise => taps * self.cin,
            KernelKind::Dense => self.cin * self.cout,
        };
        let dense_ok = self.kind != KernelKind::Dense
            || (self.kh == 1 && self.kw == 1 && self.pads == [0; 4] && self.stride == [1, 1]);
        let dw_ok = self.kind != KernelKind::Depthwise || self.cin == self.cout;
        self.kh > 0
            && self.kw > 0
            && self.cin > 0
            && self.cout > 0
            && self.stride.iter().all(|&s| s > 0)
            && self.dilation.iter().all(|&d| d > 0)
            && self.w.len() == wlen
            && self.bias.len() == self.cout
            && dense_ok
            && dw_ok
    }

    /// Sets the dilation to 1 along axes with a single tap, where it has no effect, so that
    /// kernels compare equal when they compute the same thing.
    pub fn normalized(mut self) -> Self {
        if self.kh == 1 {
            self.dilation[0] = 1;
        }
        if self.kw == 1 {
            self.dilation[1] = 1;
        }
        self
    }

    /// Weight at tap `(u, v)` from input channel `i` to output channel `o` (zero off the
    /// diagonal of a depthwise kernel).
    pub fn at(&self, u: usize, v: usize, i: usize, o: usize) -> f64 {
        match self.kind {
            KernelKind::Conv | KernelKind::Dense => self.w[((u * self.kw + v) * self.cin + i) * self.cout + o],
            KernelKind::Depthwise => {
                if i == o {
                    self.w[(u * self.kw + v) * self.cin + i]
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether every bias entry is zero.
    pub fn bias_is_zero(&self) -> bool {
        self.bias.iter().all(|&b| b == 0.0)
    }

    /// Output spatial extent along one axis for an input of `n` pixels, if positive.
    pub fn out_extent(&self, axis: usize, n: usize) -> Option<usize> {
        let (k, d, s) = (if axis == 0 { self.kh } else { self.kw }, self.dilation[axis], self.stride[axis]);
        let padded = n + self.pads[2 * axis] + self.pads[2 * axis + 1];
        let eff = extent(k, d);
        (padded >= eff).then(|| (padded - eff) / s + 1)
    }

    /// Output shape for an input of shape `x` (`[N, H, W, C]`, or `[N, C]` for dense).
    pub fn output_shape(&self, x: &[usize]) -> Option<Vec<usize>> {
        match (self.kind, x) {
            (KernelKind::Dense, &[n, c]) if c == self.cin => Some(vec![n, self.cout]),
            (KernelKind::Conv | KernelKind::Depthwise, &[n, h, w, c]) if c == self.cin => {
                Some(vec![n, self.out_extent(0, h)?, self.out_extent(1, w)?, self.cout])
            }
            _ => None,
        }
    }

    /// Multiply-accumulates of one application producing `out` (the output shape).
    pub fn macs(&self, out: &[usize]) -> u64 {
        let pixels: u64 = out[..out.len() - 1].iter().map(|&d| d as u64).product();
        let taps = (self.kh * self.kw) as u64;
        match self.kind {
            KernelKind::Conv | KernelKind::Dense => pixels * taps * self.cin as u64 * self.cout as u64,
            KernelKind::Depthwise => pixels * taps * self.cout as u64,
        }
    }

    /// TensorFlow's SAME padding `[before, after]` along one axis for an input of `n`
    /// pixels (tensorflow/lite/kernels/padding.h: total = max((out-1)·s + eff - n, 0),
    /// `before = total / 2`).
    pub fn same_pads(&self, axis: usize, n: usize) -> [usize; 2] {
        let k = if axis == 0 { self.kh } else { self.kw };
        npuc_ir::shape::same_padding(n, k, self.stride[axis], self.dilation[axis])
    }

    /// How this kernel's padding is written in TFLite for an input of spatial size
    /// `[h, w]`: SAME, VALID, or neither (an explicit PAD is needed).
    pub fn padding_for(&self, h: usize, w: usize) -> PaddingFit {
        if self.kind == KernelKind::Dense || self.pads == [0; 4] {
            return PaddingFit::Valid;
        }
        // Padding beyond what the last output reads is never read, so SAME fits when the
        // leading pads agree and the output extents agree.
        let mut same = self.clone();
        let (sh, sw) = (self.same_pads(0, h), self.same_pads(1, w));
        same.pads = [sh[0], sh[1], sw[0], sw[1]];
        if same.pads[0] == self.pads[0]
            && same.pads[2] == self.pads[2]
            && same.out_extent(0, h) == self.out_extent(0, h)
            && same.out_extent(1, w) == self.out_extent(1, w)
        {
            PaddingFit::Same
        } else {
            PaddingFit::Explicit
        }
    }

    /// A kernel of zeros with the given signature.
    fn zeros(kind: KernelKind, kh: usize, kw: usize, cin: usize, cout: usize) -> Kernel {
        let wlen = match kind {
            KernelKind::Depthwise => kh * kw * cin,
            _ => kh * kw * cin * cout,
        };
        Kernel {
            kind,
            kh,
            kw,
            cin,
            cout,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0; 4],
            w: vec![0.0; wlen],
            bias: vec![0.0; cout],
        }
    }

    /// Adds `x` to the weight at `(u, v, i, o)`; for depthwise kernels only `i == o` exists.
    fn add_at(&mut self, u: usize, v: usize, i: usize, o: usize, x: f64) {
        let idx = match self.kind {
            KernelKind::Conv | KernelKind::Dense => ((u * self.kw + v) * self.cin + i) * self.cout + o,
            KernelKind::Depthwise => {
                debug_assert_eq!(i, o);
                (u * self.kw + v) * self.cin + i
            }
        };
        self.w[idx] += x;
    }

    /// The identity map on `c` channels, as a 1×1 depthwise kernel (or dense for `dense`).
    pub fn identity(c: usize, dense: bool) -> Kernel {
        let kind = if dense { KernelKind::Dense } else { KernelKind::Depthwise };
        let mut k = Kernel::zeros(kind, 1, 1, c, c);
        for i in 0..c {
            k.add_at(0, 0, i, i, 1.0);
        }
        k
    }
}

/// How a kernel's explicit padding maps onto TFLite's padding schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaddingFit {
    /// TFLite SAME reproduces it.
    Same,
    /// No padding.
    Valid,
    /// Neither: a PAD op in front of a VALID kernel is needed.
    Explicit,
}

/// Kind of the composition or sum of two kernels, if they can be combined at all.
fn combined_kind(a: KernelKind, b: KernelKind) -> Option<KernelKind> {
    use KernelKind::*;
    match (a, b) {
        (Dense, Dense) => Some(Dense),
        (Dense, _) | (_, Dense) => None,
        (Depthwise, Depthwise) => Some(Depthwise),
        _ => Some(Conv),
    }
}

/// Whether `second ∘ first` (apply `first`, then `second`) is one exact kernel.
///
/// Exact means equal at every output pixel, borders included. The second kernel reads the
/// first one's output with its own zero padding, which the composite would instead compute
/// from padded input (plus the first bias), so `second` must not pad — unless `first` is a
/// bias-free 1×1 pointwise map, which commutes with zero padding. `first` must have stride
/// 1 and no dilation (a strided first kernel would make the composite's taps irregular).
pub fn can_compose(second: &Kernel, first: &Kernel) -> bool {
    if combined_kind(second.kind, first.kind).is_none() || first.cout != second.cin {
        return false;
    }
    if first.kind == KernelKind::Dense {
        return true;
    }
    let first_pointwise = first.kh == 1 && first.kw == 1 && first.pads == [0; 4];
    first.stride == [1, 1]
        && first.dilation == [1, 1]
        && second.dilation == [1, 1]
        && (second.pads == [0; 4] || (first_pointwise && first.bias_is_zero()))
}

/// Multiply-accumulates of `second ∘ first` producing `out`, without computing it.
pub fn composite_macs(second: &Kernel, first: &Kernel, out: &[usize]) -> u64 {
    let pixels: u64 = out[..out.len() - 1].iter().map(|&d| d as u64).product();
    let taps = ((first.kh + second.kh - 1) * (first.kw + second.kw - 1)) as u64;
    match combined_kind(second.kind, first.kind) {
        Some(KernelKind::Depthwise) => pixels * taps * second.cout as u64,
        _ => pixels * taps * first.cin as u64 * second.cout as u64,
    }
}

/// `second ∘ first` (see [`can_compose`]): `Wc[a,b,i,o] = Σ W1[u,v,i,p]·W2[a-u,b-v,p,o]`,
/// `bc[o] = b2[o] + Σ b1[p]·W2[·,·,p,o]`.
pub fn compose(second: &Kernel, first: &Kernel) -> Option<Kernel> {
    if !can_compose(second, first) {
        return None;
    }
    let kind = combined_kind(second.kind, first.kind)?;
    let (kh, kw) = (first.kh + second.kh - 1, first.kw + second.kw - 1);
    let mut out = Kernel::zeros(kind, kh, kw, first.cin, second.cout);
    out.stride = second.stride;
    out.pads = if second.pads == [0; 4] { first.pads } else { second.pads };
    for u1 in 0..first.kh {
        for v1 in 0..first.kw {
            for u2 in 0..second.kh {
                for v2 in 0..second.kw {
                    let (a, b) = (u1 + u2, v1 + v2);
                    match (first.kind, second.kind) {
                        (KernelKind::Depthwise, KernelKind::Depthwise) => {
                            for c in 0..first.cin {
                                out.add_at(a, b, c, c, first.at(u1, v1, c, c) * second.at(u2, v2, c, c));
                            }
                        }
                        (KernelKind::Depthwise, _) => {
                            for i in 0..first.cin {
                                let w1 = first.at(u1, v1, i, i);
                                if w1 == 0.0 {
                                    continue;
                                }
                                for o in 0..second.cout {
                                    out.add_at(a, b, i, o, w1 * second.at(u2, v2, i, o));
                                }
                            }
                        }
                        (_, KernelKind::Depthwise) => {
                            for i in 0..first.cin {
                                for o in 0..second.cout {
                                    out.add_at(a, b, i, o, first.at(u1, v1, i, o) * second.at(u2, v2, o, o));
                                }
                            }
                        }
                        _ => {
                            let base1 = (u1 * first.kw + v1) * first.cin * first.cout;
                            let base2 = (u2 * second.kw + v2) * second.cin * second.cout;
                            let baseo = (a * kw + b) * out.cin * out.cout;
                            for i in 0..first.cin {
                                for p in 0..first.cout {
                                    let w1 = first.w[base1 + i * first.cout + p];
                                    if w1 == 0.0 {
                                        continue;
                                    }
                                    let row2 = &second.w[base2 + p * second.cout..base2 + (p + 1) * second.cout];
                                    let rowo = &mut out.w[baseo + i * out.cout..baseo + (i + 1) * out.cout];
                                    for (wo, w2) in rowo.iter_mut().zip(row2) {
                                        *wo += w1 * w2;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for o in 0..second.cout {
        let mut b = second.bias[o];
        for u2 in 0..second.kh {
            for v2 in 0..second.kw {
                for p in 0..second.cin {
                    b += first.bias[p] * second.at(u2, v2, p, o);
                }
            }
        }
        out.bias[o] = b;
    }
    Some(out.normalized())
}

/// Placement of two kernels inside their sum: the merged signature and each kernel's tap
/// offset.
struct SumLayout {
    kh: usize,
    kw: usize,
    dilation: [usize; 2],
    pads: [usize; 4],
    offsets: [[usize; 2]; 2],
}

/// How `a + b` (both applied to the same input) is laid out, if it is one kernel: same
/// channels and strides, compatible dilation, and taps that line up on the input grid.
fn sum_layout(a: &Kernel, b: &Kernel) -> Option<SumLayout> {
    combined_kind(a.kind, b.kind)?;
    if a.cin != b.cin || a.cout != b.cout || a.stride != b.stride {
        return None;
    }
    let mut dilation = [1, 1];
    let mut offsets = [[0; 2]; 2];
    let mut ks = [0; 2];
    let mut pads = [0; 4];
    for axis in 0..2 {
        let (ka, kb) = if axis == 0 { (a.kh, b.kh) } else { (a.kw, b.kw) };
        let d = match (ka, kb) {
            (1, 1) => 1,
            (1, _) => b.dilation[axis],
            (_, 1) => a.dilation[axis],
            _ if a.dilation[axis] == b.dilation[axis] => a.dilation[axis],
            _ => return None,
        };
        let (pa, pb) = (a.pads[2 * axis], b.pads[2 * axis]);
        let before = pa.max(pb);
        if (before - pa) % d != 0 || (before - pb) % d != 0 {
            return None;
        }
        let (oa, ob) = ((before - pa) / d, (before - pb) / d);
        let k = (oa + ka).max(ob + kb);
        // The trailing pad that keeps the output extent: the larger of what each kernel
        // needs once shifted into the merged window (never negative, see DESIGN of sums).
        let after = [(a, ka, oa), (b, kb, ob)]
            .iter()
            .map(|&(kern, kk, off)| kern.pads[2 * axis + 1] + (k - off - kk) * d)
            .max()?;
        dilation[axis] = d;
        offsets[0][axis] = oa;
        offsets[1][axis] = ob;
        ks[axis] = k;
        pads[2 * axis] = before;
        pads[2 * axis + 1] = after;
    }
    Some(SumLayout { kh: ks[0], kw: ks[1], dilation, pads, offsets })
}

/// Whether `a + b` applied to one input is one exact kernel (see [`sum`]).
pub fn can_sum(a: &Kernel, b: &Kernel) -> bool {
    sum_layout(a, b).is_some()
}

/// The kernel computing `a(x) + b(x)`: the smaller window embedded in the larger one at
/// the offset that keeps every tap reading the same input pixel (RepVGG's branch merge).
pub fn sum(a: &Kernel, b: &Kernel) -> Option<Kernel> {
    let layout = sum_layout(a, b)?;
    let kind = combined_kind(a.kind, b.kind)?;
    let mut out = Kernel::zeros(kind, layout.kh, layout.kw, a.cin, a.cout);
    out.stride = a.stride;
    out.dilation = layout.dilation;
    out.pads = layout.pads;
    for (k, off) in [(a, layout.offsets[0]), (b, layout.offsets[1])] {
        for u in 0..k.kh {
            for v in 0..k.kw {
                for i in 0..k.cin {
                    if k.kind == KernelKind::Depthwise {
                        out.add_at(u + off[0], v + off[1], i, i, k.at(u, v, i, i));
                    } else if kind == KernelKind::Depthwise {
                        unreachable!("a dense kernel never sums into a depthwise one");
                    } else {
                        for o in 0..k.cout {
                            out.add_at(u + off[0], v + off[1], i, o, k.at(u, v, i, o));
                        }
                    }
                }
            }
        }
        for (bo, bk) in out.bias.iter_mut().zip(&k.bias) {
            *bo += bk;
        }
    }
    Some(out.normalized())
}

/// Whether a per-channel constant of `len` entries broadcasts over `channels` (one value
/// for all, or one per channel).
pub fn broadcasts(len: usize, channels: usize) -> bool {
    len == 1 || len == channels
}

fn channel(c: &[f64], i: usize) -> f64 {
    if c.len() == 1 {
        c[0]
    } else {
        c[i]
    }
}

/// `c ⊙ k(x)`: output channel `o` scaled by `c[o]` (batch-norm's multiply).
pub fn scale_out(k: &Kernel, c: &[f64]) -> Option<Kernel> {
    if !broadcasts(c.len(), k.cout) {
        return None;
    }
    let mut out = k.clone();
    for u in 0..k.kh {
        for v in 0..k.kw {
            for i in 0..k.cin {
                for o in 0..k.cout {
                    if k.kind == KernelKind::Depthwise && i != o {
                        continue;
                    }
                    let w = k.at(u, v, i, o);
                    out.add_at(u, v, i, o, w * channel(c, o) - w);
                }
            }
        }
    }
    for (o, b) in out.bias.iter_mut().enumerate() {
        *b *= channel(c, o);
    }
    Some(out)
}

/// `k(x) + c`: the bias shifted by `c` (batch-norm's add).
pub fn shift_out(k: &Kernel, c: &[f64]) -> Option<Kernel> {
    if !broadcasts(c.len(), k.cout) {
        return None;
    }
    let mut out = k.clone();
    for (o, b) in out.bias.iter_mut().enumerate() {
        *b += channel(c, o);
    }
    Some(out)
}

/// `k(c ⊙ x)`: input channel `i` scaled by `c[i]`. Exact at borders since `0·c = 0`.
pub fn scale_in(k: &Kernel, c: &[f64]) -> Option<Kernel> {
    if !broadcasts(c.len(), k.cin) {
        return None;
    }
    let mut out = k.clone();
    for u in 0..k.kh {
        for v in 0..k.kw {
            for i in 0..k.cin {
                for o in 0..k.cout {
                    if k.kind == KernelKind::Depthwise && i != o {
                        continue;
                    }
                    let w = k.at(u, v, i, o);
                    out.add_at(u, v, i, o, w * channel(c, i) - w);
                }
            }
        }
    }
    Some(out)
}

/// Whether `k(x + c)` is one kernel: only without padding, where every tap reads a real
/// (shifted) pixel rather than a zero.
pub fn can_shift_in(k: &Kernel, len: usize) -> bool {
    k.pads == [0; 4] && broadcasts(len, k.cin)
}

/// `k(x + c)` (see [`can_shift_in`]): `b[o] += Σ W[u,v,i,o]·c[i]`.
pub fn shift_in(k: &Kernel, c: &[f64]) -> Option<Kernel> {
    if !can_shift_in(k, c.len()) {
        return None;
    }
    let mut out = k.clone();
    for o in 0..k.cout {
        let mut b = 0.0;
        for u in 0..k.kh {
            for v in 0..k.kw {
                for i in 0..k.cin {
                    b += k.at(u, v, i, o) * channel(c, i);
                }
            }
        }
        out.bias[o] += b;
    }
    Some(out)
}

/// `k(pad(x))` for a zero PAD of `[top, bottom, left, right]`: the pads simply add up.
pub fn pad(k: &Kernel, p: [usize; 4]) -> Option<Kernel> {
    if k.kind == KernelKind::Dense {
        return None;
    }
    let mut out = k.clone();
    for (a, b) in out.pads.iter_mut().zip(p) {
        *a += b;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct evaluation of a kernel on an NHWC input (N = 1), zero padding outside.
    pub(crate) fn apply(k: &Kernel, x: &[f64], h: usize, w: usize) -> (Vec<f64>, usize, usize) {
        let shape = k.output_shape(&[1, h, w, k.cin]).expect("valid shape");
        let (oh, ow) = (shape[1], shape[2]);
        let mut y = vec![0.0; oh * ow * k.cout];
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..k.cout {
                    let mut acc = k.bias[o];
                    for u in 0..k.kh {
                        for v in 0..k.kw {
                            let iy = (oy * k.stride[0] + u * k.dilation[0]) as isize - k.pads[0] as isize;
                            let ix = (ox * k.stride[1] + v * k.dilation[1]) as isize - k.pads[2] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for i in 0..k.cin {
                                acc += k.at(u, v, i, o) * x[(iy as usize * w + ix as usize) * k.cin + i];
                            }
                        }
                    }
                    y[(oy * ow + ox) * k.cout + o] = acc;
                }
            }
        }
        (y, oh, ow)
    }

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn random_kernel(kind: KernelKind, kh: usize, kw: usize, cin: usize, cout: usize, seed: &mut u64) -> Kernel {
        let mut k = Kernel::zeros(kind, kh, kw, cin, cout);
        for x in k.w.iter_mut().chain(k.bias.iter_mut()) {
            *x = lcg(seed);
        }
        k
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    fn same(mut k: Kernel, h: usize, w: usize) -> Kernel {
        let (a, b) = (k.same_pads(0, h), k.same_pads(1, w));
        k.pads = [a[0], a[1], b[0], b[1]];
        k
    }

    #[test]
    fn compose_same_then_pointwise_is_exact_at_borders() {
        let mut s = 7;
        let (h, w) = (6, 5);
        let k1 = same(random_kernel(KernelKind::Conv, 5, 5, 2, 8, &mut s), h, w);
        let k2 = random_kernel(KernelKind::Conv, 1, 1, 8, 3, &mut s);
        let x: Vec<f64> = (0..h * w * 2).map(|_| lcg(&mut s)).collect();
        let (mid, mh, mw) = apply(&k1, &x, h, w);
        let (want, ..) = apply(&k2, &mid, mh, mw);
        let kc = compose(&k2, &k1).expect("composable");
        assert_eq!((kc.kh, kc.kw, kc.pads), (5, 5, k1.pads));
        assert_eq!(kc.padding_for(h, w), PaddingFit::Same);
        close(&apply(&kc, &x, h, w).0, &want);
    }

    #[test]
    fn compose_valid_chain_adds_kernel_sizes() {
        let mut s = 3;
        let (h, w) = (9, 8);
        let k1 = random_kernel(KernelKind::Conv, 3, 3, 2, 4, &mut s);
        let mut k2 = random_kernel(KernelKind::Conv, 3, 2, 4, 3, &mut s);
        k2.stride = [2, 1];
        let x: Vec<f64> = (0..h * w * 2).map(|_| lcg(&mut s)).collect();
        let (mid, mh, mw) = apply(&k1, &x, h, w);
        let (want, ..) = apply(&k2, &mid, mh, mw);
        let kc = compose(&k2, &k1).expect("composable");
        assert_eq!((kc.kh, kc.kw, kc.stride), (5, 4, [2, 1]));
        close(&apply(&kc, &x, h, w).0, &want);
    }

    #[test]
    fn compose_refuses_padded_second_kernel() {
        let mut s = 1;
        let k1 = same(random_kernel(KernelKind::Conv, 3, 3, 2, 2, &mut s), 5, 5);
        let k2 = same(random_kernel(KernelKind::Conv, 3, 3, 2, 2, &mut s), 5, 5);
        assert!(compose(&k2, &k1).is_none());
        // A bias-free pointwise first kernel commutes with the padding.
        let mut p = random_kernel(KernelKind::Conv, 1, 1, 2, 2, &mut s);
        assert!(compose(&k2, &p).is_none());
        p.bias.fill(0.0);
        let kc = compose(&k2, &p).expect("pointwise without bias commutes with padding");
        let x: Vec<f64> = (0..25 * 2).map(|_| lcg(&mut s)).collect();
        let (mid, ..) = apply(&p, &x, 5, 5);
        close(&apply(&kc, &x, 5, 5).0, &apply(&k2, &mid, 5, 5).0);
    }

    #[test]
    fn depthwise_compositions() {
        let mut s = 11;
        let (h, w) = (5, 6);
        let dw = same(random_kernel(KernelKind::Depthwise, 3, 3, 4, 4, &mut s), h, w);
        let pw = random_kernel(KernelKind::Conv, 1, 1, 4, 5, &mut s);
        let x: Vec<f64> = (0..h * w * 4).map(|_| lcg(&mut s)).collect();
        let (mid, ..) = apply(&dw, &x, h, w);
        let kc = compose(&pw, &dw).expect("dw then pointwise");
        assert_eq!(kc.kind, KernelKind::Conv);
        close(&apply(&kc, &x, h, w).0, &apply(&pw, &mid, h, w).0);
        let dw2 = random_kernel(KernelKind::Depthwise, 1, 1, 4, 4, &mut s);
        let kd = compose(&dw2, &dw).expect("dw then dw");
        assert_eq!(kd.kind, KernelKind::Depthwise);
        close(&apply(&kd, &x, h, w).0, &apply(&dw2, &mid, h, w).0);
    }

    #[test]
    fn sum_of_branches_and_identity_matches_repvgg() {
        let mut s = 5;
        let (h, w) = (7, 4);
        let k3 = same(random_kernel(KernelKind::Conv, 3, 3, 3, 3, &mut s), h, w);
        let k1 = random_kernel(KernelKind::Conv, 1, 1, 3, 3, &mut s);
        let id = Kernel::identity(3, false);
        let x: Vec<f64> = (0..h * w * 3).map(|_| lcg(&mut s)).collect();
        let want: Vec<f64> =
            apply(&k3, &x, h, w).0.iter().zip(apply(&k1, &x, h, w).0).zip(&x).map(|((a, b), c)| a + b + c).collect();
        let merged = sum(&sum(&k3, &k1).expect("3x3 + 1x1"), &id).expect("+ identity");
        assert_eq!((merged.kh, merged.kw, merged.pads), (3, 3, k3.pads));
        assert_eq!(merged.padding_for(h, w), PaddingFit::Same);
        close(&apply(&merged, &x, h, w).0, &want);
    }

    #[test]
    fn sum_aligns_even_and_strided_kernels() {
        let mut s = 9;
        for (h, w, stride) in [(8, 7, 2), (6, 6, 1), (9, 5, 3)] {
            let mut a = random_kernel(KernelKind::Conv, 4, 3, 2, 2, &mut s);
            let mut b = random_kernel(KernelKind::Depthwise, 2, 1, 2, 2, &mut s);
            a.stride = [stride, stride];
            b.stride = [stride, stride];
            let (a, b) = (same(a, h, w), same(b, h, w));
            let x: Vec<f64> = (0..h * w * 2).map(|_| lcg(&mut s)).collect();
            let (ya, ..) = apply(&a, &x, h, w);
            let (yb, ..) = apply(&b, &x, h, w);
            let Some(m) = sum(&a, &b) else { continue };
            let want: Vec<f64> = ya.iter().zip(&yb).map(|(p, q)| p + q).collect();
            close(&apply(&m, &x, h, w).0, &want);
        }
    }

    #[test]
    fn affine_folds_are_exact() {
        let mut s = 2;
        let (h, w) = (4, 5);
        let k = same(random_kernel(KernelKind::Conv, 3, 3, 2, 3, &mut s), h, w);
        let x: Vec<f64> = (0..h * w * 2).map(|_| lcg(&mut s)).collect();
        let (y, ..) = apply(&k, &x, h, w);
        let (mul, add) = (vec![0.5, -2.0, 3.0], vec![1.0, 0.25, -4.0]);
        let bn = shift_out(&scale_out(&k, &mul).unwrap(), &add).unwrap();
        let want: Vec<f64> = y.iter().enumerate().map(|(j, v)| v * mul[j % 3] + add[j % 3]).collect();
        close(&apply(&bn, &x, h, w).0, &want);

        let cin = vec![2.0, -0.5];
        let xs: Vec<f64> = x.iter().enumerate().map(|(j, v)| v * cin[j % 2]).collect();
        close(&apply(&scale_in(&k, &cin).unwrap(), &x, h, w).0, &apply(&k, &xs, h, w).0);

        assert!(shift_in(&k, &cin).is_none(), "padded kernel must refuse an input shift");
        let mut valid = k.clone();
        valid.pads = [0; 4];
        let xa: Vec<f64> = x.iter().enumerate().map(|(j, v)| v + cin[j % 2]).collect();
        close(&apply(&shift_in(&valid, &cin).unwrap(), &x, h, w).0, &apply(&valid, &xa, h, w).0);
    }

    #[test]
    fn pad_then_valid_is_same() {
        let mut s = 4;
        let k = random_kernel(KernelKind::Conv, 3, 3, 1, 1, &mut s);
        let padded = pad(&k, [1, 1, 1, 1]).unwrap();
        assert_eq!(padded.padding_for(6, 6), PaddingFit::Same);
        let odd = pad(&k, [2, 0, 1, 1]).unwrap();
        assert_eq!(odd.padding_for(6, 6), PaddingFit::Explicit);
        assert_eq!(k.padding_for(6, 6), PaddingFit::Valid);
    }
}
