//! arcgis.learn FeatureClassifier packages (`.emd` + PyTorch `.pth`, as ArcGIS Pro's "Train Deep
//! Learning Model" and `FeatureClassifier.save()` write them) converted to ONNX in memory: the
//! package kind and backbone checked from the `.emd`, the weights read by [`crate::model::arcgis_learn::pth`],
//! the network found by [`crate::model::arcgis_learn::resnet`], the graph written by [`crate::model::arcgis_learn::graph`].
//!
//! Nothing from the package is executed. The model outputs logits; the activation (softmax for
//! `Labeled_Tiles`/`Imagenet`, sigmoid for `MultiLabeled_Tiles`) is decided once from the
//! `.emd`, as fastai decides it from the loss.

use std::time::Instant;

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::encode;
use crate::model::arcgis_learn::graph::{self, Provenance};
use crate::model::arcgis_learn::pth;
use crate::model::arcgis_learn::resnet;
use crate::model::definition::ModelDefinition;

/// Backbone names (`ModelParameters.backbone`) whose FeatureClassifier is a torchvision ResNet
/// with the same keys and arithmetic, and the torchvision depth each must have.
pub const SUPPORTED_BACKBONES: &[(&str, &str)] = &[
    ("resnet18", "resnet18"),
    ("resnet34", "resnet34"),
    ("resnet50", "resnet50"),
    ("resnet101", "resnet101"),
    ("resnet152", "resnet152"),
    ("timm:resnet18", "resnet18"),
    ("timm:resnet34", "resnet34"),
    ("timm:resnet50", "resnet50"),
    ("hf:resnet18_sentinel2_rgb_moco", "resnet18"),
    ("hf:resnet50_sentinel2_rgb_moco", "resnet50"),
];

/// What a conversion found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The weights converted (`package.dlpk!model.pth`).
    pub source: String,
    /// The `.pth` file name as `ModelFile` gives it.
    pub model_file: String,
    /// The architecture found in the weights (`resnet34`).
    pub architecture: String,
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
/// weights are read; `origin` names the `.emd`.
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
            "model definition {origin} is a multispectral FeatureClassifier (\"IsMultispectral\": true), which is not converted (its preprocessing is not verified against arcgis.learn); export the model to ONNX and point ModelFile at the .onnx file"
        );
    }
    if let Some(name) = &definition.backbone {
        if !SUPPORTED_BACKBONES.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            bail_input!(
                "model definition {origin} has backbone {name:?}, which is not converted (supported FeatureClassifier backbones: {}); export the model to ONNX and point ModelFile at the .onnx file",
                SUPPORTED_BACKBONES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
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
    let net = resnet::detect(&sd, source)?;
    if let Some(declared) = &definition.backbone {
        let wanted = SUPPORTED_BACKBONES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(declared))
            .map(|(_, depth)| *depth);
        if wanted != Some(net.name()) {
            bail_input!(
                "{source} holds a {} but its .emd says backbone {declared:?}; the package is inconsistent, re-export it",
                net.name()
            );
        }
    }
    if net.classes != definition.classes.len() {
        bail_input!(
            "{source} has {} outputs but its .emd lists {} classes; list one class per model output in Classes (in the order arcgis.learn wrote them)",
            net.classes,
            definition.classes.len()
        );
    }
    let provenance = Provenance {
        props: vec![
            ("converted_from".into(), model_file.to_string()),
            ("arcgis_learn_model".into(), "FeatureClassifier".into()),
            ("backbone".into(), net.name().to_string()),
            ("outputs".into(), "logits".into()),
        ],
    };
    let graph = graph::build(&net, &sd, definition.image_height, definition.image_width, &provenance)?;
    let onnx = encode::encode(graph, sd)?;
    let conversion = Conversion {
        source: source.to_string(),
        model_file: model_file.to_string(),
        architecture: net.name().to_string(),
        declared_backbone: definition.backbone.clone(),
        classes: net.classes,
        in_channels: net.in_channels,
        parameters: net.parameters,
        float_values: net.float_values,
        weights_bytes,
        onnx_bytes: onnx.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((onnx, conversion))
}
