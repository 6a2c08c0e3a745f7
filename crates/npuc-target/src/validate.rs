//! Value checks that the type system cannot express: ranges, powers of two, known names.

use npuc_ir::{Activation, DType};

use crate::{known_op_names, Family, OpSupport, Target};

/// A failed check: the dotted field path and the reason.
pub(crate) type Problem = (String, String);

type Check = Result<(), Problem>;

fn fail(path: impl Into<String>, reason: impl Into<String>) -> Check {
    Err((path.into(), reason.into()))
}

fn positive_int(path: &str, v: u64) -> Check {
    if v == 0 {
        return fail(path, "must be positive (got 0)");
    }
    Ok(())
}

fn power_of_two(path: &str, v: u64) -> Check {
    positive_int(path, v)?;
    if !v.is_power_of_two() {
        return fail(path, format!("must be a power of two (got {v})"));
    }
    Ok(())
}

fn positive_real(path: &str, v: f64) -> Check {
    if !v.is_finite() || v <= 0.0 {
        return fail(path, format!("must be a positive finite number (got {v})"));
    }
    Ok(())
}

fn non_negative_real(path: &str, v: f64) -> Check {
    if !v.is_finite() || v < 0.0 {
        return fail(path, format!("must be a non-negative finite number (got {v})"));
    }
    Ok(())
}

fn shape(path: &str, s: [u32; 3]) -> Check {
    for (i, d) in s.iter().enumerate() {
        positive_int(&format!("{path}[{i}]"), u64::from(*d))?;
    }
    Ok(())
}

fn dtypes(path: &str, names: &[String]) -> Check {
    if names.is_empty() {
        return fail(path, "must list at least one dtype");
    }
    for (i, n) in names.iter().enumerate() {
        if DType::from_name(n).is_none() {
            let known: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
            return fail(format!("{path}[{i}]"), format!("unknown dtype `{n}` (known: {})", known.join(", ")));
        }
    }
    Ok(())
}

