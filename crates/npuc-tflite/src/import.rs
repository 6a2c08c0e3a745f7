//! TFLite flatbuffer → [`Module`].
//!
//! The file is checked by the flatbuffers verifier before anything is read, every index is
//! bounds-checked with the place it occurs in, and constant data is sliced out of the
//! caller's [`Bytes`] without copying.

use bytes::Bytes;
use flatbuffers::{ForwardsUOffset, Vector, VerifierOptions};

use npuc_ir::{
    Constant, DimFormat, DimMetadata, Graph, IndexVector, Metadata, Module, OpaqueOp, Operation, Quantization,
    Signature, Sparsity, TensorType, Value, ValueId, MAX_TENSOR_ELEMENTS,
};

use crate::error::TfliteError;
use crate::generated::tflite as fb;
use crate::ops;

/// Limits handed to the flatbuffers verifier. Real models nest about 6 deep; the table
/// bound scales with the file so a large model passes and a hostile small one cannot make
/// the verifier walk billions of tables.
///
/// The apparent size (bytes verified, a shared table or string counted once per reference)
/// scales with the file too. Converter output is a tree read about once (the fixtures stay
/// under 1.7 times their size; shared vtables are the excess), whereas a hostile file can
/// reference one long name or shape vector from thousands of tensors, each of which the
/// importer copies: a 270 KB file made `npuc inspect` take 3.9 GB and 33 s under the
/// former fixed 2 GiB bound.
fn verifier_options(len: usize) -> VerifierOptions {
    VerifierOptions {
        max_depth: 64,
        max_tables: (len / 4).max(1 << 16),
        max_apparent_size: len.saturating_mul(16).clamp(1 << 22, 1 << 31),
        ignore_missing_null_terminator: false,
    }
}

/// Reads a TFLite model from its bytes into a verified [`Module`].
pub fn import(bytes: Bytes) -> Result<Module, TfliteError> {
    if bytes.len() < 8 {
        return Err(TfliteError::NotTflite {
            reason: format!("file is {} bytes, too short for a flatbuffer", bytes.len()),
        });
    }
    if !fb::model_buffer_has_identifier(&bytes) {
        let id = String::from_utf8_lossy(&bytes[4..8]).escape_default().to_string();
        return Err(TfliteError::NotTflite { reason: format!("file identifier is \"{id}\", expected \"TFL3\"") });
    }
    let opts = verifier_options(bytes.len());
    let model = fb::root_as_model_with_opts(&opts, &bytes).map_err(|e| flatbuffer_error(&e, &opts, bytes.len()))?;
    if model.version() != 3 {
        return Err(TfliteError::invalid(
            "model",
            format!("schema version {} (npuc reads version 3)", model.version()),
        ));
    }
    if model.external_buffers().is_some_and(|v| !v.is_empty()) {
        return Err(TfliteError::Unsupported { place: "model".into(), what: "external buffers".into() });
    }
    let importer = Importer { file: &bytes, model, buffers: read_buffers(&bytes, model)? };
    importer.module()
}

