"""Check every size of every natively converted family against Esri's own network, and keep the
packages for the conversion benchmark (bench/RESULTS.md).

For each backbone: arcgis.learn builds FeatureClassifier(data, backbone=B) (random weights; every
BatchNorm's statistics and affine and every LayerNorm's affine randomised, so that none is the
identity), save() writes the package, `classify-objects convert` turns it into an ONNX package,
and ONNX Runtime runs that ONNX model on random chips next to Esri's PyTorch module on the same
chips: max |logit difference| must be <= 1e-4 x max(1, max |logit|).

The seeded packages in fixtures/arcgis_learn check the whole path (chips, TTA, labels) for one size
per family; this checks the other sizes' graphs (B1..B3, DenseNet-161/169/201, VGG-13/16/19,
ViT small/base/large/huge) where a committed fixture would be too heavy.

Run inside the arcgis.learn environment, from the repository root:

  python tools/arcgis_learn/check_sizes.py --shim-dir ../shared/tools/arcgis_learn \\
      --program target/release/classify-objects [--keep DIR] [BACKBONE ...]

--keep DIR leaves <name>.dlpk (arcgis.learn's package) in DIR. Exit status 1 when a check fails.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

DEFAULT = ["resnet18", "resnet50", "mobilenet_v2", "timm:efficientnet_b0", "timm:efficientnet_b1",
           "timm:efficientnet_b2", "timm:efficientnet_b3", "timm:mobilenetv3_large_100", "timm:densenet121",
           "timm:densenet161", "timm:densenet169", "timm:densenet201", "timm:vgg11_bn", "timm:vgg13_bn",
           "timm:vgg16_bn", "timm:vgg19_bn", "timm:deit_tiny", "timm:deit_small", "timm:deit_base",
           "timm:vit_large", "timm:vit_huge"]


def randomise_norms(model, torch):
    """Every BatchNorm's running statistics and affine, every LayerNorm's affine, drawn at random."""
    g = torch.Generator().manual_seed(7)

    def fill(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                fill(m.running_mean, -0.1, 0.1)
                fill(m.running_var, 0.5, 1.5)
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)):
                fill(m.weight, 0.75, 1.25)
                fill(m.bias, -0.1, 0.1)


def onnx_of(package):
    with zipfile.ZipFile(package) as z:
        name = [n for n in z.namelist() if n.endswith(".onnx")][0]
        return z.read(name)


def check(a, backbone, data, work, torch, np, ort, FeatureClassifier):
    name = "fc_" + backbone.replace("timm:", "").replace(":", "_")
    fc = FeatureClassifier(data, backbone=backbone)
    model = fc.learn.model.eval()
    randomise_norms(model, torch)
    folder = os.path.join(work, name)
    fc.save(folder, save_inference_file=False, save_html=False)
    dlpk = os.path.join(folder, name + ".dlpk")
    converted = os.path.join(work, name + "_onnx.dlpk")
    t = time.time()
    out = subprocess.run([a.program, "convert", dlpk, "-o", converted], capture_output=True, text=True)
    seconds = time.time() - t
    if out.returncode != 0:
        return name, f"convert failed: {out.stderr.strip()}"
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x).numpy()
    session = ort.InferenceSession(onnx_of(converted), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    worst = float(np.abs(got - want).max())
    scale = max(1.0, float(np.abs(want).max()))
    verdict = "ok" if worst <= 1e-4 * scale else "FAILED"
    packed = os.path.getsize(dlpk) / 1e6
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        shutil.copyfile(dlpk, os.path.join(a.keep, name + ".dlpk"))
    shutil.rmtree(folder, ignore_errors=True)
    os.remove(converted)
    return name, (f"{verdict}: max |Δ logits| {worst:.2e} (logits up to {scale:.3g}), "
                  f"convert {seconds:.1f} s, package {packed:.0f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backbones", nargs="*", default=DEFAULT)
    ap.add_argument("--shim-dir", required=True)
    ap.add_argument("--program", default=os.path.join(ROOT, "target", "release", "classify-objects"))
    ap.add_argument("--keep", help="keep each arcgis.learn package here")
    a = ap.parse_args()
    shim = os.path.abspath(a.shim_dir)
    sys.path[:0] = [HERE, shim, os.path.join(shim, "arcpy_stub")]
    import offline_shim  # noqa: F401  (before arcgis.learn: no downloads, stub arcpy)
    import numpy as np
    import onnxruntime as ort
    import torch
    import make_reference as mr
    from arcgis.learn import FeatureClassifier, prepare_data

    torch.manual_seed(0)
    torch.set_num_threads(2)
    work = tempfile.mkdtemp(prefix="check_sizes_")
    results = {}
    try:
        export = os.path.join(work, "export")
        mr.write_export(os.path.join(ROOT, "fixtures/real/dummy_fotomap_small.tif"), export, "single")
        data = prepare_data(export, chip_size=224, batch_size=4, val_split_pct=0.2, seed=7)
        for backbone in a.backbones:
            name, line = check(a, backbone, data, work, torch, np, ort, FeatureClassifier)
            results[backbone] = line
            print(f"{backbone:34s} {line}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    sys.exit(0 if all(v.startswith("ok") for v in results.values()) else 1)


if __name__ == "__main__":
    main()
