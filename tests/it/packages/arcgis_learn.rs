//! arcgis.learn FeatureClassifier packages (PyTorch weights) run as they are and through `convert`,
//! against the numbers Esri's own inference code computed for the same weights on the same
//! windows of RGB.byte.tif (`fixtures/arcgis_learn/*/reference.json`): probabilities within 1e-4,
//! labels identical, with and without test-time augmentation. The packages are generated here
//! (seeded weights, `.pth` written as torch writes it: `support::seeded`), and a test shows that
//! the generated `.pth` is byte for byte the one Esri's `save()` wrote through torch. Hostile and
//! damaged weights are refused with exit 2 and one error line.

use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::seeded::SeededPackage;
use crate::support::torch::os_system_pickle;
use crate::support::torch::pth_zip;
use crate::support::torch::resnet_stem;
use crate::support::torch::state_dict_pickle;
use crate::support::*;

/// A single-label ResNet-18 FeatureClassifier (Labeled_Tiles, MAP_SPACE, four classes).
const RESNET18: &str = "fc_resnet18_seeded";

/// A multi-label ResNet-50 FeatureClassifier (MultiLabeled_Tiles, PIXEL_SPACE, three classes).
const RESNET50: &str = "fc_resnet50_multilabel_seeded";

/// The seeded package of each other backbone family converted natively: (package, family,
/// architecture found in the weights, `.emd` backbone).
const FAMILIES: [(&str, &str, &str, &str); 6] = [
    ("fc_mobilenet_v2_seeded", "MobileNetV2", "mobilenet_v2", "mobilenet_v2"),
    (
        "fc_efficientnet_b0_seeded",
        "EfficientNet",
        "efficientnet_b0",
        "timm:efficientnet_b0",
    ),
    (
        "fc_mobilenetv3_large_seeded",
        "MobileNetV3",
        "mobilenetv3_large_100",
        "timm:mobilenetv3_large_100",
    ),
    ("fc_densenet121_seeded", "DenseNet", "densenet121", "timm:densenet121"),
    ("fc_vgg11_bn_seeded", "VGG", "vgg11_bn", "timm:vgg11_bn"),
    (
        "fc_deit_tiny_seeded",
        "ViT",
        "vit_tiny_patch16",
        "timm:deit_tiny_patch16_224",
    ),
];

/// Every seeded package committed.
fn all() -> Vec<&'static str> {
    let mut all = vec![RESNET18, RESNET50];
    all.extend(FAMILIES.iter().map(|f| f.0));
    all
}

