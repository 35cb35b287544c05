#!/usr/bin/env bash
# Large-imagery benchmark (issue #12): a SIZE x SIZE JPEG COG, POINTS features in random order
# and a near-free 224 x 224 model, so that reading and decoding chips is the work measured.
# Run from anywhere: `bench/large.sh` (or `make bench-large`).
#
#   material   examples/make_large_raster (deterministic): the raster (turned into a COG with
#              512 x 512 JPEG tiles, no overviews), the points, the model (packed with `pack`)
#   limit      decoding every block once (gdalinfo -checksum, one core, cache large enough),
#              spread over the cores, plus the copies: the same run on an uncompressed tiled
#              copy of the raster (chips cut, normalised, scored, written; nothing decoded)
#   rounds     in each of ROUNDS interleaved rounds: classify-objects with an unlimited block
#              cache (GDAL_CACHEMAX=8192 MB), with --block-cache 64, with the default (256 MB),
#              and the two Python peers of bench/baseline.py (GDAL and rasterio windowed reads
#              clipped to the raster), each with GDAL_CACHEMAX=64 and with GDAL's default cache,
#              same model, batch and ONNX Runtime threads
#
# Prints every round's seconds and peak memory, then the medians and the ratios the issue sets.
# Environment: SIZE (16384), POINTS (20000), ROUNDS (3), BATCH (16), THREADS (2), PEERS (the
# Python peers: "gdal rasterio_clipped"; "" for none; add "rasterio" for rasterio's boundless
# reads, which take minutes here).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-16384}
POINTS=${POINTS:-20000}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-16}
THREADS=${THREADS:-2}
PEERS=${PEERS-gdal rasterio_clipped}
work=bench/work/large
mkdir -p "$work"

scripts/setup.sh
bench/setup-python.sh
cargo build --release --locked --quiet --bin classify-objects --example make_large_raster
bin=target/release/classify-objects
py=bench/.venv/bin/python

cog="$work/cog_${SIZE}.tif"
plain="$work/plain_${SIZE}.tif"
points="$work/points_${SIZE}_${POINTS}.gpkg"
if [ ! -f "$cog" ] || [ ! -f "$points" ]; then
    target/release/examples/make_large_raster "$SIZE" "$work/src.tif" points "$POINTS" "$points" "$work/model.onnx"
    gdal_translate -q -of COG -co COMPRESS=JPEG -co BLOCKSIZE=512 -co OVERVIEWS=NONE -co BIGTIFF=IF_NEEDED "$work/src.tif" "$cog"
    gdal_translate -q -co TILED=YES -co BLOCKXSIZE=512 -co BLOCKYSIZE=512 -co BIGTIFF=IF_NEEDED "$work/src.tif" "$plain"
    rm -f "$work/src.tif"
fi
model="$work/model.dlpk"
"$bin" pack --onnx "$work/model.onnx" --classes a,b,c,d --model-name near_free -o "$model" --overwrite 2>/dev/null

decoded=$(( SIZE * SIZE * 3 / 1048576 ))
echo "bench: $(nproc) CPUs, ${SIZE}x${SIZE} JPEG COG ($(( $(stat -c %s "$cog") / 1048576 )) MB compressed, ${decoded} MB decoded), $POINTS points in random order, batch $BATCH, $THREADS ONNX Runtime threads, $ROUNDS rounds"

seconds() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['seconds']['total'], d['peak_rss_bytes'])" "$1"; }
run() { # NAME ENV... -- ARGS...: one classify-objects run, prints "NAME seconds peak_rss"
    local name=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$bin" -m "$model" -o "$work/out.gpkg" --overwrite -q --model-arg "batch_size=$BATCH" \
        --intra-op-threads "$THREADS" --summary-json "$work/summary.json" "$@"
    echo "$name $(seconds "$work/summary.json")"
}

