//! The `.npu` container: an [`NpuProgram`] as bytes, byte by byte as docs/artifact-format.md
//! describes it.
//!
//! A header (magic, format version, target name) and a section table whose entries carry
//! each section's offset, length and CRC-32, then the sections back to back. The header and
//! table have a CRC of their own and the file ends exactly where the last section does, so
//! no byte of a file is outside some checksum: any single changed byte is reported, with the
//! section and the byte offset where reading stopped. Writing is deterministic (the same
//! program gives the same bytes) and [`write_file`] replaces a file atomically.

use std::path::{Path, PathBuf};

use npuc_ir::{Activation, DType, Padding, Pool2dAttrs, Quantization};
use thiserror::Error;

use crate::program::{
    Command, CpuCall, IoDesc, MapEntry, MemoryMap, NpuCommand, NpuOp, NpuProgram, Region, TensorRef, WeightRef,
};
use crate::reorder::{Accelerator, Traversal};

/// First eight bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"NPUCNPU\0";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

/// The sections, in the order they appear (id = position + 1).
pub const SECTIONS: [&str; 9] =
    ["commands", "weights", "scale_bias", "luts", "constants", "memory_map", "io", "cpu", "metadata"];

/// Bytes of one section table entry.
const ENTRY_BYTES: usize = 24;

/// Why an artifact could not be read or written.
#[derive(Debug, Error)]
pub enum ArtifactError {
    /// The file does not start with [`MAGIC`].
    #[error("not an npuc artifact: the first 8 bytes are not \"NPUCNPU\\0\"")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("artifact format version {found} is not supported (this npuc reads version {VERSION})")]
    Version {
        /// Version in the file.
        found: u16,
    },
    /// The bytes end inside a structure.
    #[error("truncated in {section} at byte {offset}: {need} more bytes needed")]
    Truncated {
        /// Section (or "header").
        section: &'static str,
        /// Absolute byte offset where reading stopped.
        offset: u64,
        /// Bytes missing.
        need: u64,
    },
    /// A checksum does not match.
    #[error("{section} (bytes {offset}..{end}) is corrupted: CRC-32 {found:08x}, expected {expected:08x}")]
    Checksum {
        /// Section (or "header").
        section: &'static str,
        /// First byte.
        offset: u64,
        /// End byte.
        end: u64,
        /// CRC stored.
        expected: u32,
        /// CRC computed.
        found: u32,
    },
    /// A value is out of range or inconsistent.
    #[error("malformed {section} at byte {offset}: {reason}")]
    Malformed {
        /// Section (or "header").
        section: &'static str,
        /// Absolute byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------- writing

/// Little-endian byte writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt(&mut self, v: Option<u32>) {
        self.u32(v.unwrap_or(u32::MAX));
    }
    fn pair(&mut self, v: [u32; 2]) {
        self.u32(v[0]);
        self.u32(v[1]);
    }

    fn tensor(&mut self, t: &TensorRef) {
        self.u8(region_code(t.region));
        self.u64(t.offset);
        self.str(t.dtype.name());
        self.u8(t.shape.len() as u8);
        for &d in &t.shape {
            self.u32(d as u32);
        }
        match &t.quant {
            None => self.u8(0),
            Some(q) => {
                self.u8(1);
                self.len(q.scale.len());
                q.scale.iter().for_each(|&s| self.f32(s));
                self.len(q.zero_point.len());
                q.zero_point.iter().for_each(|&z| self.i64(z));
                self.u32(q.axis);
            }
        }
    }

