//! arcgis.learn FeatureClassifier packages (`.emd` + PyTorch `.pth`, as ArcGIS Pro's "Train Deep
//! Learning Model" and `FeatureClassifier.save()` write them) converted to ONNX in memory: the
//! package kind and backbone checked from the `.emd`, the weights read by
//! [`crate::model::arcgis_learn::pth`], the network found by
//! [`crate::model::arcgis_learn::network`] (which must be the one the `.emd` names), its graph
//! written and encoded over the `.pth` bytes.
//!
//! Nothing from the package is executed. The model outputs logits; the activation (softmax for
//! `Labeled_Tiles`/`Imagenet`, sigmoid for `MultiLabeled_Tiles`) is decided once from the
//! `.emd`, as fastai decides it from the loss. Backbones that are not converted are refused with
//! the one command that makes an ONNX package of them (`tools/export_onnx.py`).

use std::time::Instant;

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::encode;
use crate::model::arcgis_learn::graph::Provenance;
use crate::model::arcgis_learn::network::{self, export_advice, package_of, FAMILIES};
use crate::model::arcgis_learn::pth;
use crate::model::definition::ModelDefinition;

/// What a conversion found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The weights converted (`package.dlpk!model.pth`).
    pub source: String,
    /// The `.pth` file name as `ModelFile` gives it.
    pub model_file: String,
    /// The family found in the weights (`EfficientNet`).
    pub family: String,
    /// The architecture found in the weights, family and size (`resnet34`, `efficientnet_b0`).
    pub architecture: String,
    /// What the model is in a few words (`resnet34 body + fastai head`).
    pub description: String,
    /// `ModelParameters.backbone` of the `.emd`, if given.
    pub declared_backbone: Option<String>,
    /// Model outputs.
    pub classes: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Trainable values.
    pub parameters: usize,
    /// All float32 values (with BatchNorm statistics).
    pub float_values: usize,
    /// Size of the `.pth`.
    pub weights_bytes: usize,
    /// Size of the ONNX model written.
    pub onnx_bytes: usize,
    /// Seconds spent reading the weights and writing the ONNX model.
    pub seconds: f64,
}

impl Conversion {
    /// The one-line notice printed when a package is converted for a run.
    pub fn notice(&self) -> String {
        format!(
            "converted {} (arcgis.learn FeatureClassifier, backbone {}, {:.1} M parameters, {} classes) to ONNX in {:.2} s; `classify-objects convert` writes the converted package once for later runs",
            self.source,
            self.architecture,
            self.parameters as f64 / 1e6,
            self.classes,
            self.seconds
        )
    }
}

/// Whether `model_file` names PyTorch weights (`.pth`).
pub fn is_pth(model_file: &str) -> bool {
    model_file.to_ascii_lowercase().ends_with(".pth")
}

/// Checks that `definition` describes a FeatureClassifier this tool can convert, before its
/// weights are read; `origin` names the `.emd` (`package.dlpk!model.emd` or `model.emd`).
pub fn check_definition(definition: &ModelDefinition, model_file: &str, origin: &str) -> Result<()> {
    let configuration = definition.model_configuration.as_deref().unwrap_or("");
    let framework = definition.framework.as_deref().unwrap_or("");
    let is_feature_classifier = matches!(configuration, "_FeatureClassifier" | "FeatureClassifier");
    let is_arcgis_learn = framework.starts_with("arcgis.learn") || framework.eq_ignore_ascii_case("pytorch");
    if !is_feature_classifier || !is_arcgis_learn {
        bail_input!(
            "model definition {origin} names \"ModelFile\": \"{model_file}\", PyTorch weights of \"ModelConfiguration\": {configuration:?} (\"Framework\": {framework:?}); classify-objects converts arcgis.learn FeatureClassifier weights only: export this model to ONNX and point ModelFile at the .onnx file"
        );
    }
    if definition.multispectral {
        bail_input!(
            "model definition {origin} is a multispectral FeatureClassifier (\"IsMultispectral\": true), which is not converted (its preprocessing is not verified against arcgis.learn); {}",
            export_advice(package_of(origin))
        );
    }
    if let Some(name) = &definition.backbone {
        if network::architecture_for(name).is_none() {
            if name.to_ascii_lowercase().contains("convnext") {
                bail_input!(
                    "model definition {origin} has backbone {name:?}, a ConvNeXt, which arcgis.learn's FeatureClassifier itself rejects (arcgis.learn 2.4 cannot make or load this package); retrain with a backbone FeatureClassifier accepts (converted here: {FAMILIES})"
                );
            }
            bail_input!(
                "model definition {origin} has backbone {name:?}, which is not converted natively; {}",
                export_advice(package_of(origin))
            );
        }
    }
    Ok(())
}

