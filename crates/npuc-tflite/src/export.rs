//! [`Module`] → TFLite flatbuffer.
//!
//! The output is deterministic: tensors keep their arena order (so an imported model keeps
//! its tensor indices), operators are written in the graph's deterministic topological
//! order, operator codes in order of first use, and buffer data is 16-byte aligned as the
//! schema's `force_align` asks.

use std::collections::HashMap;

use flatbuffers::{FlatBufferBuilder, Push, PushAlignment, UnionWIPOffset, WIPOffset};

use npuc_ir::{DimFormat, Graph, IndexVector, Module, Op, Sparsity, Value, ValueId};

use crate::error::TfliteError;
use crate::generated::tflite as fb;
use crate::ops;

/// Writes a module as a TFLite flatbuffer.
pub fn export(module: &Module) -> Result<Vec<u8>, TfliteError> {
    if module.graphs.is_empty() {
        return Err(TfliteError::Export("module has no graphs".into()));
    }
    let data_bytes: usize = module
        .graphs
        .iter()
        .flat_map(|g| g.value_ids().filter_map(move |v| g.value(v).data.as_ref()))
        .map(|c| c.len() + 16)
        .sum();
    let mut w = Writer {
        fbb: FlatBufferBuilder::with_capacity(data_bytes + (1 << 16)),
        buffers: Vec::new(),
        opcodes: Vec::new(),
        opcode_index: HashMap::new(),
    };
    // Buffer 0 is the format's empty sentinel that tensors without data point to.
    let empty = fb::Buffer::create(&mut w.fbb, &fb::BufferArgs::default());
    w.buffers.push(empty);

    let orders: Vec<Vec<npuc_ir::OpId>> = module
        .graphs
        .iter()
        .enumerate()
        .map(|(i, g)| g.topo_order().map_err(|e| TfliteError::Export(format!("graph {i}: {e}"))))
        .collect::<Result<_, _>>()?;

    let mut tensor_maps = Vec::with_capacity(module.graphs.len());
    let mut subgraphs = Vec::with_capacity(module.graphs.len());
    for (gi, (g, order)) in module.graphs.iter().zip(&orders).enumerate() {
        let (sg, map) = w.subgraph(gi, g, order)?;
        subgraphs.push(sg);
        tensor_maps.push(map);
    }

    let mut metadata = Vec::with_capacity(module.metadata.len());
    for m in &module.metadata {
        let buffer = w.data_buffer(&m.data);
        let name = w.fbb.create_string(&m.name);
        metadata.push(fb::Metadata::create(&mut w.fbb, &fb::MetadataArgs { name: Some(name), buffer }));
    }

    let mut signatures = Vec::with_capacity(module.signatures.len());
    for (si, s) in module.signatures.iter().enumerate() {
        let map = tensor_maps.get(s.graph).ok_or_else(|| {
            TfliteError::Export(format!("signature {si} '{}' names graph {} which does not exist", s.key, s.graph))
        })?;
        let inputs = w.tensor_maps(&s.key, &s.inputs, map)?;
        let outputs = w.tensor_maps(&s.key, &s.outputs, map)?;
        let key = w.fbb.create_string(&s.key);
        signatures.push(fb::SignatureDef::create(
            &mut w.fbb,
            &fb::SignatureDefArgs {
                inputs: Some(inputs),
                outputs: Some(outputs),
                signature_key: Some(key),
                subgraph_index: s.graph as u32,
            },
        ));
    }

    let codes: Vec<_> = std::mem::take(&mut w.opcodes)
        .into_iter()
        .map(|(code, custom, version)| {
            let custom_code = custom.map(|c| w.fbb.create_string(&c));
            fb::OperatorCode::create(
                &mut w.fbb,
                &fb::OperatorCodeArgs {
                    // Codes past 127 go in `builtin_code`; the i8 field holds the
                    // placeholder 127 (PLACEHOLDER_FOR_GREATER_OP_CODES) for old readers.
                    deprecated_builtin_code: code.0.min(127) as i8,
                    custom_code,
                    version,
                    builtin_code: code,
                },
            )
        })
        .collect();
    let operator_codes = w.fbb.create_vector(&codes);
    let subgraphs = w.fbb.create_vector(&subgraphs);
    let buffers = w.fbb.create_vector(&w.buffers.clone());
    let description = w.fbb.create_string(&module.description);
    let metadata = (!metadata.is_empty()).then(|| w.fbb.create_vector(&metadata));
    let signature_defs = (!signatures.is_empty()).then(|| w.fbb.create_vector(&signatures));
    let root = fb::Model::create(
        &mut w.fbb,
        &fb::ModelArgs {
            version: 3,
            operator_codes: Some(operator_codes),
            subgraphs: Some(subgraphs),
            description: Some(description),
            buffers: Some(buffers),
            metadata,
            signature_defs,
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut w.fbb, root);
    // The builder fills its buffer back to front; move the finished bytes to the front in
    // place rather than copying them into a second multi-megabyte allocation.
    let (mut buf, head) = w.fbb.collapse();
    buf.drain(..head);
    Ok(buf)
}

/// Zero-sized push that only aligns the builder to 16 bytes (and records 16 as the
/// buffer's minimum alignment), used to honour `force_align: 16` on buffer data.
struct Align16;

impl Push for Align16 {
    type Output = u8;
    unsafe fn push(&self, _dst: &mut [u8], _written_len: usize) {}
    fn size() -> usize {
        0
    }
    fn alignment() -> PushAlignment {
        PushAlignment::new(16)
    }
}

type OpcodeKey = (fb::BuiltinOperator, Option<String>, i32);

struct Writer<'b> {
    fbb: FlatBufferBuilder<'b>,
    buffers: Vec<WIPOffset<fb::Buffer<'b>>>,
    opcodes: Vec<OpcodeKey>,
    opcode_index: HashMap<OpcodeKey, u32>,
}

