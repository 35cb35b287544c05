#!/usr/bin/env bash
# Progress and stops of a slow model (run from anywhere):
#
#   bench/progress.sh PACKAGE.dlpk [FEATURES] [SECONDS]
#
# Classifies FEATURES (default: the first 300 of fixtures/real/RGB.byte.bench_points_2000.gpkg)
# on fixtures/real/RGB.byte.tif with PACKAGE and test-time augmentation, --progress-interval 2,
# into a --resume output, and sends SIGTERM after SECONDS (default 30). Prints when the first
# progress line came, the progress lines, the objects scored by the last line before the signal,
# the rows the stopped run kept, and the work lost in seconds at the run's own speed. The
# package is one the user holds, e.g. a ResNet-34 FeatureClassifier from arcgis.learn.
set -euo pipefail
cd "$(dirname "$0")/.."

package=${1:?usage: bench/progress.sh PACKAGE.dlpk [FEATURES] [SECONDS]}
features=${2:-}
seconds=${3:-30}
RASTER=fixtures/real/RGB.byte.tif
work=bench/work
mkdir -p "$work"

scripts/setup.sh
cargo build --release --locked --quiet --bin classify-objects
bin=target/release/classify-objects

if [ -z "$features" ]; then
    features="$work/points_300.gpkg"
    [ -f "$features" ] || ogr2ogr -f GPKG -limit 300 "$features" fixtures/real/RGB.byte.bench_points_2000.gpkg
fi
out="$work/progress_out.gpkg"
rm -f "$out" "$work"/.progress_out*
log="$work/progress.log"

echo "bench: $(nproc) CPUs, $(basename "$package") with test-time augmentation, SIGTERM after ${seconds} s"
started=$(date +%s.%N)
"$bin" -r "$RASTER" -m "$package" -f "$features" -o "$out" --resume --progress-interval 2 \
    --model-arg test_time_augmentation=true 2>"$log" &
pid=$!
# The first progress line, timed from the start.
until grep -q "progress:" "$log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
first=$(date +%s.%N)
sleep "$(python3 -c "print(max(0.0, $seconds - ($first - $started)))")"
kill -TERM "$pid"
set +e
wait "$pid"
status=$?
set -e
grep "progress:" "$log" || true
partial=$(ls "$work"/.progress_out*.gpkg 2>/dev/null | head -1 || true)
kept=0
[ -n "$partial" ] && kept=$(ogrinfo -so -al "$partial" | sed -n 's/^Feature Count: //p')
[ -f "$out" ] && kept=$(ogrinfo -so -al "$out" | sed -n 's/^Feature Count: //p')
python3 - "$log" "$started" "$first" "$status" "$kept" <<'EOF'
import re, sys
log, started, first, status, kept = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lines = [l for l in open(log) if "progress:" in l]
done, rate = 0, 0.0
for l in lines:
    m = re.search(r"progress: (\d+)/\d+ objects .*?, ([\d.]+) objects/s", l)
    if m:
        done, rate = int(m.group(1)), float(m.group(2))
print(f"first progress line after {first - started:.1f} s; exit status {status}")
print(f"scored by the last line: {done}; kept: {kept}; lost: {max(0, done - kept)} objects"
      f" = {max(0, done - kept) / rate if rate else 0:.1f} s of work at {rate} objects/s")
EOF
