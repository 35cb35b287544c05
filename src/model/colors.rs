//! The display colour of each class: the `.emd`'s `Color`, or a distinct default. Used by the
//! QGIS style of an output and by the report.

/// Classes to colour: name and RGB, in model output order.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassColors(pub Vec<(String, [u8; 3])>);

/// A distinct display colour for class `i`, for classes the `.emd` gives none.
pub fn default_color(i: usize) -> [u8; 3] {
    const DEFAULTS: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    DEFAULTS[i % DEFAULTS.len()]
}