/// The verifier's finding as one line: what is wrong, then where, as the path of fields
/// and vector elements from the root (`model.buffers[3].data`). The flatbuffers crate's own
/// message spans several lines, and the driver promises a single line per error.
fn flatbuffer_error(e: &flatbuffers::InvalidFlatbuffer, opts: &VerifierOptions, len: usize) -> TfliteError {
    use flatbuffers::{ErrorTraceDetail as D, InvalidFlatbuffer as F};
    let what = match e {
        F::TooManyTables => format!("more than {} tables to verify", opts.max_tables),
        F::ApparentSizeTooLarge => {
            format!("more than {} bytes to verify, counting shared data once per reference", opts.max_apparent_size)
        }
        F::DepthLimitReached => format!("tables nested more than {} deep", opts.max_depth),
        _ => e.to_string().lines().next().unwrap_or_default().trim_end_matches('.').to_string(),
    };
    let trace: &[D] = match e {
        F::MissingRequiredField { error_trace, .. }
        | F::Unaligned { error_trace, .. }
        | F::RangeOutOfBounds { error_trace, .. }
        | F::InconsistentUnion { error_trace, .. }
        | F::Utf8Error { error_trace, .. }
        | F::MissingNullTerminator { error_trace, .. }
        | F::SignedOffsetOutOfBounds { error_trace, .. } => error_trace.as_ref(),
        _ => &[],
    };
    // The trace lists the innermost step first.
    let mut place = String::from("model");
    for d in trace.iter().rev() {
        match d {
            D::TableField { field_name, .. } => place.push_str(&format!(".{field_name}")),
            D::VectorElement { index, .. } => place.push_str(&format!("[{index}]")),
            D::UnionVariant { variant, .. } => place.push_str(&format!(" as {variant}")),
        }
    }
    if let Some(D::TableField { position, .. } | D::VectorElement { position, .. } | D::UnionVariant { position, .. }) =
        trace.first()
    {
        place.push_str(&format!(" at byte {position}"));
    }
    TfliteError::invalid(place, format!("corrupt flatbuffer: {what} (file is {len} bytes)"))
}

/// Reads and imports a model file; errors name the path.
pub fn import_file(path: &std::path::Path) -> Result<Module, FileError> {
    let data = std::fs::read(path).map_err(|e| FileError { path: path.display().to_string(), error: e.into() })?;
    import(Bytes::from(data)).map_err(|e| FileError { path: path.display().to_string(), error: e.into() })
}

/// An error tied to the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {error}")]
pub struct FileError {
    /// The file.
    pub path: String,
    /// What went wrong.
    #[source]
    pub error: FileErrorKind,
}

/// What went wrong with a file.
#[derive(Debug, thiserror::Error)]
pub enum FileErrorKind {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The contents were rejected.
    #[error("{0}")]
    Tflite(#[from] TfliteError),
}

/// Each buffer's bytes (`None` for empty ones), sliced from the file.
fn read_buffers(file: &Bytes, model: fb::Model<'_>) -> Result<Vec<Option<Bytes>>, TfliteError> {
    let Some(buffers) = model.buffers() else { return Ok(Vec::new()) };
    let base = file.as_ptr() as usize;
    let mut out = Vec::with_capacity(buffers.len());
    for (i, b) in buffers.iter().enumerate() {
        let place = || format!("buffer {i}");
        let data = match b.data() {
            Some(d) if !d.is_empty() => {
                let start = d.bytes().as_ptr() as usize - base;
                Some(file.slice(start..start + d.len()))
            }
            _ if b.offset() > 1 => {
                // Large models keep buffer contents after the flatbuffer (offset/size).
                let (off, size) = (b.offset(), b.size());
                let end = off.checked_add(size).filter(|&e| e <= file.len() as u64).ok_or_else(|| {
                    TfliteError::invalid(
                        place(),
                        format!("data at offset {off} size {size} lies outside the {}-byte file", file.len()),
                    )
                })?;
                Some(file.slice(off as usize..end as usize))
            }
            _ => None,
        };
        out.push(data);
    }
    Ok(out)
}

/// Little-endian f32s from a flatbuffer vector's bytes (a straight loop that vectorizes;
/// per-channel scale lists hold thousands of entries).
fn le_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Little-endian i64s from a flatbuffer vector's bytes.
fn le_i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk"))).collect()
}

struct Importer<'a> {
    file: &'a Bytes,
    model: fb::Model<'a>,
    buffers: Vec<Option<Bytes>>,
}

/// How an operator code resolves.
#[derive(Clone)]
struct OpCode {
    builtin: fb::BuiltinOperator,
    custom: Option<String>,
    version: i32,
}

impl OpCode {
    fn name(&self) -> String {
        match &self.custom {
            Some(c) => c.clone(),
            None => {
                self.builtin.variant_name().map(str::to_string).unwrap_or_else(|| format!("BUILTIN_{}", self.builtin.0))
            }
        }
    }
}