impl<'b> Writer<'b> {
    /// Adds a buffer holding `data` and returns its index.
    fn data_buffer(&mut self, data: &[u8]) -> u32 {
        let vector = if data.is_empty() {
            None
        } else {
            // Builders grow downwards: align the end, then pad so the start lands on 16.
            self.fbb.push(Align16);
            for _ in 0..(16 - data.len() % 16) % 16 {
                self.fbb.push(0u8);
            }
            Some(self.fbb.create_vector(data))
        };
        let b = fb::Buffer::create(&mut self.fbb, &fb::BufferArgs { data: vector, ..Default::default() });
        self.buffers.push(b);
        (self.buffers.len() - 1) as u32
    }

    /// Writes a signature's name → tensor list.
    fn tensor_maps(
        &mut self,
        key: &str,
        list: &[(String, ValueId)],
        map: &HashMap<ValueId, i32>,
    ) -> Result<WIPOffset<flatbuffers::Vector<'b, flatbuffers::ForwardsUOffset<fb::TensorMap<'b>>>>, TfliteError> {
        let mut out = Vec::with_capacity(list.len());
        for (name, v) in list {
            let idx = *map.get(v).ok_or_else(|| {
                TfliteError::Export(format!(
                    "signature '{key}' entry '{name}' refers to a value the graph does not use"
                ))
            })?;
            let name = self.fbb.create_string(name);
            out.push(fb::TensorMap::create(
                &mut self.fbb,
                &fb::TensorMapArgs { name: Some(name), tensor_index: idx as u32 },
            ));
        }
        Ok(self.fbb.create_vector(&out))
    }

    fn opcode(&mut self, key: OpcodeKey) -> u32 {
        if let Some(&i) = self.opcode_index.get(&key) {
            return i;
        }
        let i = self.opcodes.len() as u32;
        self.opcodes.push(key.clone());
        self.opcode_index.insert(key, i);
        i
    }

