#!/usr/bin/env bash
# Time and memory of runs on polygons with many vertices (run from anywhere):
#
#   bench/polygons.sh
#
# Two inputs on fixtures/real/RGB.byte.tif (examples/make_polygons.rs, seeded): one polygon of
# 1,000,000 vertices (radius 300 pixels), and 100,000 polygons of 1,000 vertices each (radius 4
# pixels; 10^8 vertices, a 1.6 GB GeoPackage). Each is classified by the synthetic colour model
# twice: with its own chip rules (fixed 32 x 32 chips round the envelope's centre) and packed
# with BlackenAroundFeature and a variable crop (every vertex matters: the chip is cut to the
# envelope and the pixels outside the polygon are blackened). Prints the wall time, the peak
# memory and the rows of each run.
set -euo pipefail
cd "$(dirname "$0")/.."

RASTER=fixtures/real/RGB.byte.tif
MODEL=fixtures/synthetic/colors.dlpk
CLASSES=red,green,blue,yellow,white,dark
work=bench/work
mkdir -p "$work"

scripts/setup.sh
cargo build --release --locked --quiet --bin classify-objects --example make_polygons
bin=target/release/classify-objects

blacken="$work/colors_blacken.dlpk"
"$bin" pack --onnx fixtures/synthetic/colors.onnx --classes "$CLASSES" --variable-crop \
    --blacken-around-feature -o "$blacken" --overwrite

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
echo "bench: $(nproc) CPUs, $(basename "$RASTER"), models $(basename "$MODEL") and $(basename "$blacken")"
for input in "1 1000000 300" "100000 1000 4"; do
    read -r n vertices radius <<<"$input"
    polygons="$work/polygons_${n}x${vertices}.gpkg"
    [ -f "$polygons" ] || target/release/examples/make_polygons "$n" "$vertices" "$radius" "$polygons" "$RASTER" >/dev/null
    for model in "$MODEL" "$blacken"; do
        started=$(date +%s.%N)
        "$bin" -r "$RASTER" -m "$model" -f "$polygons" -o "$work/polygons_out.gpkg" --overwrite -q \
            --summary-json "$work/polygons_summary.json"
        ended=$(date +%s.%N)
        wall=$(python3 -c "print(f'{$ended - $started:.2f}')")
        peak=$(json "$work/polygons_summary.json" "round(d['peak_rss_bytes'] / 2**20)")
        rows=$(json "$work/polygons_summary.json" "d['objects']")
        echo "$n polygon(s) x $vertices vertices, $(basename "$model"): ${wall} s, peak ${peak} MiB, $rows rows"
    done
done
