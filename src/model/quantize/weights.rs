//! Weights in int8, symmetric per output channel (`scale = max |w| / 127`, zero point 0, values
//! in -127..=127), biases in int32 at the scale of input x weight (zero point 0), and the uint8
//! scale and zero point of an activation range — the arithmetic of ONNX's QuantizeLinear.

/// Largest magnitude of a symmetric int8 weight.
pub const INT8_MAX: f32 = 127.0;

/// A weight tensor in int8, per channel along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Weight {
    /// Values, in the tensor's layout.
    pub values: Vec<i8>,
    /// One scale per channel.
    pub scales: Vec<f32>,
}

/// Quantizes `values` (of shape `dims`) per channel along `axis`. A channel of zeros gets scale
/// 1 (its values are exactly 0 at any scale). `None` when a value is not finite.
pub fn quantize_per_channel(values: &[f32], dims: &[i64], axis: usize) -> Option<Int8Weight> {
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let channels = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let channel_of = |i: usize| (i / inner) % channels;
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        let c = channel_of(i);
        max[c] = max[c].max(v.abs());
    }
    let scales: Vec<f32> = max.iter().map(|&m| if m > 0.0 { m / INT8_MAX } else { 1.0 }).collect();
    let values = values
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[channel_of(i)]).round().clamp(-INT8_MAX, INT8_MAX) as i8)
        .collect();
    Some(Int8Weight { values, scales })
}

/// A bias in int32 at scale `input_scale * weight_scales[c]`: values and scales.
pub fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = weight_scales.iter().map(|s| s * input_scale).collect();
    let values = bias
        .iter()
        .zip(&scales)
        .map(|(b, s)| {
            (f64::from(*b) / f64::from(*s))
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32
        })
        .collect();
    (values, scales)
}

/// The uint8 quantization of an activation: `q = round(x / scale) + zero_point`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uint8Params {
    /// Step between two values.
    pub scale: f32,
    /// The value 0 maps to.
    pub zero_point: u8,
}

/// The uint8 quantization of the range `[lo, hi]`, widened to hold 0 (so that zero padding and
/// ReLU are exact). A range of one point gets a scale that keeps it exact.
pub fn uint8_params(lo: f32, hi: f32) -> Uint8Params {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return Uint8Params {
            scale: 1.0 / 255.0,
            zero_point: 0,
        };
    }
    let scale = span / 255.0;
    let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    Uint8Params { scale, zero_point }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_symmetric() {
        // Two output channels of two values each, axis 0.
        let q = quantize_per_channel(&[1.0, -0.5, 0.0, 0.0], &[2, 2], 0).unwrap();
        assert_eq!(q.scales, vec![1.0 / 127.0, 1.0]);
        assert_eq!(q.values, vec![127, -64, 0, 0]);
        // Axis 1 of a [2, 3] matrix: columns.
        let q = quantize_per_channel(&[1.0, 2.0, 4.0, -1.0, 1.0, 2.0], &[2, 3], 1).unwrap();
        assert_eq!(q.scales, vec![1.0 / 127.0, 2.0 / 127.0, 4.0 / 127.0]);
        assert_eq!(q.values, vec![127, 127, 127, -127, 64, 64]);
        assert!(quantize_per_channel(&[f32::NAN], &[1], 0).is_none());
    }

    #[test]
    fn activation_ranges_hold_zero() {
        let p = uint8_params(0.0, 2.55);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 0.01).abs() < 1e-7);
        // 0 lies at 63.75 steps above -1: the zero point is the nearest step. (Not -1..1, whose
        // 127.5 rounds either way by the last bit of the f32 scale.)
        let p = uint8_params(-1.0, 3.0);
        assert_eq!(p.zero_point, 64);
        // A range above 0 is widened to hold it.
        assert_eq!(uint8_params(1.0, 2.0).zero_point, 0);
        // A value that never changes (a dead channel, an empty chip) stays exact.
        assert_eq!(
            uint8_params(0.0, 0.0),
            Uint8Params {
                scale: 1.0 / 255.0,
                zero_point: 0
            }
        );
        assert_eq!(uint8_params(f32::NAN, 1.0).zero_point, 0);
    }

    #[test]
    fn bias_at_input_times_weight_scale() {
        let (q, s) = quantize_bias(&[1.0, -2.0], 0.5, &[0.1, 0.01]);
        assert_eq!(s, vec![0.05, 0.005]);
        assert_eq!(q, vec![20, -400]);
    }
}
