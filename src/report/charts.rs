//! The report's charts, as inline SVG written through maud's checked templates: the confidence
//! histogram with axes, ticks and a count over each bar, and the small per-class distribution.

use maud::{html, Markup};

use crate::report::read_back::{Distribution, BINS};

/// Fill of the histogram's bars.
pub const BAR_COLOR: [u8; 3] = [70, 130, 180];

fn rgb([r, g, b]: [u8; 3]) -> String {
    format!("rgb({r},{g},{b})")
}

/// A round step for about `ticks` ticks up to `max` (1, 2 or 5 times a power of ten).
pub fn tick_step(max: usize, ticks: usize) -> usize {
    let raw = (max as f64 / ticks.max(1) as f64).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    (step * magnitude).round() as usize
}

/// The histogram of `distribution`: bars over 0..1 with the count above each, confidence on the
/// x axis (ticks every 0.1), objects on the y axis.
pub fn histogram(distribution: &Distribution, id: &str) -> Markup {
    let (width, height) = (720.0, 280.0);
    let (left, right, top, bottom) = (64.0, 16.0, 24.0, 48.0);
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let highest = distribution.bins.iter().copied().max().unwrap_or(0).max(1);
    let step = tick_step(highest, 5);
    let y_max = highest.div_ceil(step) * step;
    let y = |n: usize| top + plot_h - plot_h * n as f64 / y_max as f64;
    let bar_w = plot_w / BINS as f64;
    html! {
        svg #(id) width=(width) height=(height) viewBox={"0 0 " (width) " " (height)} role="img"
            aria-label="histogram of confidences" font-family="sans-serif" font-size="12" {
            // Grid lines and y ticks.
            @for n in (0..=y_max).step_by(step) {
                line x1=(left) x2=(left + plot_w) y1=(y(n)) y2=(y(n)) stroke="#e3e6ea" {}
                text x=(left - 8.0) y=(y(n) + 4.0) text-anchor="end" fill="#444" { (n) }
            }
            @for (i, &n) in distribution.bins.iter().enumerate() {
                @let x = left + i as f64 * bar_w;
                rect class="bar" x=(x + 1.0) y=(y(n)) width=(bar_w - 2.0) height=(top + plot_h - y(n))
                    fill=(rgb(BAR_COLOR)) data-count=(n) {
                    title { (format!("{:.2}-{:.2}: {n}", i as f64 / BINS as f64, (i + 1) as f64 / BINS as f64)) }
                }
                @if n > 0 {
                    text x=(x + bar_w / 2.0) y=(y(n) - 4.0) text-anchor="middle" font-size="10" fill="#222" { (n) }
                }
            }
            // Axes.
            line x1=(left) x2=(left) y1=(top) y2=(top + plot_h) stroke="#222" {}
            line x1=(left) x2=(left + plot_w) y1=(top + plot_h) y2=(top + plot_h) stroke="#222" {}
            @for k in 0..=10 {
                @let x = left + plot_w * k as f64 / 10.0;
                line x1=(x) x2=(x) y1=(top + plot_h) y2=(top + plot_h + 5.0) stroke="#222" {}
                text x=(x) y=(top + plot_h + 18.0) text-anchor="middle" fill="#444" { (format!("{:.1}", k as f64 / 10.0)) }
            }
            text x=(left + plot_w / 2.0) y=(height - 6.0) text-anchor="middle" fill="#222" { "confidence" }
            text x="14" y=(top + plot_h / 2.0) text-anchor="middle" fill="#222"
                transform={"rotate(-90 14 " (top + plot_h / 2.0) ")"} { "objects" }
        }
    }
}

/// A small picture of one class's distribution over 0..1, in the class colour, scaled to its
/// fullest bin.
pub fn sparkline(distribution: &Distribution, color: [u8; 3]) -> Markup {
    let (width, height) = (200.0, 30.0);
    let highest = distribution.bins.iter().copied().max().unwrap_or(0).max(1);
    let bar_w = width / BINS as f64;
    html! {
        svg.sparkline width=(width) height=(height) viewBox={"0 0 " (width) " " (height)} role="img"
            aria-label="distribution of confidences from 0 to 1" {
            rect x="0" y="0" width=(width) height=(height) fill="#f3f4f6" {}
            @for (i, &n) in distribution.bins.iter().enumerate() {
                @if n > 0 {
                    @let h = (height - 2.0) * n as f64 / highest as f64;
                    rect x=(i as f64 * bar_w + 0.5) y=(height - h) width=(bar_w - 1.0) height=(h)
                        fill=(rgb(color)) stroke="#333" stroke-width="0.5" {
                        title { (format!("{:.2}-{:.2}: {n}", i as f64 / BINS as f64, (i + 1) as f64 / BINS as f64)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(1, 5), 1);
        assert_eq!(tick_step(7, 5), 2);
        assert_eq!(tick_step(23, 5), 5);
        assert_eq!(tick_step(480, 5), 100);
        assert_eq!(tick_step(100_000, 5), 20_000);
    }

    #[test]
    fn the_histogram_has_a_bar_per_bin_with_its_count() {
        let mut d = Distribution::default();
        for c in [0.97, 0.98, 0.99, 0.51] {
            d.add(c);
        }
        let svg = histogram(&d, "h").into_string();
        assert_eq!(svg.matches("class=\"bar\"").count(), BINS);
        assert!(svg.contains("data-count=\"3\""), "{svg}");
        assert!(svg.contains(">confidence</text>") && svg.contains(">objects</text>"));
        assert!(svg.contains(">0.5</text>") && svg.contains(">1.0</text>"), "x ticks");
    }
}
