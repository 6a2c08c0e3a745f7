use std::collections::BTreeSet;

use super::*;

fn samples(space: Space, n: u64) -> Vec<Sample> {
    (0..n).map(|seed| sample(space, seed).unwrap_or_else(|e| panic!("{space} seed {seed}: {e}"))).collect()
}

#[test]
fn every_space_builds_valid_deterministic_models() {
    for space in Space::ALL {
        for s in samples(space, 25) {
            npuc_ir::verify_module(&s.module).unwrap_or_else(|e| panic!("{}: {e}", s.description));
            let again = sample(space, s.seed).unwrap();
            let print = |m: &Module| npuc_ir::print_module(m, &npuc_ir::PrintOptions::default());
            assert_eq!(print(&s.module), print(&again.module), "{space} seed {} is not deterministic", s.seed);
            assert_eq!(s.compression, again.compression);
            assert!(s.description.starts_with(space.name()), "{}", s.description);
        }
    }
}

#[test]
fn spaces_draw_different_architectures_from_the_same_seed() {
    let descriptions: BTreeSet<String> = Space::ALL.map(|s| sample(s, 7).unwrap().description).into();
    assert_eq!(descriptions.len(), 4);
    let cls: BTreeSet<String> = samples(Space::Classification, 20).into_iter().map(|s| s.description).collect();
    assert!(cls.len() >= 19, "classification samples repeat: {cls:?}");
}

#[test]
fn the_documented_ranges_are_covered() {
    let text = |space, n| samples(space, n).into_iter().map(|s| s.description).collect::<Vec<_>>().join("\n");
    let cls = text(Space::Classification, 60);
    for needle in ["k3", "k5", "k7", "se", "mbv2", "mbv3", "r=96", "r=224", "w=0.35", "w=1 "] {
        assert!(cls.contains(needle), "no classification sample has {needle}");
    }
    let sr = text(Space::SuperResolution, 120);
    for needle in ["sesr", "fsrcnn", "x2", "x4", "1080x1920", "prelu", "relu"] {
        assert!(sr.contains(needle), "no super-resolution sample has {needle}");
    }
    let kws = text(Space::KeywordSpotting, 40);
    for needle in ["ds-cnn", "micronet", "49x10", "98x40"] {
        assert!(kws.contains(needle), "no keyword-spotting sample has {needle}");
    }
    let det = text(Space::Detection, 40);
    for needle in ["ssdlite", "unet", "heads=2", "heads=4", "levels=2", "levels=4", "bilinear", "nearest"] {
        assert!(det.contains(needle), "no detection sample has {needle}");
    }
}

#[test]
fn detection_models_have_two_outputs_and_use_resize_and_concat() {
    for s in samples(Space::Detection, 12) {
        let g = s.module.main().unwrap();
        assert_eq!(g.outputs.len(), 2, "{}", s.description);
        let ops: BTreeSet<&str> = g.op_ids().map(|id| g.op(id).op.mnemonic()).collect();
        assert!(ops.contains("concatenation"), "{}", s.description);
        if s.description.contains("unet") {
            assert!(ops.contains("resize_bilinear") || ops.contains("resize_nearest_neighbor"), "{}", s.description);
        }
    }
}

#[test]
fn compression_plans_name_every_layer_once_within_range() {
    let mut bits_seen = BTreeSet::new();
    let (mut dense, mut sparse) = (0, 0);
    for space in Space::ALL {
        for s in samples(space, 15) {
            let g = s.module.main().unwrap();
            let layers: Vec<String> = npuc_pass::weighted_layers(g).into_iter().map(|(_, n)| n).collect();
            let planned: Vec<String> = s.compression.iter().map(|l| l.layer.clone()).collect();
            assert_eq!(planned, layers, "{}", s.description);
            for l in &s.compression {
                assert!(l.bits == 8 || l.bits == 4, "{l:?}");
                bits_seen.insert(l.bits);
                let steps = l.sparsity / 0.05;
                assert!((0.0..=0.9 + 1e-9).contains(&l.sparsity) && (steps - steps.round()).abs() < 1e-9, "{l:?}");
                if l.sparsity == 0.0 {
                    dense += 1
                } else {
                    sparse += 1
                }
            }
            // The plan is a config the passes accept for this very model.
            let config = npuc_pass::CompressionConfig::parse(&s.compression_toml(), "sample.toml")
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", s.description, s.compression_toml()));
            config.check_layers(&layers).unwrap();
        }
    }
    assert_eq!(bits_seen.len(), 2);
    assert!(dense > 0 && sparse > 0);
}

#[test]
fn space_names_parse_and_unknown_ones_list_the_known() {
    assert_eq!(Space::from_name("SR").unwrap(), Space::SuperResolution);
    assert_eq!(Space::from_name("keyword_spotting").unwrap(), Space::KeywordSpotting);
    let e = Space::from_name("segmentation").unwrap_err().to_string();
    assert!(e.contains("segmentation") && e.contains("detection"), "{e}");
}
