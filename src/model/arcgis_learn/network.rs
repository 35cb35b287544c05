//! Which network a FeatureClassifier state_dict holds: the family told from key names that only
//! it has, then found and checked by that family's file ([`crate::model::arcgis_learn::families`]);
//! the backbone names (`ModelParameters.backbone`) whose network is converted, and the one graph
//! writer for all of them.

use anyhow::Result;

use crate::bail_input;
use crate::model::arcgis_learn::families::densenet::{self, DenseNet};
use crate::model::arcgis_learn::families::efficientnet::{self, EfficientNet};
use crate::model::arcgis_learn::families::mobilenet_v2::{self, MobileNetV2};
use crate::model::arcgis_learn::families::mobilenetv3::{self, MobileNetV3};
use crate::model::arcgis_learn::families::resnet::{self, ResNet};
use crate::model::arcgis_learn::families::vgg::{self, Vgg};
use crate::model::arcgis_learn::families::vit::{self, Vit};
use crate::model::arcgis_learn::graph::{Builder, Graph, ModelShape, Provenance};
use crate::model::arcgis_learn::pth::StateDict;
use crate::model::arcgis_learn::weights::Counts;

/// Backbone names (`ModelParameters.backbone`, as arcgis.learn's `save()` writes them) whose
/// FeatureClassifier is converted, and the architecture the weights must hold for each.
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
    ("mobilenet_v2", "mobilenet_v2"),
    ("timm:efficientnet_b0", "efficientnet_b0"),
    ("timm:efficientnet_b1", "efficientnet_b1"),
    ("timm:efficientnet_b2", "efficientnet_b2"),
    ("timm:efficientnet_b3", "efficientnet_b3"),
    ("timm:mobilenetv3_large_100", "mobilenetv3_large_100"),
    ("timm:densenet121", "densenet121"),
    ("timm:densenet161", "densenet161"),
    ("timm:densenet169", "densenet169"),
    ("timm:densenet201", "densenet201"),
    ("timm:vgg11_bn", "vgg11_bn"),
    ("timm:vgg13_bn", "vgg13_bn"),
    ("timm:vgg16_bn", "vgg16_bn"),
    ("timm:vgg19_bn", "vgg19_bn"),
    ("timm:vgg11", "vgg11"),
    ("timm:vgg13", "vgg13"),
    ("timm:vgg16", "vgg16"),
    ("timm:vgg19", "vgg19"),
    ("timm:deit_tiny_patch16_224", "vit_tiny_patch16"),
    ("timm:deit_small_patch16_224", "vit_small_patch16"),
    ("timm:deit_base_patch16_224", "vit_base_patch16"),
    ("timm:deit_base_patch16_384", "vit_base_patch16"),
    ("timm:vit_tiny_patch16_224", "vit_tiny_patch16"),
    ("timm:vit_tiny_patch16_384", "vit_tiny_patch16"),
    ("timm:vit_small_patch16_224", "vit_small_patch16"),
    ("timm:vit_small_patch16_384", "vit_small_patch16"),
    ("timm:vit_base_patch16_224", "vit_base_patch16"),
    ("timm:vit_base_patch16_384", "vit_base_patch16"),
    ("timm:vit_large_patch16_224", "vit_large_patch16"),
    ("timm:vit_large_patch16_384", "vit_large_patch16"),
    ("timm:vit_huge_patch14_224", "vit_huge_patch14"),
    ("timm:deit_tiny", "vit_tiny_patch16"),
    ("timm:deit_small", "vit_small_patch16"),
    ("timm:deit_base", "vit_base_patch16"),
    ("timm:vit_tiny", "vit_tiny_patch16"),
    ("timm:vit_small", "vit_small_patch16"),
    ("timm:vit_base", "vit_base_patch16"),
    ("timm:vit_large", "vit_large_patch16"),
    ("timm:vit_huge", "vit_huge_patch14"),
];

/// The families converted, for messages.
pub const FAMILIES: &str = "ResNet, MobileNetV2, EfficientNet-B0..B3, MobileNetV3-Large, DenseNet, VGG, ViT/DeiT";

/// How to make an ONNX package of a FeatureClassifier this tool does not convert, for messages.
pub fn export_advice(package: &str) -> String {
    format!(
        "in the Python that trained it (ArcGIS Pro's) run: python export_onnx.py {package} -o model_onnx.dlpk (export_onnx.py: tools/ in the sources, share/classify-objects/ when installed)"
    )
}

/// The package (or `.emd`) an origin `package.dlpk!model.emd` names.
pub fn package_of(origin: &str) -> &str {
    origin.split_once('!').map_or(origin, |(package, _)| package)
}

/// The architecture the weights must hold for the backbone name `declared` (case ignored).
pub fn architecture_for(declared: &str) -> Option<&'static str> {
    SUPPORTED_BACKBONES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(declared))
        .map(|(_, a)| *a)
}