fn index_vector(t: fb::SparseIndexVector, tab: &fb::DimensionMetadata<'_>, segments: bool) -> Option<IndexVector> {
    let (i32v, u16v, u8v) = if segments {
        (
            tab.array_segments_as_int_32_vector(),
            tab.array_segments_as_uint_16_vector(),
            tab.array_segments_as_uint_8_vector(),
        )
    } else {
        (
            tab.array_indices_as_int_32_vector(),
            tab.array_indices_as_uint_16_vector(),
            tab.array_indices_as_uint_8_vector(),
        )
    };
    match t {
        fb::SparseIndexVector::Int32Vector => {
            Some(IndexVector::I32(i32v?.values().map(|v| v.iter().collect()).unwrap_or_default()))
        }
        fb::SparseIndexVector::Uint16Vector => {
            Some(IndexVector::U16(u16v?.values().map(|v| v.iter().collect()).unwrap_or_default()))
        }
        fb::SparseIndexVector::Uint8Vector => {
            Some(IndexVector::U8(u8v?.values().map(|v| v.iter().collect()).unwrap_or_default()))
        }
        _ => None,
    }
}

impl<'a> Importer<'a> {
    fn module(&self) -> Result<Module, TfliteError> {
        let opcodes = self.opcodes()?;
        let subgraphs =
            self.model.subgraphs().ok_or(TfliteError::Missing { place: "model".into(), field: "subgraphs" })?;
        if subgraphs.is_empty() {
            return Err(TfliteError::invalid("model", "has no subgraphs"));
        }
        let mut graphs = Vec::with_capacity(subgraphs.len());
        for (si, sg) in subgraphs.iter().enumerate() {
            graphs.push(self.graph(si, sg, &opcodes)?);
        }
        let signatures = self.signatures(&graphs, subgraphs)?;
        let metadata = self.metadata()?;
        let module = Module {
            graphs,
            signatures,
            metadata,
            description: self.model.description().unwrap_or_default().to_string(),
        };
        for (i, g) in module.graphs.iter().enumerate() {
            npuc_ir::verify::verify_graph(g).map_err(|source| TfliteError::Verify { graph: i, source })?;
        }
        for i in 0..module.graphs.len() {
            npuc_ir::verify::verify_graph_calls(&module, i)
                .map_err(|source| TfliteError::Verify { graph: i, source })?;
        }
        npuc_ir::verify::verify_no_recursion(&module).map_err(|source| TfliteError::Verify { graph: 0, source })?;
        Ok(module)
    }