    fn op(&mut self, op: &NpuOp) {
        self.u8(op_code(op));
        match op {
            NpuOp::Conv2d { padding, stride, dilation, activation } => {
                self.u8(padding_code(*padding));
                self.pair(*stride);
                self.pair(*dilation);
                self.u8(act_code(*activation));
            }
            NpuOp::DepthwiseConv2d { padding, stride, dilation, depth_multiplier, activation } => {
                self.u8(padding_code(*padding));
                self.pair(*stride);
                self.pair(*dilation);
                self.u8(act_code(*activation));
                self.u32(*depth_multiplier);
            }
            NpuOp::FullyConnected { activation, keep_num_dims } => {
                self.u8(act_code(*activation));
                self.u8(u8::from(*keep_num_dims));
            }
            NpuOp::AveragePool(a) | NpuOp::MaxPool(a) => {
                self.u8(padding_code(a.padding));
                self.pair(a.stride);
                self.pair(a.filter);
                self.u8(act_code(a.activation));
            }
            NpuOp::Add { activation, pot_scale_int16 } | NpuOp::Sub { activation, pot_scale_int16 } => {
                self.u8(act_code(*activation));
                self.u8(u8::from(*pot_scale_int16));
            }
            NpuOp::Mul { activation } => self.u8(act_code(*activation)),
            NpuOp::Softmax { beta } => self.f32(*beta),
            NpuOp::Mean { keep_dims } => self.u8(u8::from(*keep_dims)),
            NpuOp::Concatenation { axis } => self.i32(*axis),
            NpuOp::Maximum | NpuOp::Minimum | NpuOp::Prelu | NpuOp::Pad | NpuOp::Lut => {}
        }
    }

    fn command(&mut self, c: &Command) {
        match c {
            Command::Npu(n) => {
                self.u8(1);
                self.op(&n.op);
                self.str(&n.name);
                self.len(n.operands.len());
                for o in &n.operands {
                    match o {
                        None => self.u8(0),
                        Some(t) => {
                            self.u8(1);
                            self.tensor(t);
                        }
                    }
                }
                self.len(n.outputs.len());
                n.outputs.iter().for_each(|t| self.tensor(t));
                match &n.weights {
                    None => self.u8(0),
                    Some(w) => {
                        self.u8(1);
                        self.u32(w.stream);
                        w.ohwi.iter().for_each(|&d| self.u32(d as u32));
                        self.u8(accel_code(w.accelerator));
                        self.u8(traversal_code(w.traversal));
                        self.u32(w.ofm_block_depth as u32);
                        self.u8(w.ifm_bits as u8);
                        self.u8(w.dilation.0 as u8);
                        self.u8(w.dilation.1 as u8);
                        self.tensor(&w.tensor);
                    }
                }
                self.opt(n.scale_bias);
                self.opt(n.lut);
                self.u32(n.stripe.0);
                self.u32(n.stripe.1);
                match n.clamp {
                    None => self.u8(0),
                    Some([lo, hi]) => {
                        self.u8(1);
                        self.i32(lo);
                        self.i32(hi);
                    }
                }
                match n.pad {
                    None => self.u8(0),
                    Some(p) => {
                        self.u8(1);
                        p.iter().for_each(|&v| self.u32(v));
                    }
                }
            }
            Command::Dma { src_region, src, dst_region, dst, len } => {
                self.u8(2);
                self.u8(region_code(*src_region));
                self.u64(*src);
                self.u8(region_code(*dst_region));
                self.u64(*dst);
                self.u64(*len);
            }
            Command::Cpu(c) => {
                self.u8(3);
                self.u32(c.subgraph);
                self.len(c.inputs.len());
                c.inputs.iter().for_each(|t| self.tensor(t));
                self.len(c.outputs.len());
                c.outputs.iter().for_each(|t| self.tensor(t));
            }
        }
    }
}

fn region_code(r: Region) -> u8 {
    match r {
        Region::Sram => 0,
        Region::Flash => 1,
        Region::Dram => 2,
    }
}

fn padding_code(p: Padding) -> u8 {
    match p {
        Padding::Same => 0,
        Padding::Valid => 1,
    }
}

fn act_code(a: Activation) -> u8 {
    Activation::ALL.iter().position(|&x| x == a).unwrap_or(0) as u8
}

const ACCELERATORS: [Accelerator; 6] = [
    Accelerator::U55_32,
    Accelerator::U55_64,
    Accelerator::U55_128,
    Accelerator::U55_256,
    Accelerator::U65_256,
    Accelerator::U65_512,
];

fn accel_code(a: Accelerator) -> u8 {
    ACCELERATORS.iter().position(|&x| x == a).unwrap_or(0) as u8
}

const TRAVERSALS: [Traversal; 3] = [Traversal::DepthFirst, Traversal::PartKernelFirst, Traversal::Depthwise];

fn traversal_code(t: Traversal) -> u8 {
    TRAVERSALS.iter().position(|&x| x == t).unwrap_or(0) as u8
}