results="$work/large.tsv"
: >"$results"
# Both files in the page cache first: the runs measure decoding, not the disk.
cat "$cog" "$plain" >/dev/null
# The limit: decode once (one core), and the copies (the same run on uncompressed tiles).
start=$(date +%s.%N)
GDAL_CACHEMAX=8192 gdalinfo -checksum "$cog" >/dev/null
decode=$(python3 -c "print($(date +%s.%N) - $start)")
echo "decode_once_one_core $decode 0" | tee -a "$results"
run copies_uncompressed GDAL_CACHEMAX=8192 -- -r "$plain" -f "$points" | tee -a "$results"
for round in $(seq 1 "$ROUNDS"); do
    run unlimited_cache GDAL_CACHEMAX=8192 -- -r "$cog" -f "$points" | tee -a "$results"
    run cache_64mb X=1 -- -r "$cog" -f "$points" --block-cache 64 | tee -a "$results"
    run default_cache X=1 -- -r "$cog" -f "$points" | tee -a "$results"
    for reader in $PEERS; do
        # Each peer twice: with the same 64 MB block cache as --block-cache 64 (the matched
        # comparison), and with GDAL's default cache (5 % of RAM here, most of this raster).
        for cache in 64mb default; do
            envs=(X=1)
            suffix=""
            if [ "$cache" = 64mb ]; then envs=(GDAL_CACHEMAX=64); suffix=_64mb; fi
            start=$(date +%s.%N)
            env "${envs[@]}" /usr/bin/time -f "%M" -o "$work/python_rss" "$py" bench/baseline.py "$cog" "$model" "$points" "$work/python.csv" "$BATCH" "$THREADS" "$reader" >/dev/null
            took=$(python3 -c "print($(date +%s.%N) - $start)")
            echo "python_$reader$suffix $took $(( $(cat "$work/python_rss") * 1024 ))" | tee -a "$results"
        done
    done
done

python3 - "$results" "$(nproc)" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, seconds, rss = line.split()
    runs[name].append((float(seconds), int(rss)))
cores = int(sys.argv[2])
med = lambda name: statistics.median(s for s, _ in runs[name])
peak = lambda name: max(r for _, r in runs[name]) / 2**20
print()
names = ["unlimited_cache", "cache_64mb", "default_cache"]
names += [f"python_{r}{c}" for r in ["gdal", "rasterio_clipped", "rasterio"] for c in ["_64mb", ""]]
for name in [n for n in names + ["copies_uncompressed"] if n in runs]:
    seconds = [s for s, _ in runs[name]]
    print(f"{name:<22} median {med(name):7.2f} s (min {min(seconds):.2f}, max {max(seconds):.2f}), peak RSS {peak(name):6.0f} MB")
limit = med("decode_once_one_core") / cores + med("copies_uncompressed")
print(f"{'decode-once limit':<22} {limit:7.2f} s ({med('decode_once_one_core'):.2f} s decoding on one core / {cores} cores + {med('copies_uncompressed'):.2f} s of copies)")
print()
print(f"64 MB cache / unlimited cache, throughput       {med('unlimited_cache') / med('cache_64mb'):.2f}   (target >= 0.8)")
print(f"default peak RSS                                {peak('default_cache'):.0f} MB (target <= 600)")
if any(n.startswith("python_") for n in runs):
    best_matched = min(med(n) for n in runs if n.startswith("python_") and n.endswith("_64mb"))
    best_default = min(med(n) for n in runs if n.startswith("python_") and not n.endswith("_64mb"))
    print(f"speed-up, both with a 64 MB block cache         {best_matched / med('cache_64mb'):.1f}x (target >= 6)")
    print(f"speed-up, both with their default caches        {best_default / med('default_cache'):.1f}x (target >= 6)")
print(f"default run / decode-once limit                 {med('default_cache') / limit:.2f}   (target <= 1.5)")
print(f"64 MB run / decode-once limit                   {med('cache_64mb') / limit:.2f}")
PY
