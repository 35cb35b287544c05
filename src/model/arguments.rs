//! Model arguments, as the Esri tool takes them: `batch_size`, `test_time_augmentation`,
//! (multi-label models) `threshold` as arcgis.learn 2.4 names it, or `score_threshold` as 2.0
//! did, and (packages whose `.emd` has `ExpMap`) `explainability_map`; given as
//! `--model-arg name=value` or in Esri's string form `"batch_size 4;test_time_augmentation
//! true"` (`name:value` is accepted too).
//!
//! As in ArcGIS, an `.emd` `BatchSize` wins over the `batch_size` argument, and an `.emd`
//! `test_time_augmentation` sets that argument's default. `padding`, which Esri's documentation
//! sample passes, and `explainability_map` are accepted with a one-line note that they change
//! nothing here. Any other name is an error listing the valid ones, so a typo never goes unseen.

use anyhow::Result;

use crate::bail_input;
use crate::messages;
use crate::model::definition::{parse_truthy, LabelMode, ModelDefinition, MAX_BATCH_SIZE};

/// Batch size when neither the `.emd` nor the arguments give one (Esri's UI default).
pub const DEFAULT_BATCH_SIZE: usize = 4;
/// Default `threshold` of multi-label models.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Most memory one batch of chips may take, in bytes (twice that with test-time augmentation).
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// Refuses a batch size whose chips do not fit [`MAX_BATCH_BYTES`], before any work starts.
pub fn check_batch_memory(definition: &ModelDefinition, batch_size: usize, tta: bool) -> Result<()> {
    let chip_bytes = definition.values_per_chip() * std::mem::size_of::<f32>();
    let copies = if tta { 2 } else { 1 };
    let batch_bytes = chip_bytes.saturating_mul(batch_size).saturating_mul(copies);
    if batch_bytes > MAX_BATCH_BYTES {
        let most = (MAX_BATCH_BYTES / (chip_bytes * copies)).max(1);
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        if chip_bytes * copies > MAX_BATCH_BYTES {
            bail_input!(
                "one chip of {} x {} x {} values takes {:.1} GiB, more than the {:.0} GiB a batch may hold; the model's chip size (ImageWidth, ImageHeight, ExtractBands) is too large",
                definition.image_width,
                definition.image_height,
                definition.extract_bands.len(),
                gib(chip_bytes * copies),
                gib(MAX_BATCH_BYTES)
            );
        }
        bail_input!(
            "batch_size {batch_size} with chips of {} x {} x {} needs {:.1} GiB per batch, more than the {:.0} GiB allowed; use batch_size {most} or less",
            definition.image_width,
            definition.image_height,
            definition.extract_bands.len(),
            gib(batch_bytes),
            gib(MAX_BATCH_BYTES)
        );
    }
    Ok(())
}

/// One accepted model argument, for `inspect` and error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentInfo {
    /// Argument name.
    pub name: &'static str,
    /// Default value as text.
    pub default: String,
    /// What it does.
    pub help: &'static str,
}

/// The model arguments `definition` accepts, with their defaults.
pub fn accepted(definition: &ModelDefinition) -> Vec<ArgumentInfo> {
    let mut list = Vec::new();
    if definition.batch_size.is_none() {
        list.push(ArgumentInfo {
            name: "batch_size",
            default: DEFAULT_BATCH_SIZE.to_string(),
            help: "chips per inference batch",
        });
    }
    list.push(ArgumentInfo {
        name: "test_time_augmentation",
        default: if definition.test_time_augmentation {
            "True"
        } else {
            "False"
        }
        .to_string(),
        help: "average the probabilities over flipped/rotated chips",
    });
    if definition.label_mode == LabelMode::MultiLabel {
        list.push(ArgumentInfo {
            name: "threshold",
            default: DEFAULT_THRESHOLD.to_string(),
            help: "lowest score for a label to be kept (multi-label models; score_threshold is its arcgis.learn 2.0 name)",
        });
    }
    if definition.explainability_map {
        list.push(ArgumentInfo {
            name: "explainability_map",
            default: "False".to_string(),
            help: "accepted; no Grad-CAM map is written",
        });
    }
    list
}

/// Resolved model arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArguments {
    /// Chips per inference batch.
    pub batch_size: usize,
    /// Whether to run test-time augmentation.
    pub test_time_augmentation: bool,
    /// Threshold of multi-label models (`threshold`, or `score_threshold`).
    pub threshold: f32,
}

/// Splits Esri's `"name value;name value"` form (also `name:value`, `name=value`) into pairs.
pub fn parse_esri_string(text: &str) -> Result<Vec<(String, String)>> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let split = part
                .split_once('=')
                .or_else(|| part.split_once(':'))
                .or_else(|| part.split_once(char::is_whitespace));
            match split {
                Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.trim().to_string())),
                _ => bail_input!(
                    "model argument \"{part}\" has no value; write it as \"name value\" (e.g. \"batch_size 8;test_time_augmentation true\")"
                ),
            }
        })
        .collect()
}