fn op_code(op: &NpuOp) -> u8 {
    match op {
        NpuOp::Conv2d { .. } => 1,
        NpuOp::DepthwiseConv2d { .. } => 2,
        NpuOp::FullyConnected { .. } => 3,
        NpuOp::AveragePool(_) => 4,
        NpuOp::MaxPool(_) => 5,
        NpuOp::Add { .. } => 6,
        NpuOp::Sub { .. } => 7,
        NpuOp::Mul { .. } => 8,
        NpuOp::Maximum => 9,
        NpuOp::Minimum => 10,
        NpuOp::Prelu => 11,
        NpuOp::Softmax { .. } => 12,
        NpuOp::Mean { .. } => 13,
        NpuOp::Concatenation { .. } => 14,
        NpuOp::Pad => 15,
        NpuOp::Lut => 16,
    }
}

fn blobs(list: &[Vec<u8>]) -> Vec<u8> {
    let mut w = W::default();
    w.len(list.len());
    list.iter().for_each(|b| w.bytes(b));
    w.0
}

/// The bytes of each section, in [`SECTIONS`] order.
fn sections(p: &NpuProgram) -> [Vec<u8>; 9] {
    let mut cmds = W::default();
    cmds.len(p.commands.len());
    p.commands.iter().for_each(|c| cmds.command(c));

    let mut sb = W::default();
    sb.len(p.scale_bias.len());
    for set in &p.scale_bias {
        sb.len(set.len());
        set.iter().for_each(|r| sb.0.extend_from_slice(r));
    }

    let mut map = W::default();
    map.u64(p.memory.sram_bytes);
    map.u64(p.memory.dram_bytes);
    map.len(p.memory.entries.len());
    for e in &p.memory.entries {
        map.str(&e.name);
        map.u8(region_code(e.region));
        map.u64(e.offset);
        map.u64(e.size);
        map.u32(e.first);
        map.u32(e.last);
    }

    let mut io = W::default();
    for list in [&p.inputs, &p.outputs] {
        io.len(list.len());
        for d in list {
            io.str(&d.name);
            io.tensor(&d.tensor);
        }
    }

    // serde_json's default map is ordered by key, so the text is deterministic.
    let meta = serde_json::to_vec(&p.metadata).unwrap_or_default();
    [cmds.0, blobs(&p.weights), sb.0, blobs(&p.luts), p.constants.clone(), map.0, io.0, p.cpu_model.clone(), meta]
}

/// The artifact bytes of a program.
pub fn write(p: &NpuProgram) -> Vec<u8> {
    let secs = sections(p);
    let header_len = 18 + p.target.len() + ENTRY_BYTES * secs.len() + 4;
    let mut w = W::default();
    w.0.extend_from_slice(&MAGIC);
    w.u16(VERSION);
    w.u16(secs.len() as u16);
    w.u32(header_len as u32);
    w.u16(p.target.len() as u16);
    w.0.extend_from_slice(p.target.as_bytes());
    let mut offset = header_len as u64;
    for (i, s) in secs.iter().enumerate() {
        w.u32(i as u32 + 1);
        w.u32(crc32fast::hash(s));
        w.u64(offset);
        w.u64(s.len() as u64);
        offset += s.len() as u64;
    }
    let crc = crc32fast::hash(&w.0);
    w.u32(crc);
    for s in &secs {
        w.0.extend_from_slice(s);
    }
    w.0
}

/// Each section's name and size in bytes, in file order.
pub fn section_sizes(p: &NpuProgram) -> Vec<(&'static str, u64)> {
    SECTIONS.iter().copied().zip(sections(p).iter().map(|s| s.len() as u64)).collect()
}

/// Writes the artifact to `path` atomically: a temporary file beside it, then a rename.
pub fn write_file(path: &Path, p: &NpuProgram) -> Result<(), ArtifactError> {
    let io = |source| ArtifactError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, &write(p)).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

// ---------------------------------------------------------------- reading

/// Bounds-checked little-endian reader over one section.
struct R<'a> {
    section: &'static str,
    base: u64,
    data: &'a [u8],
    pos: usize,
}

type Res<T> = Result<T, ArtifactError>;

