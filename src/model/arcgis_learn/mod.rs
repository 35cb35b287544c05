//! arcgis.learn FeatureClassifier packages, whose model is PyTorch weights, converted to ONNX in
//! memory without Python. One way through: the restricted unpickler ([`pickle`]) reads the
//! `.pth`'s `data.pkl`, [`pth`] turns it and the zip's storages into named tensors, [`network`]
//! finds the network the weights hold (one file per family in [`families`], checked key by key
//! with [`weights`]), the family writes its ONNX graph with [`graph`] and the shared pieces of
//! [`blocks`], and [`encode`] writes the ONNX bytes over the `.pth` bytes;
//! [`feature_classifier`] checks the package and drives them. Nothing from a package is
//! executed.

pub mod blocks;
pub mod encode;
pub mod families;
pub mod feature_classifier;
pub mod graph;
pub mod network;
pub mod pickle;
pub mod pth;
pub mod weights;