/// The seeded package `name`, written once per test process (it is regenerated each time: the
/// generator is what is tested).
fn package(name: &str) -> PathBuf {
    static WRITTEN: OnceLock<std::sync::Mutex<std::collections::BTreeMap<String, PathBuf>>> = OnceLock::new();
    let written = WRITTEN.get_or_init(Default::default);
    let mut written = written.lock().unwrap();
    if let Some(path) = written.get(name) {
        return path.clone();
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if written.is_empty() {
        remove_stale_packages(tmp);
    }
    let dir = tmp.join(format!("seeded-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = SeededPackage::load(name).write_dlpk(&dir);
    written.insert(name.to_string(), path.clone());
    path
}

/// Removes the packages earlier test processes wrote (`seeded-<pid>` of processes no longer
/// running), so that the ~300 MB a run writes do not pile up.
fn remove_stale_packages(tmp: &Path) {
    for entry in fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("seeded-").and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn reference(name: &str) -> Value {
    SeededPackage::load(name).reference
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `model` on the reference chips and reads back label and scores per chip.
fn classify(dir: &Path, model: &Path, reference: &Value, tag: &str, extra: &[&str]) -> (Vec<Scored>, String, String) {
    let out = dir.join(format!("{tag}.csv"));
    let output = run_owned_ok(&classify_args(
        &fixture("real/RGB.byte.tif"),
        model,
        Some(&chip_points(dir, reference)),
        &out,
        extra,
    ));
    let rows = read_csv(&out);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (label, confidence) = (col("ClassLabel"), col("Confidence"));
    let scored = rows[1..]
        .iter()
        .map(|r| Scored {
            label: r[label].clone(),
            scores: r[confidence].split(';').map(|v| v.parse().unwrap()).collect(),
        })
        .collect();
    (
        scored,
        fs::read_to_string(&out).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Largest |our score - Esri's| over the chips, asserting identical labels on the way.
fn compare(name: &str, reference: &Value, rows: &[Scored], tta: bool, labels_key: Option<&str>) -> f64 {
    let multi = reference["metadata_mode"] == "MultiLabeled_Tiles";
    let chips = reference["chips"].as_array().unwrap();
    assert_eq!(rows.len(), chips.len());
    let mut worst = 0.0f64;
    for (i, (row, chip)) in rows.iter().zip(chips).enumerate() {
        let probs: Vec<f64> = chip[if tta { "tta_probabilities" } else { "probabilities" }]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let key = match (labels_key, multi, tta) {
            (Some(k), _, _) => k.to_string(),
            (None, true, false) => "labels".into(),
            (None, true, true) => "tta_labels".into(),
            (None, false, false) => "label".into(),
            (None, false, true) => "tta_label".into(),
        };
        assert_eq!(row.label, chip[&key].as_str().unwrap(), "{name} chip {i} ({key})");
        if multi {
            assert_eq!(row.scores.len(), probs.len());
            for (a, b) in row.scores.iter().zip(&probs) {
                worst = worst.max((a - b).abs());
            }
        } else {
            let top = probs.iter().copied().fold(f64::MIN, f64::max);
            worst = worst.max((row.scores[0] - top).abs());
        }
    }
    assert!(worst <= TOLERANCE, "{name} (tta {tta}): max |Δ| {worst} > {TOLERANCE}");
    worst
}

const TOLERANCE: f64 = 1e-4;

/// One output row: label and the scores written.
struct Scored {
    label: String,
    scores: Vec<f64>,
}

/// Points whose 224 x 224 window (centre rule: start at floor(cx - 112)) is exactly each
/// reference chip's window of RGB.byte.tif: the pixel centre (col + 112.5, row + 112.5).
fn chip_points(dir: &Path, reference: &Value) -> PathBuf {
    let ds = gdal::Dataset::open(fixture("real/RGB.byte.tif")).unwrap();
    let gt = ds.geo_transform().unwrap();
    let features: Vec<String> = reference["chips"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, chip)| {
            let w = &chip["window_col_row_width_height"];
            let (col, row) = (w[0].as_f64().unwrap() + 112.5, w[1].as_f64().unwrap() + 112.5);
            let (x, y) = (gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]);
            format!(
                r#"{{"type":"Feature","properties":{{"chip":{i}}},"geometry":{{"type":"Point","coordinates":[{x},{y}]}}}}"#
            )
        })
        .collect();
    let path = dir.join("chips.geojson");
    fs::write(
        &path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32618"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    path
}

/// A package with the seeded ResNet-18's `.emd` (edited by `replace`) and the given `.pth`.
fn pth_package(dir: &Path, file: &str, replace: &[(&str, &str)], pth: &[u8]) -> PathBuf {
    let mut emd = SeededPackage::load(RESNET18).emd;
    for (from, to) in replace {
        assert!(emd.contains(from), "the emd has no {from}");
        emd = emd.replace(from, to);
    }
    let path = dir.join(file);
    write_zip(&path, &[("model.emd", emd.as_bytes()), ("fc_resnet18_seeded.pth", pth)]);
    path
}

#[test]
fn seeded_packages_hold_exactly_what_torch_wrote() {
    for name in all() {
        let package = SeededPackage::load(name);
        let f = &package.fingerprint;
        let pkl = package.data_pkl();
        assert_eq!(
            sha256(&pkl),
            f["data_pkl_sha256"],
            "{name}: data.pkl as torch pickled it"
        );
        let storages: Vec<u8> = package.storages().concat();
        assert_eq!(
            sha256(&storages),
            f["storages_concat_sha256"],
            "{name}: the seeded weights"
        );
        let pth = package.pth();
        assert_eq!(pth.len() as u64, f["pth_size"].as_u64().unwrap(), "{name}: .pth size");
        // The zip records as torch wrote them: names, stored, sizes, CRCs, 64-byte alignment.
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&pth)).unwrap();
        for (i, expected) in f["entries"].as_array().unwrap().iter().enumerate() {
            let entry = zip.by_index_raw(i).unwrap();
            assert_eq!(entry.name(), expected[0], "{name}: record {i}");
            assert_eq!(entry.size(), expected[2].as_u64().unwrap(), "{name}: {}", entry.name());
            assert_eq!(
                format!("{:08x}", entry.crc32()),
                expected[3],
                "{name}: {}",
                entry.name()
            );
            assert_eq!(entry.data_start() % 64, expected[4].as_u64().unwrap());
            assert_eq!(entry.header_start(), expected[5].as_u64().unwrap());
        }
        assert_eq!(sha256(&pth), f["pth_sha256"], "{name}: the .pth, byte for byte");
        assert_eq!(
            sha256(package.emd.as_bytes()),
            f["emd_sha256"],
            "{name}: the .emd save() wrote"
        );
    }
}

#[test]
fn arcgis_learn_packages_run_as_they_are_with_esri_numbers() {
    let dir = tempfile::tempdir().unwrap();
    for (name, backbone) in [(RESNET18, "resnet18"), (RESNET50, "resnet50")] {
        let reference = reference(name);
        for tta in [false, true] {
            let arg = format!("test_time_augmentation={tta}");
            let tag = format!("{name}_{tta}");
            let (rows, _, stderr) = classify(dir.path(), &package(name), &reference, &tag, &["--model-arg", &arg]);
            let worst = compare(name, &reference, &rows, tta, None);
            eprintln!("{name} tta={tta}: max |Δ| vs Esri {worst:.2e}");
            let notice: Vec<&str> = stderr.lines().filter(|l| l.contains("converted")).collect();
            assert_eq!(notice.len(), 1, "one conversion notice: {stderr}");
            assert!(notice[0].contains(&format!("backbone {backbone}")), "{}", notice[0]);
        }
    }
}

/// Runs the seeded package of a family as it is and converted, plain and with TTA, against
/// Esri's numbers, and checks what `inspect` says of it.
fn family_matches_esri(name: &str) {
    let &(_, family, architecture, declared) = FAMILIES.iter().find(|f| f.0 == name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = reference(name);
    assert_varied(name, &reference);
    let converted = d.join(format!("{name}_onnx.dlpk"));
    run_ok(&[
        "convert",
        package(name).to_str().unwrap(),
        "-o",
        converted.to_str().unwrap(),
    ]);
    for tta in [false, true] {
        let arg = format!("test_time_augmentation={tta}");
        for (how, model) in [("as it is", package(name)), ("converted", converted.clone())] {
            let tag = format!("{}_{tta}", how.len());
            let (rows, _, stderr) = classify(d, &model, &reference, &tag, &["--model-arg", &arg]);
            let worst = compare(name, &reference, &rows, tta, None);
            eprintln!("{name} {how}, tta={tta}: max |Δ| vs Esri {worst:.2e}");
            assert_eq!(stderr.contains("converted"), how == "as it is", "{stderr}");
        }
    }
    let out = run_ok(&["inspect", package(name).to_str().unwrap(), "--json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["check"], "ok");
    assert_eq!(s["converted"]["family"], family);
    assert_eq!(s["converted"]["backbone"], architecture);
    assert_eq!(s["converted"]["declared_backbone"], declared);
    let float_values = SeededPackage::load(name).layout["float32_values"].clone();
    assert_eq!(
        s["converted"]["float32_values"], float_values,
        "every float32 value once"
    );
    let text = String::from_utf8(run_ok(&["inspect", package(name).to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains(family) && text.contains(architecture), "{text}");
    // The weights decide: an .emd naming another converted backbone is refused, whatever it says.
    for other in ["resnet34", "timm:efficientnet_b3", "timm:vit_base_patch16_224"] {
        let edited = with_backbone(d, name, declared, other);
        let line = run_err(&["inspect", edited.to_str().unwrap()], 2);
        assert!(
            line.contains(&format!(
                "holds a {architecture} but its .emd says backbone \"{other}\""
            )),
            "{line}"
        );
    }
}

/// The seeded package `name` with its `.emd` declaring `backbone` instead of `declared`.
fn with_backbone(dir: &Path, name: &str, declared: &str, backbone: &str) -> PathBuf {
    let package = SeededPackage::load(name);
    let from = format!("\"backbone\": \"{declared}\"");
    assert!(package.emd.contains(&from), "{name}: the emd has no {from}");
    let emd = package.emd.replace(&from, &format!("\"backbone\": \"{backbone}\""));
    let path = dir.join(format!("{name}_as_{}.dlpk", backbone.replace(':', "_")));
    write_zip(
        &path,
        &[
            (&format!("{name}.emd"), emd.as_bytes()),
            (&format!("{name}.pth"), &package.pth()),
        ],
    );
    path
}

/// The references must tell chips apart, or matching them proves little: more than one label
/// and a spread of confidences, plain and with TTA.
fn assert_varied(name: &str, reference: &Value) {
    let chips = reference["chips"].as_array().unwrap();
    for (label, confidence) in [("label", "confidence"), ("tta_label", "tta_confidence")] {
        let labels: std::collections::BTreeSet<&str> = chips.iter().map(|c| c[label].as_str().unwrap()).collect();
        let values: Vec<f64> = chips
            .iter()
            .map(|c| c[confidence].as_str().unwrap().parse().unwrap())
            .collect();
        let spread = values.iter().copied().fold(f64::MIN, f64::max) - values.iter().copied().fold(f64::MAX, f64::min);
        assert!(
            labels.len() > 1 && spread > 0.02,
            "{name}: {label} {labels:?}, spread {spread}"
        );
    }
}

#[test]
fn mobilenet_v2_matches_esri() {
    family_matches_esri("fc_mobilenet_v2_seeded");
}

#[test]
fn efficientnet_matches_esri() {
    family_matches_esri("fc_efficientnet_b0_seeded");
    // Without the .emd's backbone name the weights could be timm's tf_efficientnet_b0 (same
    // shapes, TensorFlow padding, BN epsilon 1e-3): refused rather than guessed.
    let dir = tempfile::tempdir().unwrap();
    let package = SeededPackage::load("fc_efficientnet_b0_seeded");
    let emd = package
        .emd
        .replace("\"backbone\": \"timm:efficientnet_b0\"", "\"unused\": 0");
    assert_ne!(emd, package.emd);
    let path = dir.path().join("nameless.dlpk");
    write_zip(
        &path,
        &[
            ("m.emd", emd.as_bytes()),
            ("fc_efficientnet_b0_seeded.pth", &package.pth()),
        ],
    );
    let line = run_err(&["inspect", path.to_str().unwrap()], 2);
    assert!(line.contains("names no backbone") && line.contains("tf_"), "{line}");
}

#[test]
fn mobilenetv3_matches_esri() {
    family_matches_esri("fc_mobilenetv3_large_seeded");
}

#[test]
fn densenet_matches_esri() {
    family_matches_esri("fc_densenet121_seeded");
}

#[test]
fn vgg_matches_esri() {
    family_matches_esri("fc_vgg11_bn_seeded");
}

#[test]
fn vit_matches_esri() {
    family_matches_esri("fc_deit_tiny_seeded");
    // timm builds the ViT for the chip size (its position table has one row per patch): an .emd
    // with another chip size is refused, not run on a table of the wrong size.
    let dir = tempfile::tempdir().unwrap();
    let package = SeededPackage::load("fc_deit_tiny_seeded");
    let emd = package
        .emd
        .replace("\"ImageHeight\": 224", "\"ImageHeight\": 256")
        .replace("\"ImageWidth\": 224", "\"ImageWidth\": 256");
    let path = dir.path().join("chip256.dlpk");
    write_zip(
        &path,
        &[("m.emd", emd.as_bytes()), ("fc_deit_tiny_seeded.pth", &package.pth())],
    );
    let line = run_err(&["inspect", path.to_str().unwrap()], 2);
    assert!(
        line.contains("built for 224 x 224 chips") && line.contains("ImageHeight 256"),
        "{line}"
    );
}

/// A backbone that is not converted natively (timm's TensorFlow-padded MobileNetV3-Small) made
/// runnable with `tools/export_onnx.py`: the committed package is what that script wrote from a
/// seeded arcgis.learn package (`tools/arcgis_learn/check_export.py --keep`), and
/// `reference.json` is Esri's inference on that package.
#[test]
fn a_package_exported_with_export_onnx_py_gives_esri_numbers() {
    let name = "fc_tf_mobilenetv3_small_minimal_export";
    let folder = fixture(&format!("arcgis_learn/{name}"));
    let exported = folder.join(format!("{name}.dlpk"));
    let reference: Value = serde_json::from_str(&fs::read_to_string(folder.join("reference.json")).unwrap()).unwrap();
    assert_eq!(reference["backbone"], "timm:tf_mobilenetv3_small_minimal_100");
    assert_varied(name, &reference);
    let dir = tempfile::tempdir().unwrap();
    for tta in [false, true] {
        let arg = format!("test_time_augmentation={tta}");
        let (rows, _, stderr) = classify(
            dir.path(),
            &exported,
            &reference,
            &format!("x{tta}"),
            &["--model-arg", &arg],
        );
        let worst = compare(name, &reference, &rows, tta, None);
        eprintln!("{name}, tta={tta}: max |Δ| vs Esri {worst:.2e}");
        assert!(
            !stderr.contains("converted"),
            "an ONNX package: nothing to convert: {stderr}"
        );
    }
    // The .emd carried over, pointing at the .onnx, with the record of where it came from.
    let mut zip = zip::ZipArchive::new(fs::File::open(&exported).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(&format!("{name}.emd")).unwrap(), &mut text).unwrap();
    let emd: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(emd["ModelFile"], format!("{name}.onnx"));
    assert_eq!(emd["ConvertedFrom"]["ModelFile"], format!("{name}.pth"));
    assert_eq!(emd["ConvertedFrom"]["Outputs"], "logits");
    let out = run_ok(&["inspect", exported.to_str().unwrap(), "--json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["check"].as_str(), s["activation"].as_str()),
        (Some("ok"), Some("softmax"))
    );
    assert_eq!(s["inputs"][0]["shape"], serde_json::json!([-1, 3, 224, 224]));
}

#[test]
fn multi_label_threshold_under_both_argument_names() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(RESNET50);
    for (tta, key) in [(false, "labels_threshold_0.3"), (true, "tta_labels_threshold_0.3")] {
        for arg in ["threshold=0.3", "score_threshold=0.3"] {
            let tag = format!("t_{tta}_{}", arg.len());
            let tta_arg = format!("test_time_augmentation={tta}");
            let (rows, _, _) = classify(
                dir.path(),
                &package(RESNET50),
                &reference,
                &tag,
                &["--model-arg", arg, "--model-arg", &tta_arg],
            );
            compare(RESNET50, &reference, &rows, tta, Some(key));
        }
    }
    // The labels really depend on the threshold here.
    assert_ne!(
        reference["chips"][1]["labels"],
        reference["chips"][1]["labels_threshold_0.3"]
    );
}

#[test]
fn converted_packages_give_the_same_numbers_and_keep_the_emd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in [RESNET18, RESNET50] {
        let reference = reference(name);
        let converted = d.join(format!("{name}_onnx.dlpk"));
        let output = run_ok(&[
            "convert",
            package(name).to_str().unwrap(),
            "-o",
            converted.to_str().unwrap(),
        ]);
        assert!(String::from_utf8_lossy(&output.stderr).contains("converted"));
        // Written once: a second convert needs --overwrite.
        let line = run_err(
            &[
                "convert",
                package(name).to_str().unwrap(),
                "-o",
                converted.to_str().unwrap(),
            ],
            2,
        );
        assert!(line.contains("already exists"), "{line}");

        // The .emd: every key kept with its value, ModelFile now the .onnx, plus ConvertedFrom.
        let original: serde_json::Map<String, Value> = serde_json::from_str(&SeededPackage::load(name).emd).unwrap();
        let mut zip = zip::ZipArchive::new(fs::File::open(&converted).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(String::from).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&format!("{name}.onnx")) && names.contains(&format!("{name}.emd")));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(&format!("{name}.emd")).unwrap(), &mut text).unwrap();
        let emd: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = emd.keys().filter(|k| *k != "ConvertedFrom").collect();
        assert_eq!(keys, original.keys().collect::<Vec<_>>(), "key order kept");
        for (k, v) in &original {
            if k == "ModelFile" {
                assert_eq!(emd[k], format!("{name}.onnx"));
            } else {
                assert_eq!(&emd[k], v, "{k} kept");
            }
        }
        assert_eq!(emd["ConvertedFrom"]["ModelFile"], format!("{name}.pth"));

        // Same numbers as the in-memory conversion, and no conversion any more.
        for tta in [false, true] {
            let arg = format!("test_time_augmentation={tta}");
            let (rows, csv, stderr) = classify(
                d,
                &converted,
                &reference,
                &format!("conv_{name}_{tta}"),
                &["--model-arg", &arg],
            );
            let worst = compare(name, &reference, &rows, tta, None);
            eprintln!("{name} converted, tta={tta}: max |Δ| vs Esri {worst:.2e}");
            assert!(!stderr.contains("converted"), "{stderr}");
            let (_, direct, _) = classify(
                d,
                &package(name),
                &reference,
                &format!("direct_{name}_{tta}"),
                &["--model-arg", &arg],
            );
            assert_eq!(csv, direct, "converted and in-memory runs write the same rows");
        }
    }
    // An ONNX package has nothing to convert.
    let line = run_err(
        &[
            "convert",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-o",
            d.join("x.dlpk").to_str().unwrap(),
        ],
        2,
    );
    assert!(line.contains("nothing to convert"), "{line}");
    assert!(!d.join("x.dlpk").exists());
}

#[test]
fn inspect_shows_the_emd_and_the_architecture_found_in_the_weights() {
    for (name, backbone, float_values, classes, activation) in [
        (RESNET18, "resnet18", 11_719_108, 4, "softmax"),
        (RESNET50, "resnet50", 25_678_787, 3, "sigmoid"),
    ] {
        let out = run_ok(&["inspect", package(name).to_str().unwrap(), "--json"]);
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["check"], "ok");
        assert_eq!(s["converted"]["backbone"], backbone);
        assert_eq!(s["converted"]["declared_backbone"], backbone);
        // The float32 value counts arcgis.learn reported for these models (BN statistics included).
        assert_eq!(s["converted"]["float32_values"], float_values);
        assert_eq!(s["converted"]["classes"], classes);
        assert_eq!(s["activation"], activation);
        assert_eq!(s["chip"]["width"], 224);
        assert_eq!(s["classes"].as_array().unwrap().len(), classes);
        assert_eq!(s["outputs"][0]["shape"], serde_json::json!([-1, classes]));
        let text = String::from_utf8(run_ok(&["inspect", package(name).to_str().unwrap()]).stdout).unwrap();
        assert!(text.contains(&format!("{backbone} body + fastai head")), "{text}");
    }
    // A bare .emd next to its .pth (the package unzipped) works the same.
    let dir = tempfile::tempdir().unwrap();
    let mut zip = zip::ZipArchive::new(fs::File::open(package(RESNET18)).unwrap()).unwrap();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut file = fs::File::create(dir.path().join(entry.name())).unwrap();
        std::io::copy(&mut entry, &mut file).unwrap();
    }
    let emd = dir.path().join(format!("{RESNET18}.emd"));
    let out = run_ok(&["inspect", emd.to_str().unwrap(), "--json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["check"].as_str(), s["converted"]["backbone"].as_str()),
        (Some("ok"), Some("resnet18"))
    );

    // Class order is the .emd's array order, never re-sorted ("Built-up" < "Vegetation" < ... < "bare_soil").
    let out = run_ok(&["inspect", package(RESNET18).to_str().unwrap(), "--json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = s["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Built-up", "Vegetation", "Water", "bare_soil"]);
}

#[test]
fn the_chips_cut_are_the_reference_windows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = reference(RESNET18);
    let chips = d.join("chips");
    classify(
        d,
        &package(RESNET18),
        &reference,
        "dump",
        &["--dump-chips", chips.to_str().unwrap()],
    );
    for (i, chip) in reference["chips"].as_array().unwrap().iter().enumerate() {
        let (w, h, planes) = read_chip(&chips.join(format!("chip_{i:06}.tif")));
        assert_eq!((w, h), (224, 224));
        // Esri's chip as uint8 bands, one after another, as it cut it from the same raster.
        let raw: Vec<u8> = planes.iter().flatten().map(|&v| v as u8).collect();
        assert!(planes
            .iter()
            .flatten()
            .all(|&v| v == v.round() && (0.0..=255.0).contains(&v)));
        assert_eq!(sha256(&raw), chip["sha256_uint8_chw"], "chip {i} is Esri's window");
    }
}

#[test]
fn hostile_and_damaged_weights_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stem = resnet_stem("FloatStorage");
    let good_prefix = pth_zip("m", &state_dict_pickle(&stem), &stem);
    let double = resnet_stem("DoubleStorage");
    // (name, .pth bytes, edits of the .emd, what the error line must say)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "os_system",
            pth_zip("m", &os_system_pickle(), &[]),
            vec![],
            vec!["os.system", "never uses"],
        ),
        (
            "truncated",
            good_prefix[..good_prefix.len() * 2 / 3].to_vec(),
            vec![],
            vec!["truncated"],
        ),
        (
            "wrong_dtype",
            pth_zip("m", &state_dict_pickle(&double), &double),
            vec![],
            vec!["0.0.weight", "float64"],
        ),
        ("missing_key", good_prefix.clone(), vec![], vec!["0.4.0.bn1.weight"]),
        ("legacy", vec![0x80, 2, b'}', b'.'], vec![], vec!["legacy format"]),
        (
            "other_backbone",
            good_prefix.clone(),
            vec![(
                "\"backbone\": \"resnet18\"",
                "\"backbone\": \"timm:swin_tiny_patch4_window7_224\"",
            )],
            vec![
                "timm:swin_tiny_patch4_window7_224",
                "python export_onnx.py",
                "other_backbone.dlpk -o model_onnx.dlpk",
                "share/classify-objects/ when installed)",
            ],
        ),
        (
            "convnext",
            good_prefix.clone(),
            vec![("\"backbone\": \"resnet18\"", "\"backbone\": \"timm:convnext_tiny\"")],
            vec!["timm:convnext_tiny", "arcgis.learn's FeatureClassifier itself rejects"],
        ),
        (
            "timm_d_variant",
            good_prefix.clone(),
            vec![("\"backbone\": \"resnet18\"", "\"backbone\": \"timm:resnet101d\"")],
            vec!["timm:resnet101d", "not converted", "export_onnx.py"],
        ),
        (
            "other_model_type",
            good_prefix.clone(),
            vec![("\"_FeatureClassifier\"", "\"_MaskRCNN\"")],
            vec!["_MaskRCNN", "export this model to ONNX"],
        ),
        (
            "multispectral",
            good_prefix.clone(),
            vec![("\"IsMultispectral\": false", "\"IsMultispectral\": true")],
            vec!["multispectral"],
        ),
    ];
    let _ = fs::remove_file("/tmp/classify-objects-pwned");
    for (tag, pth, replace, needles) in cases {
        let pkg = pth_package(d, &format!("{tag}.dlpk"), &replace, &pth);
        let out = d.join(format!("{tag}.gpkg"));
        let line = run_err(
            &[
                "-r",
                fixture("real/RGB.byte.tif").to_str().unwrap(),
                "-m",
                pkg.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            2,
        );
        for needle in needles {
            assert!(line.contains(needle), "{tag}: {line} should mention {needle}");
        }
        assert!(!out.exists(), "{tag}: no output");
        // inspect and convert refuse it the same way.
        run_err(&["inspect", pkg.to_str().unwrap()], 2);
        run_err(
            &[
                "convert",
                pkg.to_str().unwrap(),
                "-o",
                d.join(format!("{tag}_c.dlpk")).to_str().unwrap(),
            ],
            2,
        );
        assert!(!d.join(format!("{tag}_c.dlpk")).exists());
    }
    assert!(
        !Path::new("/tmp/classify-objects-pwned").exists(),
        "nothing from the pickle ran"
    );
}
