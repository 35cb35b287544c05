#!/usr/bin/env bash
# GPU runtime for `--device cuda`: the onnxruntime-gpu wheel's libraries and the CUDA 13 / cuDNN 9
# libraries it needs, from the nvidia-* wheels on PyPI, into .onnxruntime/gpu/ (nothing is
# installed into Python). Then build with `cargo build --release --features cuda` and run with
#   LD_LIBRARY_PATH=$PWD/.onnxruntime/gpu/cuda ORT_DYLIB_PATH=$PWD/.onnxruntime/gpu/lib/libonnxruntime.so \
#     target/release/classify-objects --device cuda ...
# Needs an NVIDIA driver for CUDA 13. Downloads about 1.5 GB.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=${ORT_GPU_VERSION:-1.31.1}
dest="$here/.onnxruntime/gpu"
mkdir -p "$dest/lib" "$dest/cuda"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
platform=(--only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64)
echo "setup-gpu: downloading onnxruntime-gpu==$version and the CUDA 13 wheels it names" >&2
python3 -m pip download --quiet --no-deps "${platform[@]}" -d "$tmp" "onnxruntime-gpu==$version"
python3 -m pip download --quiet "${platform[@]}" -d "$tmp" \
    "nvidia-cuda-runtime~=13.0" "nvidia-cuda-nvrtc~=13.0" "nvidia-cufft~=12.0" "nvidia-curand~=10.0" \
    "nvidia-cudnn-cu13~=9.0" "nvidia-cublas~=13.0"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
for wheel in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            base = os.path.basename(name)
            if ".so" not in base:
                continue
            if name.startswith("onnxruntime/capi/libonnxruntime"):
                target = os.path.join(dest, "lib", base)
            elif name.startswith("nvidia/") and "/lib/" in name:
                target = os.path.join(dest, "cuda", base)
            else:
                continue
            with z.open(name) as src, open(target + ".part", "wb") as out:
                out.write(src.read())
            os.replace(target + ".part", target)
print(f"setup-gpu: libraries in {dest}/lib and {dest}/cuda", file=sys.stderr)
PY
ln -sf "libonnxruntime.so.$version" "$dest/lib/libonnxruntime.so"
echo "setup-gpu: run with LD_LIBRARY_PATH=$dest/cuda ORT_DYLIB_PATH=$dest/lib/libonnxruntime.so ... --device cuda" >&2
