//! Test-time augmentation: fastai's dihedral transforms of a chip.

use crate::model::definition::ImageSpace;

/// The test-time augmentation variants for a chip shape: fastai's 8 dihedral transforms in
/// `MAP_SPACE` (the 4 without a transpose for non-square chips), identity and horizontal flip in
/// `PIXEL_SPACE`.
pub fn tta_variants(space: ImageSpace, height: usize, width: usize) -> Vec<u8> {
    match space {
        ImageSpace::PixelSpace => vec![0, 2],
        ImageSpace::MapSpace if height == width => (0..8).collect(),
        ImageSpace::MapSpace => (0..4).collect(),
    }
}

/// fastai's `dihedral(k)` of one `C x H x W` chip into `out`: bit 1 flips rows (H), bit 2 flips
/// columns (W), bit 4 then swaps H and W (square chips only).
pub fn dihedral(chip: &[f32], channels: usize, height: usize, width: usize, k: u8, out: &mut [f32]) {
    assert!(
        k & 4 == 0 || height == width,
        "a transposing dihedral transform needs a square chip"
    );
    let plane = height * width;
    for c in 0..channels {
        let src = &chip[c * plane..(c + 1) * plane];
        let dst = &mut out[c * plane..(c + 1) * plane];
        for y in 0..height {
            for x in 0..width {
                let sy = if k & 1 != 0 { height - 1 - y } else { y };
                let sx = if k & 2 != 0 { width - 1 - x } else { x };
                let value = src[sy * width + sx];
                if k & 4 != 0 {
                    dst[x * width + y] = value;
                } else {
                    dst[y * width + x] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dihedral_flips_and_transposes() {
        // 2x2 chip [a b; c d] = [1 2; 3 4].
        let chip = [1.0, 2.0, 3.0, 4.0];
        let apply = |k| {
            let mut out = [0.0; 4];
            dihedral(&chip, 1, 2, 2, k, &mut out);
            out
        };
        assert_eq!(apply(0), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(apply(1), [3.0, 4.0, 1.0, 2.0]); // rows flipped
        assert_eq!(apply(2), [2.0, 1.0, 4.0, 3.0]); // columns flipped
        assert_eq!(apply(4), [1.0, 3.0, 2.0, 4.0]); // transposed
        assert_eq!(apply(7), [4.0, 2.0, 3.0, 1.0]); // both flips, then transposed
        let all: std::collections::BTreeSet<[u32; 4]> = (0..8).map(|k| apply(k).map(|v| v as u32)).collect();
        assert_eq!(all.len(), 8, "the 8 variants are distinct");
        assert_eq!(tta_variants(ImageSpace::PixelSpace, 4, 4), vec![0, 2]);
        assert_eq!(tta_variants(ImageSpace::MapSpace, 4, 8).len(), 4);
    }
}