impl<'a> R<'a> {
    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }
    fn bad<T>(&self, reason: impl Into<String>) -> Res<T> {
        Err(ArtifactError::Malformed { section: self.section, offset: self.at(), reason: reason.into() })
    }
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(ArtifactError::Truncated { section: self.section, offset: self.at(), need: (n - left) as u64 });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Res<i32> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Res<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn f32(&mut self) -> Res<f32> {
        Ok(f32::from_le_bytes(self.arr()?))
    }
    /// A count of items of at least `min_bytes` each, refused if the section cannot hold
    /// them (so a corrupted count never drives a huge allocation).
    fn count(&mut self, min_bytes: usize) -> Res<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes.max(1)) > self.data.len() - self.pos {
            return self.bad(format!("count {n} exceeds what the section holds"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Res<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }
    fn str(&mut self) -> Res<String> {
        let at = self.at();
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| ArtifactError::Malformed {
            section: self.section,
            offset: at,
            reason: "string is not UTF-8".into(),
        })
    }
    fn opt(&mut self) -> Res<Option<u32>> {
        let v = self.u32()?;
        Ok((v != u32::MAX).then_some(v))
    }
    fn flag(&mut self) -> Res<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => self.bad(format!("flag {v} is neither 0 nor 1")),
        }
    }
    fn pair(&mut self) -> Res<[u32; 2]> {
        Ok([self.u32()?, self.u32()?])
    }
    fn code<T: Copy>(&mut self, table: &[T], what: &str) -> Res<T> {
        let c = self.u8()?;
        match table.get(c as usize) {
            Some(&t) => Ok(t),
            None => self.bad(format!("unknown {what} code {c}")),
        }
    }
    fn region(&mut self) -> Res<Region> {
        self.code(&[Region::Sram, Region::Flash, Region::Dram], "region")
    }
    fn padding(&mut self) -> Res<Padding> {
        self.code(&[Padding::Same, Padding::Valid], "padding")
    }
    fn act(&mut self) -> Res<Activation> {
        self.code(&Activation::ALL, "activation")
    }
    fn end(&self) -> Res<()> {
        if self.pos != self.data.len() {
            return self.bad(format!("{} bytes left over", self.data.len() - self.pos));
        }
        Ok(())
    }

    fn tensor(&mut self) -> Res<TensorRef> {
        let region = self.region()?;
        let offset = self.u64()?;
        let at = self.at();
        let name = self.str()?;
        let dtype = DType::from_name(&name).ok_or_else(|| ArtifactError::Malformed {
            section: self.section,
            offset: at,
            reason: format!("unknown dtype '{name}'"),
        })?;
        let rank = self.u8()? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(self.u32()? as usize);
        }
        let quant = if self.flag()? {
            let n = self.count(4)?;
            let scale = (0..n).map(|_| self.f32()).collect::<Res<Vec<_>>>()?;
            let n = self.count(8)?;
            let zero_point = (0..n).map(|_| self.i64()).collect::<Res<Vec<_>>>()?;
            Some(Quantization::per_channel(scale, zero_point, self.u32()?))
        } else {
            None
        };
        Ok(TensorRef { region, offset, dtype, shape, quant })
    }

    fn op(&mut self) -> Res<NpuOp> {
        let code = self.u8()?;
        Ok(match code {
            1 => NpuOp::Conv2d {
                padding: self.padding()?,
                stride: self.pair()?,
                dilation: self.pair()?,
                activation: self.act()?,
            },
            2 => NpuOp::DepthwiseConv2d {
                padding: self.padding()?,
                stride: self.pair()?,
                dilation: self.pair()?,
                activation: self.act()?,
                depth_multiplier: self.u32()?,
            },
            3 => NpuOp::FullyConnected { activation: self.act()?, keep_num_dims: self.flag()? },
            4 | 5 => {
                let a = Pool2dAttrs {
                    padding: self.padding()?,
                    stride: self.pair()?,
                    filter: self.pair()?,
                    activation: self.act()?,
                };
                if code == 4 {
                    NpuOp::AveragePool(a)
                } else {
                    NpuOp::MaxPool(a)
                }
            }
            6 => NpuOp::Add { activation: self.act()?, pot_scale_int16: self.flag()? },
            7 => NpuOp::Sub { activation: self.act()?, pot_scale_int16: self.flag()? },
            8 => NpuOp::Mul { activation: self.act()? },
            9 => NpuOp::Maximum,
            10 => NpuOp::Minimum,
            11 => NpuOp::Prelu,
            12 => NpuOp::Softmax { beta: self.f32()? },
            13 => NpuOp::Mean { keep_dims: self.flag()? },
            14 => NpuOp::Concatenation { axis: self.i32()? },
            15 => NpuOp::Pad,
            16 => NpuOp::Lut,
            c => {
                self.pos -= 1;
                return self.bad(format!("unknown NPU operation code {c}"));
            }
        })
    }

    fn tensors(&mut self) -> Res<Vec<TensorRef>> {
        let n = self.count(12)?;
        (0..n).map(|_| self.tensor()).collect()
    }

    fn command(&mut self) -> Res<Command> {
        match self.u8()? {
            1 => {
                let op = self.op()?;
                let name = self.str()?;
                let n = self.count(1)?;
                let mut operands = Vec::with_capacity(n);
                for _ in 0..n {
                    operands.push(if self.flag()? { Some(self.tensor()?) } else { None });
                }
                let outputs = self.tensors()?;
                let weights = if self.flag()? {
                    let stream = self.u32()?;
                    let ohwi = [self.u32()? as usize, self.u32()? as usize, self.u32()? as usize, self.u32()? as usize];
                    Some(WeightRef {
                        stream,
                        ohwi,
                        accelerator: self.code(&ACCELERATORS, "accelerator")?,
                        traversal: self.code(&TRAVERSALS, "traversal")?,
                        ofm_block_depth: self.u32()? as usize,
                        ifm_bits: u32::from(self.u8()?),
                        dilation: (self.u8()? as usize, self.u8()? as usize),
                        tensor: self.tensor()?,
                    })
                } else {
                    None
                };
                let scale_bias = self.opt()?;
                let lut = self.opt()?;
                let stripe = (self.u32()?, self.u32()?);
                let clamp = if self.flag()? { Some([self.i32()?, self.i32()?]) } else { None };
                let pad = if self.flag()? { Some([self.u32()?, self.u32()?, self.u32()?, self.u32()?]) } else { None };
                Ok(Command::Npu(Box::new(NpuCommand {
                    op,
                    name,
                    operands,
                    outputs,
                    weights,
                    scale_bias,
                    lut,
                    stripe,
                    clamp,
                    pad,
                })))
            }
            2 => Ok(Command::Dma {
                src_region: self.region()?,
                src: self.u64()?,
                dst_region: self.region()?,
                dst: self.u64()?,
                len: self.u64()?,
            }),
            3 => Ok(Command::Cpu(CpuCall { subgraph: self.u32()?, inputs: self.tensors()?, outputs: self.tensors()? })),
            t => {
                self.pos -= 1;
                self.bad(format!("unknown command tag {t}"))
            }
        }
    }

    fn blobs(&mut self) -> Res<Vec<Vec<u8>>> {
        let n = self.count(4)?;
        (0..n).map(|_| self.bytes().map(<[u8]>::to_vec)).collect()
    }
}

