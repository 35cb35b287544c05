#!/usr/bin/env bash
# Installs what classify-objects needs to build and run, and nothing else:
#   * GDAL development files (Debian: libgdal-dev gdal-bin pkg-config), if `pkg-config gdal` fails;
#   * the ONNX Runtime shared library, taken from the PyPI `onnxruntime` wheel, into
#     .onnxruntime/lib/ inside the project (the program looks there, see README "ONNX Runtime library"),
#     with its licence and third-party notices in .onnxruntime/licenses/ (shipped by make install/dist).
# Safe to run repeatedly: every step is skipped when its result is already present.
# Environment: ORT_VERSION (default 1.32.0), ORT_WHEEL (use a wheel already downloaded),
#              CLASSIFY_OBJECTS_GPU=1 (also fetch onnxruntime-gpu + CUDA wheels, see scripts/setup-gpu.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ort_version=${ORT_VERSION:-1.32.0}
ort_dir="$here/.onnxruntime/lib"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

log() { printf 'setup: %s\n' "$*" >&2; }

install_gdal() {
    if pkg-config --exists gdal 2>/dev/null && command -v ogrinfo >/dev/null 2>&1; then
        log "GDAL $(pkg-config --modversion gdal) already installed"
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "GDAL is missing and this is not a Debian/Ubuntu system: install GDAL >= 3.4 development files and pkg-config, then rerun"
        exit 1
    fi
    log "installing GDAL (libgdal-dev gdal-bin pkg-config) with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libgdal-dev gdal-bin pkg-config >/dev/null
    log "GDAL $(pkg-config --modversion gdal) installed"
}

install_onnxruntime() {
    local lib="$ort_dir/libonnxruntime.so.$ort_version"
    local licenses="$here/.onnxruntime/licenses"
    if [ -f "$lib" ] && [ -f "$licenses/ThirdPartyNotices.txt" ]; then
        log "ONNX Runtime $ort_version already in $ort_dir"
        return
    fi
    local python
    python=$(command -v python3 || true)
    [ -n "$python" ] || { log "python3 with pip is needed to download the onnxruntime wheel"; exit 1; }
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    local wheel=${ORT_WHEEL:-}
    if [ -z "$wheel" ]; then
        log "downloading onnxruntime==$ort_version from PyPI (wheel only, nothing is installed into Python)"
        "$python" -m pip download --quiet --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux_2_17_x86_64 --python-version 3.11 \
            "onnxruntime==$ort_version" -d "$tmp"
        wheel=$(ls "$tmp"/onnxruntime-*.whl)
    fi
    mkdir -p "$ort_dir" "$licenses"
    "$python" - "$wheel" "$ort_dir" "$licenses" <<'PY'
import sys, zipfile, os
wheel, dest, licenses = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime")]
    if not names:
        sys.exit(f"no libonnxruntime in {wheel}")
    texts = [n for n in z.namelist() if n in ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt")]
    for n in names + texts:
        target = os.path.join(licenses if n in texts else dest, os.path.basename(n))
        with z.open(n) as src, open(target + ".part", "wb") as out:
            out.write(src.read())
        os.replace(target + ".part", target)
        print("setup: extracted", target, file=sys.stderr)
PY
    ln -sf "libonnxruntime.so.$ort_version" "$ort_dir/libonnxruntime.so"
}

install_test_tools() {
    # Headless Chromium renders the HTML report in the tests; a one-node Slurm runs the
    # scale-out recipe (tests/slurm.rs, started by scripts/slurm.sh).
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
    command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
    command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]} (Debian packages) for the tests"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_gdal
install_onnxruntime
if [ "${1:-}" = "--test" ]; then
    install_test_tools
fi
if [ "${CLASSIFY_OBJECTS_GPU:-0}" = "1" ]; then
    "$here/scripts/setup-gpu.sh"
fi
