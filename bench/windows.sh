#!/usr/bin/env bash
# Windows sized by speed (issue #23.3) against another build (run from anywhere):
#
#   bench/windows.sh OTHER_BINARY
#
# OTHER_BINARY is classify-objects built from another commit (e.g. a worktree at the commit
# before the change, `cargo build --release` with its own CARGO_TARGET_DIR). Runs both builds in
# ROUNDS interleaved rounds on two fast workloads, where the locality order of the windows is
# what counts:
#   reading   a SIZE x SIZE JPEG COG (examples/make_large_raster, 512 x 512 tiles), POINTS
#             points in random order, a near-free 224 x 224 model: reading and decoding chips
#   model     the real raster and its 2,000 points with the real model (PaddleOCR's text
#             direction classifier), batch 16
# Prints each run's seconds and the median ratio (this build / the other) per workload.
# Environment: SIZE (8192), POINTS (20000), ROUNDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

other=${1:?usage: bench/windows.sh OTHER_BINARY}
SIZE=${SIZE:-8192}
POINTS=${POINTS:-20000}
ROUNDS=${ROUNDS:-5}
work=bench/work/windows
mkdir -p "$work"

scripts/setup.sh
cargo build --release --locked --quiet --bin classify-objects --example make_large_raster
bin=target/release/classify-objects

cog="$work/cog_${SIZE}.tif"
points="$work/points_${SIZE}_${POINTS}.gpkg"
if [ ! -f "$cog" ] || [ ! -f "$points" ]; then
    target/release/examples/make_large_raster "$SIZE" "$work/src.tif" points "$POINTS" "$points" "$work/model.onnx"
    gdal_translate -q -of COG -co COMPRESS=JPEG -co BLOCKSIZE=512 -co OVERVIEWS=NONE "$work/src.tif" "$cog"
    rm -f "$work/src.tif"
fi
model="$work/model.dlpk"
"$bin" pack --onnx "$work/model.onnx" --classes a,b,c,d --model-name near_free -o "$model" --overwrite 2>/dev/null

seconds() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds']['total'])" "$1"; }
run() { # BINARY WORKLOAD: prints the run's seconds
    local binary=$1 workload=$2 args
    case $workload in
        reading) args=(-r "$cog" -m "$model" -f "$points" --model-arg batch_size=16) ;;
        model) args=(-r fixtures/real/RGB.byte.tif -m fixtures/real/textline_cls.dlpk
            -f fixtures/real/RGB.byte.bench_points_2000.gpkg --model-arg batch_size=16) ;;
    esac
    "$binary" "${args[@]}" -o "$work/out.gpkg" --overwrite -q --summary-json "$work/summary.json"
    seconds "$work/summary.json"
}

echo "bench: $(nproc) CPUs, this build ($bin) against $other, $ROUNDS interleaved rounds"
for workload in reading model; do
    ratios=()
    for round in $(seq "$ROUNDS"); do
        mine=$(run "$bin" "$workload")
        theirs=$(run "$other" "$workload")
        ratio=$(python3 -c "print(f'{$mine / $theirs:.3f}')")
        ratios+=("$ratio")
        echo "$workload round $round: this ${mine} s, other ${theirs} s, ratio $ratio"
    done
    echo "$workload median ratio (this / other): $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p")"
done
