//! arcgis.learn FeatureClassifier packages, whose model is PyTorch weights, converted to ONNX in
//! memory without Python. One way through: the restricted unpickler ([`pickle`]) reads the
//! `.pth`'s `data.pkl`, [`pth`] turns it and the zip's storages into named tensors, [`resnet`]
//! finds the network the weights hold, [`graph`] writes its ONNX graph and [`encode`] the ONNX
//! bytes over the `.pth` bytes; [`feature_classifier`] checks the package and drives them.
//! Nothing from a package is executed.

pub mod encode;
pub mod feature_classifier;
pub mod graph;
pub mod pickle;
pub mod pth;
pub mod resnet;