/// Converts the FeatureClassifier weights `pth` (the bytes of `model_file`) that `definition`
/// describes into an ONNX model; `source` names the weights in messages. The ONNX model is
/// written over the `.pth` bytes ([`encode`]): the weights are held once.
pub fn convert(
    definition: &ModelDefinition,
    pth: Vec<u8>,
    model_file: &str,
    source: &str,
) -> Result<(Vec<u8>, Conversion)> {
    let started = Instant::now();
    let weights_bytes = pth.len();
    let sd = pth::read(pth, source)?;
    let net = network::detect(&sd, source)?;
    check_declared(definition, &net, source)?;
    let counts = net.counts();
    check_size(&net.name(), counts.float_values, source)?;
    if counts.classes != definition.classes.len() {
        bail_input!(
            "{source} has {} outputs but its .emd lists {} classes; list one class per model output in Classes (in the order arcgis.learn wrote them)",
            counts.classes,
            definition.classes.len()
        );
    }
    let provenance = Provenance {
        props: vec![
            ("converted_from".into(), model_file.to_string()),
            ("arcgis_learn_model".into(), "FeatureClassifier".into()),
            ("backbone".into(), net.name()),
            ("outputs".into(), "logits".into()),
        ],
    };
    let graph = net.graph(
        &sd,
        definition.image_height,
        definition.image_width,
        &provenance,
        source,
    )?;
    let onnx = encode::encode(graph, sd)?;
    let conversion = Conversion {
        source: source.to_string(),
        model_file: model_file.to_string(),
        family: net.family().to_string(),
        architecture: net.name(),
        description: net.description(),
        declared_backbone: definition.backbone.clone(),
        classes: counts.classes,
        in_channels: counts.in_channels,
        parameters: counts.parameters,
        float_values: counts.float_values,
        weights_bytes,
        onnx_bytes: onnx.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((onnx, conversion))
}

/// Largest ONNX model: protobuf refuses messages of 2 GiB or more.
pub const MAX_ONNX_BYTES: usize = (2 << 30) - 1;

/// An ONNX model holds its weights in one protobuf message, so a network whose float32 values
/// take 2 GiB or more (ViT-Huge: 632 M parameters) cannot be one.
fn check_size(name: &str, float_values: usize, source: &str) -> Result<()> {
    if float_values.saturating_mul(4) >= MAX_ONNX_BYTES {
        bail_input!(
            "{source} holds a {name} with {:.1} GB of float32 weights, more than the 2 GB one ONNX model can hold (protobuf's limit), so it cannot be run; retrain with a smaller backbone",
            float_values as f64 * 4.0 / 1e9
        );
    }
    Ok(())
}

/// The `.emd`'s backbone must name the network the weights hold (the weights decide the graph;
/// a name that disagrees means the package was edited or mixed up).
fn check_declared(definition: &ModelDefinition, net: &network::Network, source: &str) -> Result<()> {
    match &definition.backbone {
        Some(declared) if network::architecture_for(declared) != Some(net.name().as_str()) => {
            bail_input!(
                "{source} holds a {} but its .emd says backbone {declared:?}; the package is inconsistent, re-export it",
                net.name()
            );
        }
        None if net.needs_declared_name() => bail_input!(
            "{source} holds a {} but its .emd names no backbone (\"ModelParameters\": {{\"backbone\": ...}}); timm's tf_ variant of it has the same weights' shapes and another graph, so the name arcgis.learn saved is needed: restore it",
            net.name()
        ),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_beyond_what_one_onnx_model_holds_are_refused() {
        // ViT-Huge/14 at 224 px: 632 M float32 values (2.5 GB).
        let err = check_size("vit_huge_patch14", 632_199_172, "h.pth").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(
            err.to_string().contains("2.5 GB") && err.to_string().contains("2 GB"),
            "{err}"
        );
        // ViT-Large/16: 304 M (1.2 GB) fits.
        check_size("vit_large_patch16", 304_330_756, "l.pth").unwrap();
    }

    #[test]
    fn unsupported_backbones_get_the_export_command() {
        assert_eq!(package_of("/a/b.dlpk!m.emd"), "/a/b.dlpk");
        assert_eq!(package_of("/a/b.dlpk!sub/m.pth"), "/a/b.dlpk");
        assert_eq!(package_of("/a/m.emd"), "/a/m.emd");
        assert!(export_advice("/a/b.dlpk").contains("python export_onnx.py /a/b.dlpk -o model_onnx.dlpk"));
    }
}
