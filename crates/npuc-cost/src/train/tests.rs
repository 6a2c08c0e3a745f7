use super::*;
use crate::features::{graph_features, target_features};
use npuc_zoo::space::{sample, Space};

/// Labels with known structure: "latency" adds per-op compute and memory time at the
/// target's rates (a sum over nodes), "memory" is the largest op's bytes (a max).
fn synthetic_examples(count: u64) -> Vec<Example> {
    let targets: Vec<npuc_target::Target> =
        ["ethos-u55-128", "ethos-u65-256"].iter().map(|n| npuc_target::Target::builtin(n).unwrap()).collect();
    let mut out = Vec::new();
    for seed in 0..count {
        let space = [Space::KeywordSpotting, Space::SuperResolution][seed as usize % 2];
        let s = sample(space, seed).unwrap();
        let g = s.module.main().unwrap();
        let features = graph_features(g, None);
        for t in &targets {
            let mut latency = 1.0;
            let mut peak = 1.0f64;
            for id in g.op_ids() {
                let macs = npuc_ir::stats::macs(g, id) as f64;
                let bytes = npuc_ir::stats::bytes_moved(g, id) as f64;
                latency += macs / f64::from(t.compute.macs_per_cycle.i8xi8) + bytes / t.memory.sram.bandwidth;
                peak = peak.max(bytes);
            }
            out.push(Example { graph: features.clone(), target: target_features(t), labels: vec![latency, peak] });
        }
    }
    out
}

#[test]
fn training_learns_a_sum_and_a_max_and_checkpoints_round_trip() {
    let examples = synthetic_examples(80);
    let metrics = vec!["latency".to_string(), "memory".to_string()];
    let opts =
        TrainOptions { epochs: 100, patience: 100, batch_size: 16, learning_rate: 1e-3, ..TrainOptions::default() };
    let (model, history) = train(ModelConfig::npuc(metrics.clone()), &examples, &opts, |_| {}).unwrap();
    let first = history.first().unwrap().validation_mape;
    let best = history.iter().map(|r| r.validation_mape).fold(f64::INFINITY, f64::min);
    let all: Vec<&Example> = examples.iter().collect();
    let scores = score(&predict(&model, &all, 64).unwrap(), &all, &metrics);
    eprintln!("first epoch {first:.1}%, best {best:.1}%, all: {scores:?}");
    assert!(best < first / 3.0, "validation MAPE went from {first:.1}% only to {best:.1}%");
    for (name, s) in &scores {
        assert!(s.mape < 15.0 && s.spearman > 0.98, "{name}: {s:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    save(&model, dir.path()).unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(predict(&model, &all[..5], 8).unwrap(), predict(&loaded, &all[..5], 8).unwrap());
    // Equal seeds train equal models.
    let (again, _) = train(ModelConfig::npuc(metrics), &examples, &opts, |_| {}).unwrap();
    assert_eq!(predict(&model, &all[..5], 8).unwrap(), predict(&again, &all[..5], 8).unwrap());
}

#[test]
fn spearman_and_scores_match_hand_computed_values() {
    assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    let e = |y: f64| Example {
        graph: GraphFeatures { op_type: vec![], nodes: vec![], edges: vec![] },
        target: vec![],
        labels: vec![y],
    };
    let (a, b) = (e(100.0), e(200.0));
    let s = &score(&[vec![104.0], vec![180.0]], &[&a, &b], &["m".to_string()])["m"];
    assert!((s.mape - 7.0).abs() < 1e-9 && s.within_5 == 50.0 && s.within_10 == 100.0, "{s:?}");
}

#[test]
fn bad_labels_and_missing_checkpoints_are_errors() {
    let mut examples = synthetic_examples(2);
    examples[0].labels[0] = 0.0;
    let cfg = ModelConfig::npuc(vec!["latency".into(), "memory".into()]);
    let e = train(cfg, &examples, &TrainOptions { epochs: 1, ..TrainOptions::default() }, |_| {}).err().unwrap();
    assert!(e.to_string().contains("positive"), "{e}");
    let e = load(Path::new("/nonexistent/model")).err().unwrap().to_string();
    assert!(e.contains("/nonexistent/model/config.json"), "{e}");
}