/// A FeatureClassifier network found in a state_dict.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// torchvision ResNet + fastai head.
    ResNet(ResNet),
    /// torchvision MobileNetV2 + fastai head.
    MobileNetV2(MobileNetV2),
    /// timm EfficientNet-B0..B3 + fastai head.
    EfficientNet(EfficientNet),
    /// timm MobileNetV3-Large + fastai head.
    MobileNetV3(MobileNetV3),
    /// timm DenseNet + fastai head.
    DenseNet(DenseNet),
    /// timm VGG + fastai head.
    Vgg(Vgg),
    /// timm VisionTransformer with its own head.
    Vit(Vit),
}

/// Finds the network `sd` holds: the family from keys only it has, then that family's checks.
pub fn detect(sd: &StateDict, origin: &str) -> Result<Network> {
    Ok(
        if sd.contains("0.cls_token") || sd.contains("0.patch_embed.proj.weight") {
            Network::Vit(vit::detect(sd, origin)?)
        } else if sd.contains("0.0.conv0.weight") {
            Network::DenseNet(densenet::detect(sd, origin)?)
        } else if sd.contains("0.0.0.0.weight") {
            Network::MobileNetV2(mobilenet_v2::detect(sd, origin)?)
        } else if sd.contains("0.2.0.0.conv_dw.weight") && sd.contains("0.3.weight") {
            Network::EfficientNet(efficientnet::detect(sd, origin)?)
        } else if sd.contains("0.2.0.0.conv_dw.weight") {
            Network::MobileNetV3(mobilenetv3::detect(sd, origin)?)
        } else if sd.contains("0.4.0.conv1.weight") || sd.contains("0.0.weight") {
            Network::ResNet(resnet::detect(sd, origin)?)
        } else if sd.contains("0.0.0.weight") {
            Network::Vgg(vgg::detect(sd, origin)?)
        } else {
            let first = sd.names().next().unwrap_or("-");
            bail_input!(
                "{origin} holds no network classify-objects converts (first key {first:?}); {}",
                export_advice(package_of(origin))
            );
        },
    )
}

impl Network {
    /// The family (`EfficientNet`).
    pub fn family(&self) -> &'static str {
        match self {
            Network::ResNet(_) => "ResNet",
            Network::MobileNetV2(_) => "MobileNetV2",
            Network::EfficientNet(_) => "EfficientNet",
            Network::MobileNetV3(_) => "MobileNetV3",
            Network::DenseNet(_) => "DenseNet",
            Network::Vgg(_) => "VGG",
            Network::Vit(_) => "ViT",
        }
    }

    /// The architecture, family and size (`efficientnet_b0`, `vit_tiny_patch16`).
    pub fn name(&self) -> String {
        match self {
            Network::ResNet(n) => n.name().to_string(),
            Network::MobileNetV2(_) => "mobilenet_v2".into(),
            Network::EfficientNet(n) => n.name.into(),
            Network::MobileNetV3(_) => mobilenetv3::NAME.into(),
            Network::DenseNet(n) => n.name.into(),
            Network::Vgg(n) => n.name.clone(),
            Network::Vit(n) => n.name.into(),
        }
    }

    /// What the model is, in a few words (`resnet18 body + fastai head`).
    pub fn description(&self) -> String {
        match self {
            Network::Vit(v) => format!(
                "{} ({} blocks, {} heads, {}x{} patches of {} px) with timm's own head",
                v.name, v.depth, v.heads, v.grid, v.grid, v.patch
            ),
            other => format!("{} body + fastai head", other.name()),
        }
    }

    /// Input channels, classes and value counts.
    pub fn counts(&self) -> Counts {
        match self {
            Network::ResNet(n) => n.counts,
            Network::MobileNetV2(n) => n.counts,
            Network::EfficientNet(n) => n.counts,
            Network::MobileNetV3(n) => n.counts,
            Network::DenseNet(n) => n.counts,
            Network::Vgg(n) => n.counts,
            Network::Vit(n) => n.counts,
        }
    }

    /// Whether the weights alone decide the network: timm's `tf_` twins of EfficientNet and
    /// MobileNetV3 have the same keys and shapes but pad like TensorFlow and use BN epsilon
    /// 1e-3, so those need the `.emd`'s backbone name.
    pub fn needs_declared_name(&self) -> bool {
        matches!(self, Network::EfficientNet(_) | Network::MobileNetV3(_))
    }

    /// The ONNX graph of the network for `height x width` chips; `origin` names the weights in
    /// messages.
    pub fn graph(
        &self,
        sd: &StateDict,
        height: usize,
        width: usize,
        provenance: &Provenance,
        origin: &str,
    ) -> Result<Graph> {
        let mut b = Builder::new(sd);
        match self {
            Network::ResNet(n) => n.graph(&mut b)?,
            Network::MobileNetV2(n) => n.graph(&mut b)?,
            Network::EfficientNet(n) => n.graph(&mut b)?,
            Network::MobileNetV3(n) => n.graph(&mut b)?,
            Network::DenseNet(n) => n.graph(&mut b)?,
            Network::Vgg(n) => n.graph(&mut b)?,
            Network::Vit(n) => {
                n.check_chip(height, width, origin)?;
                n.graph(&mut b)?
            }
        }
        let counts = self.counts();
        let shape = ModelShape {
            name: self.name(),
            description: self.description(),
            in_channels: counts.in_channels,
            height,
            width,
            classes: counts.classes,
        };
        Ok(b.finish(&shape, provenance))
    }
}
