//! Resampling a chip plane to the model's chip size.

/// Bilinear resampling of one plane (pixel centres aligned, edges clamped), aspect not kept.
pub fn resize_bilinear(src: &[f32], sw: usize, sh: usize, dst: &mut [f32], dw: usize, dh: usize) {
    let (sx, sy) = (sw as f64 / dw as f64, sh as f64 / dh as f64);
    for j in 0..dh {
        let fy = ((j as f64 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f64);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let ty = (fy - y0 as f64) as f32;
        for i in 0..dw {
            let fx = ((i as f64 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f64);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let tx = (fx - x0 as f64) as f32;
            let top = src[y0 * sw + x0] * (1.0 - tx) + src[y0 * sw + x1] * tx;
            let bottom = src[y1 * sw + x0] * (1.0 - tx) + src[y1 * sw + x1] * tx;
            dst[j * dw + i] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_identity_and_constant() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut dst = vec![0.0; 12];
        resize_bilinear(&src, 4, 3, &mut dst, 4, 3);
        assert_eq!(src, dst);
        let flat = vec![7.0; 6];
        let mut big = vec![0.0; 35];
        resize_bilinear(&flat, 3, 2, &mut big, 7, 5);
        assert!(big.iter().all(|&v| (v - 7.0).abs() < 1e-6));
    }

    #[test]
    fn bilinear_downsample_by_two_averages_pairs() {
        // 4 -> 2 with aligned centres samples at 0.5 and 2.5: the mean of each pair.
        let src = [0.0, 2.0, 4.0, 6.0];
        let mut dst = [0.0; 2];
        resize_bilinear(&src, 4, 1, &mut dst, 2, 1);
        assert_eq!(dst, [1.0, 5.0]);
    }
}