/// Checks every value of a parsed target; the first problem found is returned.
pub(crate) fn validate(t: &Target) -> Result<(), Problem> {
    let valid_name = !t.name.is_empty()
        && t.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        return Err((
            "name".into(),
            format!("must be non-empty lowercase letters, digits, `-` or `_` (got `{}`)", t.name),
        ));
    }

    let c = &t.compute;
    positive_int("compute.clock_hz", c.clock_hz)?;
    positive_int("compute.cores", u64::from(c.cores))?;
    power_of_two("compute.macs_per_cycle.i8xi8", u64::from(c.macs_per_cycle.i8xi8))?;
    power_of_two("compute.macs_per_cycle.i16xi8", u64::from(c.macs_per_cycle.i16xi8))?;
    if c.macs_per_cycle.i16xi8 > c.macs_per_cycle.i8xi8 {
        fail(
            "compute.macs_per_cycle.i16xi8",
            format!("cannot exceed i8xi8 ({} > {})", c.macs_per_cycle.i16xi8, c.macs_per_cycle.i8xi8),
        )?;
    }
    if c.macs_per_cycle.i8xi8 % c.cores != 0 {
        fail("compute.macs_per_cycle.i8xi8", format!("must split evenly over {} cores", c.cores))?;
    }

    let m = &t.memory;
    positive_int("memory.sram.size_bytes", m.sram.size_bytes)?;
    positive_real("memory.sram.bandwidth", m.sram.bandwidth)?;
    power_of_two("memory.sram.burst_bytes", u64::from(m.sram.burst_bytes))?;
    positive_real("memory.external.bandwidth", m.external.bandwidth)?;
    power_of_two("memory.external.burst_bytes", u64::from(m.external.burst_bytes))?;

    positive_int("weight_decoder.weights_per_cycle", u64::from(t.weight_decoder.weights_per_cycle))?;
    power_of_two("weight_decoder.micro_block_depth", u64::from(t.weight_decoder.micro_block_depth))?;

    let b = &t.blocks;
    shape("blocks.ofm_ublock", b.ofm_ublock)?;
    shape("blocks.ifm_ublock", b.ifm_ublock)?;
    shape("blocks.ofm_block_max", b.ofm_block_max)?;
    power_of_two("blocks.ofm_ublock[2]", u64::from(b.ofm_ublock[2]))?;
    power_of_two("blocks.ofm_split_depth", u64::from(b.ofm_split_depth))?;
    positive_int("blocks.shram_banks", u64::from(b.shram_banks))?;
    power_of_two("blocks.shram_bank_bytes", u64::from(b.shram_bank_bytes))?;
    if t.family.is_ethos_u() && t.weight_decoder.micro_block_depth != b.ofm_ublock[2] {
        fail(
            "weight_decoder.micro_block_depth",
            format!(
                "must equal the OFM micro-block depth blocks.ofm_ublock[2] = {} on Ethos-U (got {})",
                b.ofm_ublock[2], t.weight_decoder.micro_block_depth
            ),
        )?;
    }
    if let Some(tm) = &t.timing {
        for (i, g) in tm.shram_granules.iter().enumerate() {
            positive_int(&format!("timing.shram_granules[{i}]"), u64::from(*g))?;
        }
        if tm.shram_reserved_output_banks + tm.shram_reserved_end_banks >= b.shram_banks {
            fail("timing.shram_reserved_output_banks", "reserved banks leave no shared-buffer space")?;
        }
        let per_elem = tm.output_cycles_per_elem.iter().chain(&tm.activation_cycles_per_elem);
        if per_elem.clone().any(|c| !c.is_finite() || *c < 0.0) {
            fail("timing.output_cycles_per_elem", "cycles per element must be finite and >= 0")?;
        }
    }
    if b.candidates.is_empty() {
        fail("blocks.candidates", "must list at least one OFM block shape")?;
    }
    for (i, cand) in b.candidates.iter().enumerate() {
        let path = format!("blocks.candidates[{i}]");
        shape(&path, *cand)?;
        for axis in 0..3 {
            if cand[axis] > b.ofm_block_max[axis] {
                fail(&path, format!("{cand:?} exceeds blocks.ofm_block_max {:?}", b.ofm_block_max))?;
            }
            // Depth may be clipped to the op's depth, so only height and width must be whole
            // micro-blocks.
            if axis < 2 && cand[axis] % b.ofm_ublock[axis] != 0 {
                fail(&path, format!("{cand:?} is not a multiple of blocks.ofm_ublock {:?}", b.ofm_ublock))?;
            }
        }
    }

    let e = &t.energy;
    positive_real("energy.mac_i8xi8_pj", e.mac_i8xi8_pj)?;
    positive_real("energy.mac_i16xi8_pj", e.mac_i16xi8_pj)?;
    positive_real("energy.sram_pj_per_byte", e.sram_pj_per_byte)?;
    positive_real("energy.external_pj_per_byte", e.external_pj_per_byte)?;
    non_negative_real("energy.static_power_mw", e.static_power_mw)?;

    positive_int("limits.tensor_dim_max", u64::from(t.limits.tensor_dim_max))?;
    positive_int("limits.batch_max", u64::from(t.limits.batch_max))?;
    for (i, a) in t.limits.fused_activations.iter().enumerate() {
        if !Activation::ALL.iter().any(|k| k.name() == a) {
            let known: Vec<&str> = Activation::ALL.iter().map(|k| k.name()).collect();
            fail(
                format!("limits.fused_activations[{i}]"),
                format!("unknown activation `{a}` (known: {})", known.join(", ")),
            )?;
        }
    }

    if t.ops.is_empty() {
        fail("ops", "must list at least one supported op")?;
    }
    for (name, op) in &t.ops {
        validate_op(name, op)?;
    }

    if let Some(v) = &t.vela {
        if !t.family.is_ethos_u() {
            fail("vela", format!("only Ethos-U targets have a Vela configuration (family is {:?})", t.family))?;
        }
        for (field, value) in [
            ("accelerator_config", &v.accelerator_config),
            ("system_config", &v.system_config),
            ("memory_mode", &v.memory_mode),
        ] {
            if value.is_empty() {
                fail(format!("vela.{field}"), "must not be empty")?;
            }
        }
    }
    if t.family == Family::MobileNpu && t.vela.is_some() {
        fail("vela", "mobile-npu has no Vela equivalent")?;
    }
    Ok(())
}

fn validate_op(name: &str, op: &OpSupport) -> Check {
    let path = format!("ops.{name}");
    if !known_op_names().any(|k| k == name) {
        return fail(
            path,
            format!("unknown op `{name}` (npuc IR mnemonics: {})", known_op_names().collect::<Vec<_>>().join(", ")),
        );
    }
    dtypes(&format!("{path}.dtypes"), &op.dtypes)?;
    if let Some(w) = &op.weight_dtypes {
        dtypes(&format!("{path}.weight_dtypes"), w)?;
    }
    for (field, v) in [
        ("kernel_h_max", op.kernel_h_max),
        ("kernel_w_max", op.kernel_w_max),
        ("kernel_area_max", op.kernel_area_max),
        ("stride_h_max", op.stride_h_max),
        ("stride_w_max", op.stride_w_max),
    ] {
        if let Some(v) = v {
            positive_int(&format!("{path}.{field}"), u64::from(v))?;
        }
    }
    if let Some(v) = op.weights_sum_max {
        positive_int(&format!("{path}.weights_sum_max"), v)?;
    }
    Ok(())
}