/// Reads an artifact, checking magic, version, every checksum and every structure.
pub fn read(bytes: &[u8]) -> Result<NpuProgram, ArtifactError> {
    let mut h = R { section: "header", base: 0, data: bytes, pos: 0 };
    if h.take(8).map_or(true, |m| m != MAGIC) {
        return Err(ArtifactError::BadMagic);
    }
    let version = h.u16()?;
    if version != VERSION {
        return Err(ArtifactError::Version { found: version });
    }
    let count = h.u16()? as usize;
    let header_len = h.u32()? as usize;
    if header_len > bytes.len() || header_len < 22 {
        return Err(ArtifactError::Truncated {
            section: "header",
            offset: bytes.len() as u64,
            need: header_len.saturating_sub(bytes.len()) as u64,
        });
    }
    let stored = u32::from_le_bytes(bytes[header_len - 4..header_len].try_into().unwrap_or([0; 4]));
    let found = crc32fast::hash(&bytes[..header_len - 4]);
    if stored != found {
        return Err(ArtifactError::Checksum {
            section: "header",
            offset: 0,
            end: header_len as u64,
            expected: stored,
            found,
        });
    }
    if count != SECTIONS.len() {
        return h.bad(format!("{count} sections, format version {VERSION} has {}", SECTIONS.len()));
    }
    let tlen = h.u16()? as usize;
    let target = String::from_utf8(h.take(tlen)?.to_vec()).map_err(|_| ArtifactError::Malformed {
        section: "header",
        offset: 18,
        reason: "target name is not UTF-8".into(),
    })?;
    let mut next = header_len as u64;
    let mut data: Vec<R<'_>> = Vec::with_capacity(count);
    for (i, &name) in SECTIONS.iter().enumerate() {
        let at = h.at();
        let (id, crc, offset, len) = (h.u32()?, h.u32()?, h.u64()?, h.u64()?);
        if id != i as u32 + 1 {
            return Err(ArtifactError::Malformed {
                section: "header",
                offset: at,
                reason: format!("section {i} has id {id}, expected {}", i + 1),
            });
        }
        if offset != next {
            return Err(ArtifactError::Malformed {
                section: "header",
                offset: at,
                reason: format!("{name} starts at {offset}, expected {next}"),
            });
        }
        let end = offset.checked_add(len).filter(|&e| e <= bytes.len() as u64).ok_or(ArtifactError::Truncated {
            section: name,
            offset: bytes.len() as u64,
            need: offset.saturating_add(len).saturating_sub(bytes.len() as u64),
        })?;
        let s = &bytes[offset as usize..end as usize];
        let found = crc32fast::hash(s);
        if found != crc {
            return Err(ArtifactError::Checksum { section: name, offset, end, expected: crc, found });
        }
        data.push(R { section: name, base: offset, data: s, pos: 0 });
        next = end;
    }
    if h.pos != header_len - 4 {
        return Err(ArtifactError::Malformed {
            section: "header",
            offset: h.at(),
            reason: "header length does not match its contents".into(),
        });
    }
    if next != bytes.len() as u64 {
        return Err(ArtifactError::Malformed {
            section: "metadata",
            offset: next,
            reason: format!("{} bytes after the last section", bytes.len() as u64 - next),
        });
    }
    let mut it = data.into_iter();
    let mut sec = || it.next().ok_or(ArtifactError::BadMagic);

    let mut r = sec()?;
    let n = r.count(1)?;
    let commands = (0..n).map(|_| r.command()).collect::<Res<Vec<_>>>()?;
    r.end()?;

    let mut r = sec()?;
    let weights = r.blobs()?;
    r.end()?;

    let mut r = sec()?;
    let n = r.count(4)?;
    let mut scale_bias = Vec::with_capacity(n);
    for _ in 0..n {
        let c = r.count(10)?;
        scale_bias.push((0..c).map(|_| r.arr::<10>()).collect::<Res<Vec<_>>>()?);
    }
    r.end()?;

    let mut r = sec()?;
    let luts = r.blobs()?;
    r.end()?;

    let r = sec()?;
    let constants = r.data.to_vec();

    let mut r = sec()?;
    let (sram_bytes, dram_bytes) = (r.u64()?, r.u64()?);
    let n = r.count(29)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(MapEntry {
            name: r.str()?,
            region: r.region()?,
            offset: r.u64()?,
            size: r.u64()?,
            first: r.u32()?,
            last: r.u32()?,
        });
    }
    r.end()?;
    let memory = MemoryMap { sram_bytes, dram_bytes, entries };

    let mut r = sec()?;
    let mut io = [Vec::new(), Vec::new()];
    for list in &mut io {
        let n = r.count(16)?;
        for _ in 0..n {
            list.push(IoDesc { name: r.str()?, tensor: r.tensor()? });
        }
    }
    r.end()?;
    let [inputs, outputs] = io;

    let r = sec()?;
    let cpu_model = r.data.to_vec();

    let r = sec()?;
    let metadata = serde_json::from_slice(r.data).map_err(|e| ArtifactError::Malformed {
        section: "metadata",
        offset: r.base + e.column() as u64,
        reason: format!("not a JSON object: {e}"),
    })?;

    Ok(NpuProgram {
        target,
        commands,
        weights,
        scale_bias,
        luts,
        constants,
        memory,
        inputs,
        outputs,
        cpu_model,
        metadata,
    })
}

/// Reads an artifact file.
pub fn read_file(path: &Path) -> Result<NpuProgram, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io { path: path.to_path_buf(), source })?;
    read(&bytes)
}
