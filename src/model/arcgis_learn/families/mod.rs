//! One file per backbone family of arcgis.learn's FeatureClassifier: each finds its network in
//! a state_dict (keys and shapes, every key accounted for) and writes its ONNX graph with
//! [`crate::model::arcgis_learn::graph::Builder`]. [`mbconv`] holds the blocks timm's
//! EfficientNet and MobileNetV3 share.

pub mod densenet;
pub mod efficientnet;
pub mod mbconv;
pub mod mobilenet_v2;
pub mod mobilenetv3;
pub mod resnet;
pub mod vgg;
pub mod vit;