    fn subgraph(
        &mut self,
        gi: usize,
        g: &Graph,
        order: &[npuc_ir::OpId],
    ) -> Result<(WIPOffset<fb::SubGraph<'b>>, HashMap<ValueId, i32>), TfliteError> {
        let live = g.live_values();
        let mut map = HashMap::new();
        let mut tensors = Vec::new();
        for v in g.value_ids().filter(|v| live[v.index()]) {
            map.insert(v, tensors.len() as i32);
            let t = self.tensor(gi, g.value(v))?;
            tensors.push(t);
        }
        let idx = |v: &ValueId| map[v];
        let mut operators = Vec::with_capacity(order.len());
        for &id in order {
            let o = g.op(id);
            let inputs: Vec<i32> = o.inputs.iter().map(|v| v.as_ref().map(idx).unwrap_or(-1)).collect();
            let outputs: Vec<i32> = o.outputs.iter().map(idx).collect();
            let intermediates: Vec<i32> = o.intermediates.iter().map(idx).collect();
            let op = self.operator(gi, &o.op, o.version, &inputs, &outputs, &intermediates)?;
            operators.push(op);
        }
        let inputs: Vec<i32> = g.inputs.iter().map(idx).collect();
        let outputs: Vec<i32> = g.outputs.iter().map(idx).collect();
        let tensors = self.fbb.create_vector(&tensors);
        let inputs = self.fbb.create_vector(&inputs);
        let outputs = self.fbb.create_vector(&outputs);
        let operators = self.fbb.create_vector(&operators);
        let name = (!g.name.is_empty()).then(|| self.fbb.create_string(&g.name));
        let sg = fb::SubGraph::create(
            &mut self.fbb,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name,
                ..Default::default()
            },
        );
        Ok((sg, map))
    }

    fn tensor(&mut self, gi: usize, v: &Value) -> Result<WIPOffset<fb::Tensor<'b>>, TfliteError> {
        let place = || format!("graph {gi}, value '{}'", v.name);
        let buffer = match &v.data {
            Some(c) => {
                let bytes = c.bytes().ok_or_else(|| {
                    TfliteError::Export(format!(
                        "{}: constant was elided in text form (print with full constants)",
                        place()
                    ))
                })?;
                self.data_buffer(bytes)
            }
            None => 0,
        };
        let shape: Vec<i32> =
            v.ty.shape
                .iter()
                .map(|&d| {
                    i32::try_from(d).map_err(|_| TfliteError::Export(format!("{}: dimension {d} exceeds i32", place())))
                })
                .collect::<Result<_, _>>()?;
        let shape = self.fbb.create_vector(&shape);
        let shape_signature = match &v.shape_signature {
            Some(s) => {
                let s: Vec<i32> = s
                    .iter()
                    .map(|&d| {
                        i32::try_from(d).map_err(|_| {
                            TfliteError::Export(format!("{}: signature dimension {d} exceeds i32", place()))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Some(self.fbb.create_vector(&s))
            }
            None => None,
        };
        let quantization = match &v.ty.quant {
            Some(q) if !q.is_empty() => {
                let min = (!q.min.is_empty()).then(|| self.fbb.create_vector(&q.min));
                let max = (!q.max.is_empty()).then(|| self.fbb.create_vector(&q.max));
                let scale = (!q.scale.is_empty()).then(|| self.fbb.create_vector(&q.scale));
                let zero_point = (!q.zero_point.is_empty()).then(|| self.fbb.create_vector(&q.zero_point));
                Some(fb::QuantizationParameters::create(
                    &mut self.fbb,
                    &fb::QuantizationParametersArgs {
                        min,
                        max,
                        scale,
                        zero_point,
                        quantized_dimension: q.axis as i32,
                        ..Default::default()
                    },
                ))
            }
            _ => None,
        };
        let sparsity = v.sparsity.as_ref().map(|s| self.sparsity(s));
        let name = self.fbb.create_string(&v.name);
        Ok(fb::Tensor::create(
            &mut self.fbb,
            &fb::TensorArgs {
                shape: Some(shape),
                type_: ops::dtype_to_tflite(v.ty.dtype),
                buffer,
                name: Some(name),
                quantization,
                is_variable: v.is_variable,
                sparsity,
                shape_signature,
                has_rank: true,
                ..Default::default()
            },
        ))
    }

    fn index_vector(&mut self, v: &IndexVector) -> (fb::SparseIndexVector, WIPOffset<UnionWIPOffset>) {
        match v {
            IndexVector::I32(x) => {
                let values = Some(self.fbb.create_vector(x));
                let t = fb::Int32Vector::create(&mut self.fbb, &fb::Int32VectorArgs { values });
                (fb::SparseIndexVector::Int32Vector, t.as_union_value())
            }
            IndexVector::U16(x) => {
                let values = Some(self.fbb.create_vector(x));
                let t = fb::Uint16Vector::create(&mut self.fbb, &fb::Uint16VectorArgs { values });
                (fb::SparseIndexVector::Uint16Vector, t.as_union_value())
            }
            IndexVector::U8(x) => {
                let values = Some(self.fbb.create_vector(x));
                let t = fb::Uint8Vector::create(&mut self.fbb, &fb::Uint8VectorArgs { values });
                (fb::SparseIndexVector::Uint8Vector, t.as_union_value())
            }
        }
    }

    fn sparsity(&mut self, s: &Sparsity) -> WIPOffset<fb::SparsityParameters<'b>> {
        let mut dims = Vec::with_capacity(s.dim_metadata.len());
        for d in &s.dim_metadata {
            let seg = d.array_segments.as_ref().map(|v| self.index_vector(v));
            let ind = d.array_indices.as_ref().map(|v| self.index_vector(v));
            dims.push(fb::DimensionMetadata::create(
                &mut self.fbb,
                &fb::DimensionMetadataArgs {
                    format: match d.format {
                        DimFormat::Dense => fb::DimensionType::DENSE,
                        DimFormat::SparseCsr => fb::DimensionType::SPARSE_CSR,
                    },
                    dense_size: d.dense_size,
                    array_segments_type: seg.map(|s| s.0).unwrap_or(fb::SparseIndexVector::NONE),
                    array_segments: seg.map(|s| s.1),
                    array_indices_type: ind.map(|s| s.0).unwrap_or(fb::SparseIndexVector::NONE),
                    array_indices: ind.map(|s| s.1),
                },
            ));
        }
        let traversal_order = Some(self.fbb.create_vector(&s.traversal_order));
        let block_map = (!s.block_map.is_empty()).then(|| self.fbb.create_vector(&s.block_map));
        let dim_metadata = Some(self.fbb.create_vector(&dims));
        fb::SparsityParameters::create(
            &mut self.fbb,
            &fb::SparsityParametersArgs { traversal_order, block_map, dim_metadata },
        )
    }

    fn operator(
        &mut self,
        gi: usize,
        op: &Op,
        version: u32,
        inputs: &[i32],
        outputs: &[i32],
        intermediates: &[i32],
    ) -> Result<WIPOffset<fb::Operator<'b>>, TfliteError> {
        let version = version.max(1) as i32;
        let (key, options, options_2, custom_options) = match op {
            Op::Opaque(o) => {
                let key = match o.builtin_code {
                    Some(c) => (fb::BuiltinOperator(c), None, version),
                    None => (fb::BuiltinOperator::CUSTOM, Some(o.name.clone()), version),
                };
                let (b1, b2) = if o.options.is_empty() {
                    (fb::BuiltinOptionsT::NONE, fb::BuiltinOptions2T::NONE)
                } else {
                    let t = flatbuffers::root::<fb::OpaqueOptions>(&o.options).map_err(|e| {
                        TfliteError::Export(format!("graph {gi}: options of opaque op {} are corrupt: {e}", o.name))
                    })?;
                    let t = t.unpack();
                    (t.builtin_options, t.builtin_options_2)
                };
                (key, b1, b2, (!o.custom_options.is_empty()).then_some(&o.custom_options))
            }
            _ => {
                let code = ops::builtin_code(op).expect("non-opaque ops have a builtin code");
                ((code, None, version), ops::options_to_tflite(op), fb::BuiltinOptions2T::NONE, None)
            }
        };
        let opcode_index = self.opcode(key);
        let inputs = self.fbb.create_vector(inputs);
        let outputs = self.fbb.create_vector(outputs);
        let intermediates = (!intermediates.is_empty()).then(|| self.fbb.create_vector(intermediates));
        let builtin_options = options.pack(&mut self.fbb);
        let builtin_options_2 = options_2.pack(&mut self.fbb);
        let custom_options = custom_options.map(|c| self.fbb.create_vector(c.as_ref()));
        Ok(fb::Operator::create(
            &mut self.fbb,
            &fb::OperatorArgs {
                opcode_index,
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: options.builtin_options_type(),
                builtin_options,
                custom_options,
                intermediates,
                builtin_options_2_type: options_2.builtin_options_2_type(),
                builtin_options_2,
                ..Default::default()
            },
        ))
    }
}
