#!/usr/bin/env bash
# Seconds and peak memory of converting arcgis.learn FeatureClassifier packages (.pth -> ONNX), one
# line per package, as bench/RESULTS.md lists them. Each package is measured by
# examples/convert_bench.rs (fresh process per round: open the .dlpk, inflate the .pth, read the
# state_dict, detect the network, write the ONNX model; peak RSS from VmHWM) and the median of
# ROUNDS rounds is printed as a markdown row.
#
#   bench/convert.sh DIR [ROUNDS]     DIR: .dlpk packages as arcgis.learn saves them, e.g. the ones
#                                     tools/arcgis_learn/check_sizes.py --keep DIR leaves (default 3 rounds)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: bench/convert.sh DIR [ROUNDS]}
rounds=${2:-3}
cd "$here"
nice -n 10 cargo build --release --example convert_bench >/dev/null 2>&1
bench="$here/target/release/examples/convert_bench"

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

echo "| package | backbone | .pth MB | ONNX MB | open + inflate + convert (median s) | of which .pth -> ONNX (s) | peak RSS MB | peak over before / .pth |"
echo "|---|---|---|---|---|---|---|---|"
for package in "$dir"/*.dlpk; do
    out=$("$bench" "$package" "$rounds")
    first=$(head -1 <<<"$out")
    median=$(tail -1 <<<"$out")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$(basename "$package" .dlpk)" "$(field "$first" backbone)" "$(field "$first" pth_mb)" \
        "$(field "$first" onnx_mb)" "$(field "$median" open_and_convert_s)" "$(field "$median" convert_s)" \
        "$(field "$median" peak_rss_mb)" "$(field "$median" peak_over_before_per_pth)x"
done