/// Resolves `pairs` against what `definition` accepts. Unknown names and bad values are errors
/// that list the valid arguments.
pub fn resolve(definition: &ModelDefinition, pairs: &[(String, String)]) -> Result<ModelArguments> {
    let accepted = accepted(definition);
    let mut args = ModelArguments {
        batch_size: definition.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        test_time_augmentation: definition.test_time_augmentation,
        threshold: DEFAULT_THRESHOLD,
    };
    for (name, value) in pairs {
        let key = name.to_ascii_lowercase();
        match key.as_str() {
            "batch_size" if definition.batch_size.is_some() => {
                // ArcGIS does not offer the argument when the .emd fixes BatchSize; say so.
                messages::info(format_args!(
                    "the model's .emd sets BatchSize {}, which wins over batch_size {value}",
                    args.batch_size
                ));
            }
            "batch_size" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_BATCH_SIZE).contains(&n) => args.batch_size = n,
                _ => bail_input!(
                    "model argument batch_size \"{value}\" is not a whole number between 1 and {MAX_BATCH_SIZE}"
                ),
            },
            "test_time_augmentation" => match parse_truthy(value) {
                Some(b) => args.test_time_augmentation = b,
                None => bail_input!("model argument test_time_augmentation \"{value}\" is not true or false"),
            },
            "threshold" | "score_threshold" if definition.label_mode == LabelMode::MultiLabel => {
                match value.parse::<f32>() {
                    Ok(t) if (0.0..=1.0).contains(&t) => args.threshold = t,
                    _ => bail_input!("model argument {key} \"{value}\" is not a number between 0 and 1"),
                }
            }
            "explainability_map" if definition.explainability_map => match parse_truthy(value) {
                Some(true) => {
                    messages::note("model argument explainability_map has no effect here (no Grad-CAM map is written)")
                }
                Some(false) => {}
                None => bail_input!("model argument explainability_map \"{value}\" is not true or false"),
            },
            "padding" => messages::note(format_args!(
                "model argument padding {value} has no effect on object classification (ArcGIS ignores it too)"
            )),
            "device" | "gpu" | "gpu_id" | "processor_type" | "processortype" => bail_input!(
                "\"{name}\" is not a model argument here: choose where inference runs with --device (cpu, cuda, cuda:N or auto), as ArcGIS's processor type environment"
            ),
            _ => bail_input!(
                "unknown model argument \"{name}\"; this model accepts: {}",
                accepted
                    .iter()
                    .map(|a| format!("{} (default {})", a.name, a.default))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(extra: &str) -> ModelDefinition {
        let json = format!(
            r#"{{"ModelType":"ObjectClassification","ImageWidth":8,"ImageHeight":8,"Classes":[{{"Name":"a"}},{{"Name":"b"}}]{extra}}}"#
        );
        ModelDefinition::parse(&json, "t.emd").unwrap()
    }

    #[test]
    fn esri_string_form() {
        let pairs = parse_esri_string("batch_size 8; test_time_augmentation:true;score_threshold=0.3;").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("batch_size".to_string(), "8".to_string()),
                ("test_time_augmentation".to_string(), "true".to_string()),
                ("score_threshold".to_string(), "0.3".to_string())
            ]
        );
        assert!(parse_esri_string("batch_size").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let d = definition("");
        assert_eq!(
            resolve(&d, &[]).unwrap(),
            ModelArguments {
                batch_size: 4,
                test_time_augmentation: false,
                threshold: 0.5
            }
        );
        let a = resolve(
            &d,
            &[
                ("batch_size".into(), "16".into()),
                ("test_time_augmentation".into(), "Yes".into()),
            ],
        )
        .unwrap();
        assert_eq!((a.batch_size, a.test_time_augmentation), (16, true));
    }

    #[test]
    fn emd_batch_size_wins_and_tta_default_comes_from_emd() {
        let d = definition(r#","BatchSize":2,"test_time_augmentation":"True""#);
        let a = resolve(&d, &[("batch_size".into(), "64".into())]).unwrap();
        assert_eq!((a.batch_size, a.test_time_augmentation), (2, true));
        assert!(!accepted(&d).iter().any(|x| x.name == "batch_size"));
    }

    #[test]
    fn unknown_and_mode_specific_arguments_are_errors_listing_valid_ones() {
        let d = definition("");
        let err = resolve(&d, &[("pading".into(), "0".into())]).unwrap_err().to_string();
        assert!(
            err.contains("pading") && err.contains("batch_size") && err.contains("test_time_augmentation"),
            "{err}"
        );
        // threshold / score_threshold only exist for multi-label models.
        assert!(resolve(&d, &[("threshold".into(), "0.2".into())]).is_err());
        assert!(resolve(&d, &[("score_threshold".into(), "0.2".into())]).is_err());
        let multi = definition(r#","MetaDataMode":"MultiLabeled_Tiles""#);
        for name in ["threshold", "score_threshold"] {
            assert_eq!(resolve(&multi, &[(name.into(), "0.2".into())]).unwrap().threshold, 0.2);
            assert!(resolve(&multi, &[(name.into(), "1.5".into())]).is_err());
        }
        assert!(accepted(&multi).iter().any(|a| a.name == "threshold"));
        assert!(resolve(&d, &[("batch_size".into(), "0".into())]).is_err());
    }

    #[test]
    fn esri_sample_arguments_accepted_where_they_exist() {
        let d = definition("");
        // Esri's documentation sample passes "padding 0;batch_size 4".
        let a = resolve(&d, &parse_esri_string("padding 0;batch_size 4").unwrap()).unwrap();
        assert_eq!(a.batch_size, 4);
        // explainability_map only where the .emd offers it (ExpMap).
        assert!(resolve(&d, &[("explainability_map".into(), "true".into())]).is_err());
        let with_map = definition(r#","ExpMap":true"#);
        assert!(resolve(&with_map, &[("explainability_map".into(), "true".into())]).is_ok());
        assert!(resolve(&with_map, &[("explainability_map".into(), "maybe".into())]).is_err());
        assert!(accepted(&with_map).iter().any(|a| a.name == "explainability_map"));
    }
}