    fn opcodes(&self) -> Result<Vec<OpCode>, TfliteError> {
        let Some(codes) = self.model.operator_codes() else { return Ok(Vec::new()) };
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // Codes above 127 live in `builtin_code`; older files only have the
                // deprecated i8 field. The larger of the two is the real code.
                let builtin = fb::BuiltinOperator(i32::from(c.deprecated_builtin_code()).max(c.builtin_code().0));
                let custom = if builtin == fb::BuiltinOperator::CUSTOM {
                    Some(
                        c.custom_code()
                            .ok_or(TfliteError::Missing { place: format!("operator code {i}"), field: "custom_code" })?
                            .to_string(),
                    )
                } else {
                    None
                };
                Ok(OpCode { builtin, custom, version: c.version() })
            })
            .collect()
    }

    fn buffer(&self, index: u32, place: &str) -> Result<Option<Bytes>, TfliteError> {
        self.buffers.get(index as usize).cloned().ok_or_else(|| TfliteError::BadIndex {
            place: place.to_string(),
            what: "buffer",
            index: i64::from(index),
            len: self.buffers.len(),
        })
    }

    fn tensor_index(
        &self,
        raw: i32,
        ntensors: usize,
        place: &str,
        optional: bool,
    ) -> Result<Option<ValueId>, TfliteError> {
        if raw == -1 && optional {
            return Ok(None);
        }
        if raw < 0 || raw as usize >= ntensors {
            return Err(TfliteError::BadIndex {
                place: place.to_string(),
                what: "tensor",
                index: i64::from(raw),
                len: ntensors,
            });
        }
        Ok(Some(ValueId(raw as u32)))
    }

    fn value(&self, si: usize, ti: usize, t: fb::Tensor<'_>) -> Result<Value, TfliteError> {
        let name = t.name().unwrap_or_default();
        // Formatted only on the error path: a large model has thousands of tensors.
        let place = || format!("subgraph {si}, tensor {ti} '{name}'");
        let dtype = ops::dtype_from_tflite(t.type_()).ok_or_else(|| TfliteError::Unsupported {
            place: place(),
            what: format!("tensor type {}", t.type_().variant_name().unwrap_or("unknown")),
        })?;
        let mut shape = Vec::new();
        if let Some(s) = t.shape() {
            for d in s.iter() {
                let d = usize::try_from(d)
                    .map_err(|_| TfliteError::invalid(place(), format!("negative dimension {d} in shape")))?;
                shape.push(d);
            }
        }
        let ty = TensorType::new(dtype, shape);
        match ty.num_elements() {
            Some(n) if n <= MAX_TENSOR_ELEMENTS => {}
            _ => {
                return Err(TfliteError::invalid(
                    place(),
                    format!("shape {:?} declares more than 2^32 elements", ty.shape),
                ))
            }
        }
        let mut v = Value::new(name, ty);
        v.shape_signature = t.shape_signature().map(|s| s.iter().map(i64::from).collect());
        v.is_variable = t.is_variable();
        if t.buffer() != 0 {
            v.data = self.buffer(t.buffer(), &place())?.map(Constant::new);
        }
        if let Some(q) = t.quantization() {
            if q.details_type() != fb::QuantizationDetails::NONE {
                return Err(TfliteError::Unsupported {
                    place: place(),
                    what: format!("quantization details {}", q.details_type().variant_name().unwrap_or("unknown")),
                });
            }
            let quant = Quantization {
                scale: q.scale().map(|v| le_f32s(v.bytes())).unwrap_or_default(),
                zero_point: q.zero_point().map(|v| le_i64s(v.bytes())).unwrap_or_default(),
                axis: u32::try_from(q.quantized_dimension()).map_err(|_| {
                    TfliteError::invalid(place(), format!("negative quantized_dimension {}", q.quantized_dimension()))
                })?,
                min: q.min().map(|v| v.iter().collect()).unwrap_or_default(),
                max: q.max().map(|v| v.iter().collect()).unwrap_or_default(),
            };
            if !quant.is_empty() {
                v.ty.quant = Some(quant);
            }
        }
        if let Some(sp) = t.sparsity() {
            let mut dims = Vec::new();
            for (di, d) in sp.dim_metadata().iter().flatten().enumerate() {
                let format = match d.format() {
                    fb::DimensionType::DENSE => DimFormat::Dense,
                    fb::DimensionType::SPARSE_CSR => DimFormat::SparseCsr,
                    other => {
                        return Err(TfliteError::invalid(
                            place(),
                            format!("sparsity dimension {di}: unknown format {}", other.0),
                        ))
                    }
                };
                dims.push(DimMetadata {
                    format,
                    dense_size: d.dense_size(),
                    array_segments: index_vector(d.array_segments_type(), &d, true),
                    array_indices: index_vector(d.array_indices_type(), &d, false),
                });
            }
            v.sparsity = Some(Sparsity {
                traversal_order: sp.traversal_order().map(|v| v.iter().collect()).unwrap_or_default(),
                block_map: sp.block_map().map(|v| v.iter().collect()).unwrap_or_default(),
                dim_metadata: dims,
            });
        }
        if t.variant_tensors().is_some_and(|v| !v.is_empty()) || t.external_buffer() != 0 {
            return Err(TfliteError::Unsupported {
                place: place(),
                what: "variant tensors or external buffers".into(),
            });
        }
        Ok(v)
    }

    fn graph(&self, si: usize, sg: fb::SubGraph<'a>, opcodes: &[OpCode]) -> Result<Graph, TfliteError> {
        let mut g = Graph::new(sg.name().unwrap_or_default());
        let tensors = sg.tensors().ok_or(TfliteError::Missing { place: format!("subgraph {si}"), field: "tensors" })?;
        let n = tensors.len();
        for (ti, t) in tensors.iter().enumerate() {
            let v = self.value(si, ti, t)?;
            g.add_value(v);
        }
        for (i, raw) in sg.inputs().iter().flatten().enumerate() {
            let place = format!("subgraph {si}, input {i}");
            g.inputs.push(self.tensor_index(raw, n, &place, false)?.expect("required index"));
        }
        for (i, raw) in sg.outputs().iter().flatten().enumerate() {
            let place = format!("subgraph {si}, output {i}");
            g.outputs.push(self.tensor_index(raw, n, &place, false)?.expect("required index"));
        }
        for (oi, o) in sg.operators().iter().flatten().enumerate() {
            let code = opcodes.get(o.opcode_index() as usize).ok_or_else(|| TfliteError::BadIndex {
                place: format!("subgraph {si}, operator {oi}"),
                what: "opcode",
                index: i64::from(o.opcode_index()),
                len: opcodes.len(),
            })?;
            let place = format!("subgraph {si}, operator {oi} ({})", code.name());
            let operation = self.operation(o, code, n, &place)?;
            g.add_op(operation).map_err(|e| TfliteError::invalid(&place, e.to_string()))?;
        }
        Ok(g)
    }

    fn operation(
        &self,
        o: fb::Operator<'a>,
        code: &OpCode,
        ntensors: usize,
        place: &str,
    ) -> Result<Operation, TfliteError> {
        let ids = |v: Option<Vector<'a, i32>>, optional: bool| -> Result<Vec<Option<ValueId>>, TfliteError> {
            v.iter().flatten().map(|raw| self.tensor_index(raw, ntensors, place, optional)).collect()
        };
        let inputs = ids(o.inputs(), true)?;
        let outputs: Vec<ValueId> = ids(o.outputs(), false)?.into_iter().flatten().collect();
        let intermediates: Vec<ValueId> = ids(o.intermediates(), false)?.into_iter().flatten().collect();
        if code.version < 1 {
            return Err(TfliteError::invalid(place, format!("operator version {} (must be at least 1)", code.version)));
        }
        let modeled = if code.custom.is_none() { ops::op_from_tflite(code.builtin, &o, place)? } else { None };
        let op = match modeled {
            Some(op) => {
                let max = ops::max_version(code.builtin).expect("modeled ops have a max version");
                if code.version as u32 > max {
                    return Err(TfliteError::UnsupportedVersion {
                        place: place.to_string(),
                        op: code.name(),
                        version: code.version,
                        max,
                    });
                }
                op
            }
            None => npuc_ir::Op::Opaque(self.opaque(o, code, place)?),
        };
        Ok(Operation { op, inputs, outputs, intermediates, version: code.version as u32 })
    }

    fn opaque(&self, o: fb::Operator<'a>, code: &OpCode, place: &str) -> Result<OpaqueOp, TfliteError> {
        if o.builtin_options_type().variant_name().is_none() || o.builtin_options_2_type().variant_name().is_none() {
            return Err(TfliteError::Unsupported {
                place: place.to_string(),
                what: format!(
                    "builtin options type {}/{} unknown to npuc's schema",
                    o.builtin_options_type().0,
                    o.builtin_options_2_type().0
                ),
            });
        }
        let options = if o.builtin_options_type() != fb::BuiltinOptions::NONE
            || o.builtin_options_2_type() != fb::BuiltinOptions2::NONE
        {
            // Re-serialize the options on their own through the generated object API, so
            // every option table of the format round-trips without npuc modelling it.
            let t = o.unpack();
            let wrapped =
                fb::OpaqueOptionsT { builtin_options: t.builtin_options, builtin_options_2: t.builtin_options_2 };
            let mut fbb = flatbuffers::FlatBufferBuilder::new();
            let root = wrapped.pack(&mut fbb);
            fbb.finish_minimal(root);
            Bytes::copy_from_slice(fbb.finished_data())
        } else {
            Bytes::new()
        };
        let custom_options = if o.large_custom_options_offset() > 1 {
            let (off, size) = (o.large_custom_options_offset(), o.large_custom_options_size());
            let end = off.checked_add(size).filter(|&e| e <= self.file.len() as u64).ok_or_else(|| {
                TfliteError::invalid(place, format!("custom options at offset {off} size {size} lie outside the file"))
            })?;
            self.file.slice(off as usize..end as usize)
        } else {
            match o.custom_options() {
                Some(c) if !c.is_empty() => {
                    let start = c.bytes().as_ptr() as usize - self.file.as_ptr() as usize;
                    self.file.slice(start..start + c.len())
                }
                _ => Bytes::new(),
            }
        };
        Ok(OpaqueOp {
            name: code.name(),
            builtin_code: if code.custom.is_some() { None } else { Some(code.builtin.0) },
            options,
            custom_options,
        })
    }

    fn signatures(
        &self,
        graphs: &[Graph],
        subgraphs: Vector<'a, ForwardsUOffset<fb::SubGraph<'a>>>,
    ) -> Result<Vec<Signature>, TfliteError> {
        let mut out = Vec::new();
        for (i, s) in self.model.signature_defs().iter().flatten().enumerate() {
            let place = format!("signature {i}");
            let gi = s.subgraph_index() as usize;
            if gi >= graphs.len() {
                return Err(TfliteError::BadIndex { place, what: "subgraph", index: gi as i64, len: graphs.len() });
            }
            let n = subgraphs.get(gi).tensors().map(|t| t.len()).unwrap_or(0);
            // A signature entry must be an input (output) of its subgraph, as the IR's
            // module verifier and the exporter require.
            let map = |v: Option<Vector<'a, ForwardsUOffset<fb::TensorMap<'a>>>>,
                       role: &str,
                       interface: &[ValueId]|
             -> Result<Vec<(String, ValueId)>, TfliteError> {
                v.iter()
                    .flatten()
                    .map(|m| {
                        let t = m.tensor_index() as usize;
                        if t >= n {
                            return Err(TfliteError::BadIndex {
                                place: place.clone(),
                                what: "tensor",
                                index: t as i64,
                                len: n,
                            });
                        }
                        let name = m.name().unwrap_or_default().to_string();
                        if !interface.contains(&ValueId(t as u32)) {
                            return Err(TfliteError::invalid(
                                &place,
                                format!("{role} '{name}' is tensor {t}, which is not an {role} of subgraph {gi}"),
                            ));
                        }
                        Ok((name, ValueId(t as u32)))
                    })
                    .collect()
            };
            out.push(Signature {
                key: s.signature_key().unwrap_or_default().to_string(),
                graph: gi,
                inputs: map(s.inputs(), "input", &graphs[gi].inputs)?,
                outputs: map(s.outputs(), "output", &graphs[gi].outputs)?,
            });
        }
        Ok(out)
    }

    fn metadata(&self) -> Result<Vec<Metadata>, TfliteError> {
        let mut out = Vec::new();
        for (i, m) in self.model.metadata().iter().flatten().enumerate() {
            let place = format!("metadata {i}");
            let data = self.buffer(m.buffer(), &place)?.unwrap_or_default();
            out.push(Metadata { name: m.name().unwrap_or_default().to_string(), data });
        }
        Ok(out)
    }
}
