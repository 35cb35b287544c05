//! The six classes of the synthetic fixtures: name and colour (RGB, 0-255). Shared by the
//! fixture generator (`examples/make_fixtures.rs`) and the tests.

/// Patch (row, col) of `fixtures/synthetic/colors.tif` has colour `PALETTE[(4 row + col) % 6]`.
pub const PALETTE: [(&str, [u8; 3]); 6] = [
    ("red", [200, 30, 30]),
    ("green", [30, 160, 60]),
    ("blue", [40, 70, 200]),
    ("yellow", [230, 210, 40]),
    ("white", [235, 235, 235]),
    ("dark", [40, 40, 40]),
];
