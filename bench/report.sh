#!/usr/bin/env bash
# Size and time of the --report page on a large run (run from anywhere):
#
#   bench/report.sh          # N=100000 points
#   N=1000000 bench/report.sh
#
# N points on valid pixels of fixtures/real/RGB.byte.tif (examples/make_points.rs, seeded) with a
# truth field that alternates two classes, so that about half the rows are misclassified (the
# worst case for the map, which outlines each of them), classified by the synthetic colour model
# (fast, so that the run is not dominated by the model). The run is made once without --report
# and once with it; the script prints the run's time, the time spent writing the report
# (`seconds.report` of --summary-json), the report's size and how that size splits between the
# map, the gallery pictures and the rest, and the peak memory of both runs.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
RASTER=fixtures/real/RGB.byte.tif
MODEL=fixtures/synthetic/colors.dlpk
work=bench/work
mkdir -p "$work"

scripts/setup.sh
cargo build --release --locked --quiet --bin classify-objects --example make_points
bin=target/release/classify-objects

points="$work/points_$N.gpkg"
[ -f "$points" ] || target/release/examples/make_points "$N" "$points" "$RASTER" >/dev/null
features="$work/points_${N}_truth.gpkg"
[ -f "$features" ] || ogr2ogr -f GPKG "$features" "$points" -nln points -dialect SQLite \
    -sql "SELECT *, CASE WHEN id % 2 = 0 THEN 'white' ELSE 'dark' END AS truth FROM points"

echo "bench: $(nproc) CPUs, $N points on $(basename "$RASTER"), model $(basename "$MODEL")"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
for report in without with; do
    extra=()
    if [ "$report" = with ]; then
        extra=(--report "$work/report_$N.html")
    fi
    started=$(date +%s.%N)
    "$bin" -r "$RASTER" -m "$MODEL" -f "$features" -o "$work/report_out.gpkg" --overwrite -q \
        --truth-field truth --summary-json "$work/report_summary.json" "${extra[@]}"
    ended=$(date +%s.%N)
    wall=$(python3 -c "print(f'{$ended - $started:.2f}')")
    peak=$(json "$work/report_summary.json" "round(d['peak_rss_bytes'] / 2**20)")
    if [ "$report" = with ]; then
        seconds=$(json "$work/report_summary.json" "f\"{d['seconds']['report']:.2f}\"")
        html="$work/report_$N.html"
        size=$(stat -c %s "$html")
        sizes=$(python3 - "$html" <<'EOF'
import re, sys
page = open(sys.argv[1]).read()
map_uri = sum(len(m) for m in re.findall(r'id="map"[^>]*src="([^"]*)"', page))
chips = re.findall(r'<figure class="chip[^"]*"[^>]*><img src="([^"]*)"', page)
chip_bytes = sum(len(c) for c in chips)
print(f"map {map_uri / 2**20:.2f} MiB, {len(chips)} gallery pictures {chip_bytes / 2**20:.2f} MiB, rest {(len(page) - map_uri - chip_bytes) / 2**10:.0f} KiB")
EOF
)
        echo "with --report:    run ${wall} s (report ${seconds} s of it), peak ${peak} MiB, report $(python3 -c "print(f'{$size / 2**20:.2f}')") MiB ($sizes)"
    else
        echo "without --report: run ${wall} s, peak ${peak} MiB"
    fi
done
