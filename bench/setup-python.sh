#!/usr/bin/env bash
# The Python baseline's environment: Debian's GDAL bindings (python3-gdal, the same GDAL as
# classify-objects uses) plus onnxruntime and rasterio from PyPI, in bench/.venv.
set -euo pipefail
cd "$(dirname "$0")"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! /usr/bin/python3 -c "import osgeo, venv" 2>/dev/null; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-gdal python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime, rasterio, osgeo" 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --quiet "onnxruntime==1.32.0" "rasterio==1.4.4"
fi
