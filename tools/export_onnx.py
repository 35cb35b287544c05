"""Export an arcgis.learn FeatureClassifier package (.dlpk or .emd + .pth) to an ONNX package that
classify-objects runs without Python: for every backbone classify-objects does not convert itself.

Run it inside the Python that trained the model (ArcGIS Pro's Python environment, or any
environment with arcgis.learn, fastai and torch):

    python export_onnx.py MODEL.dlpk -o MODEL_onnx.dlpk

What it does:
  1. loads the package with Esri's own FeatureClassifier.from_model (the network exactly as
     arcgis.learn builds it for inference, with the package's weights), in eval mode;
  2. exports that network with torch.onnx.export: input "image" [batch, bands, ImageHeight,
     ImageWidth] (float32, normalised as arcgis.learn normalises chips), output "logits"
     [batch, classes], batch dynamic, opset 17. The activation (softmax or sigmoid) is left to
     classify-objects, which decides it from MetaDataMode as for the packages it converts;
  3. checks the ONNX model against the PyTorch model on random chips when onnxruntime is
     installed (--no-check skips it);
  4. writes the ONNX package: the .emd with every key kept, "ModelFile" pointing at the .onnx and a
     "ConvertedFrom" record (as `classify-objects convert` writes), the .onnx, and the package's
     other files except the .pth.

Nothing is downloaded and the input package is not changed. Exit status 2 on bad input.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import zipfile

EXIT_INPUT = 2
OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def fail(message):
    print(f"export_onnx.py: error: {message}", file=sys.stderr)
    sys.exit(EXIT_INPUT)


def unpack(package, work):
    """The .emd to load: the package's, unzipped into `work` (a .dlpk), or the .emd itself."""
    if package.lower().endswith(".emd"):
        return package
    if not zipfile.is_zipfile(package):
        fail(f"{package} is neither a .dlpk (zip) nor an .emd")
    with zipfile.ZipFile(package) as z:
        names = z.namelist()
        for name in names:
            target = os.path.realpath(os.path.join(work, name))
            if not target.startswith(os.path.realpath(work) + os.sep):
                fail(f"{package} has an entry that leaves the package ({name!r})")
        z.extractall(work)
    emds = [n for n in names if n.lower().endswith(".emd")]
    if len(emds) != 1:
        fail(f"{package} holds {len(emds)} .emd files; a FeatureClassifier package holds one")
    return os.path.join(work, emds[0])


def read_definition(emd_path, shown):
    """The .emd as JSON, checked to be a FeatureClassifier with PyTorch weights; `shown` names it."""
    try:
        with open(emd_path, encoding="utf-8-sig") as f:
            emd = json.load(f)
    except (OSError, ValueError) as err:
        fail(f"{shown} cannot be read as JSON ({err})")
    if emd.get("ModelConfiguration") not in ("_FeatureClassifier", "FeatureClassifier"):
        fail(f"{shown} is a {emd.get('ModelConfiguration')!r} model, not an arcgis.learn FeatureClassifier")
    if not str(emd.get("ModelFile", "")).lower().endswith(".pth"):
        fail(f"{shown} names ModelFile {emd.get('ModelFile')!r}, not PyTorch weights: nothing to export")
    return emd


def load_network(emd_path):
    """The network of Esri's FeatureClassifier for the package, in eval mode on the CPU."""
    import torch
    from arcgis.learn import FeatureClassifier

    classifier = FeatureClassifier.from_model(emd_path)
    return classifier.learn.model.to(torch.device("cpu")).float().eval()


def example_input(emd):
    """A batch of two random chips of the package's size and band count."""
    import torch

    bands = len(emd.get("ExtractBands") or [0, 1, 2])
    height, width = int(emd["ImageHeight"]), int(emd["ImageWidth"])
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, bands, height, width, generator=generator)


def export(model, x, onnx_path):
    """torch.onnx.export with a dynamic batch, the TorchScript exporter where torch has both."""
    import inspect

    import torch

    kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=OPSET,
                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                  do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the dynamo exporter needs onnxscript, which Pro does not ship
    with torch.no_grad():
        torch.onnx.export(model, (x,), onnx_path, **kwargs)


def check(model, x, onnx_path, classes):
    """The ONNX model's logits against PyTorch's on `x` (and on one chip: the batch is dynamic)."""
    try:
        import onnxruntime
    except ImportError:
        print("note: onnxruntime is not installed: the exported model was not run (pip install onnxruntime to check it)")
        return
    import numpy as np
    import torch

    with torch.no_grad():
        want = model(x).numpy()
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    one = session.run([OUTPUT_NAME], {INPUT_NAME: x[:1].numpy()})[0]
    if got.shape != (x.shape[0], classes):
        fail(f"the exported model outputs {got.shape}, not [batch, {classes}]")
    worst = max(float(np.abs(got - want).max()), float(np.abs(one - want[:1]).max()))
    scale = max(1.0, float(np.abs(want).max()))
    if worst > 1e-3 * scale:
        fail(f"the exported model's logits differ from PyTorch's by {worst:.3g}; the network does not export faithfully")
    print(f"checked: ONNX Runtime {onnxruntime.__version__} gives PyTorch's logits within {worst:.2e}")


def converted_definition(emd, onnx_name, backbone, parameters):
    """The .emd with ModelFile pointing at the .onnx and a ConvertedFrom record; every key kept."""
    import torch

    out = dict(emd)
    out["ModelFile"] = onnx_name
    out["ConvertedFrom"] = {
        "ModelFile": emd["ModelFile"],
        "Format": "PyTorch state_dict (arcgis.learn FeatureClassifier)",
        "Backbone": backbone,
        "Parameters": parameters,
        "Outputs": OUTPUT_NAME,
        "Converter": f"tools/export_onnx.py (torch {torch.__version__}, opset {OPSET})",
    }
    return json.dumps(out, indent=2) + "\n"


def write_package(output, emd_text, emd_name, onnx_path, onnx_name, package, skip):
    """The ONNX .dlpk, written beside the output and renamed over it once complete."""
    partial = output + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(emd_name, emd_text)
        z.write(onnx_path, onnx_name)
        if package.lower().endswith(".dlpk"):
            with zipfile.ZipFile(package) as src:
                for info in src.infolist():
                    if info.filename not in skip and not info.is_dir():
                        z.writestr(info, src.read(info.filename))
    os.replace(partial, output)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", help="the FeatureClassifier package (.dlpk, or .emd beside its .pth)")
    ap.add_argument("-o", "--output", required=True, help="the ONNX package to write (.dlpk)")
    ap.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    ap.add_argument("--no-check", action="store_true", help="do not run the exported model with onnxruntime")
    a = ap.parse_args()
    if not os.path.exists(a.package):
        fail(f"{a.package} does not exist")
    if os.path.exists(a.output) and not a.overwrite:
        fail(f"{a.output} already exists; pass --overwrite to replace it")
    if not a.output.lower().endswith(".dlpk"):
        fail(f"{a.output}: the output is a package, name it .dlpk")
    work = tempfile.mkdtemp(prefix="export_onnx_")
    try:
        emd_path = unpack(a.package, work)
        shown = emd_path if emd_path == a.package else f"{a.package}!{os.path.relpath(emd_path, work)}"
        emd = read_definition(emd_path, shown)
        model = load_network(emd_path)
        x = example_input(emd)
        stem = os.path.splitext(os.path.basename(emd["ModelFile"]))[0]
        onnx_name = stem + ".onnx"
        onnx_path = os.path.join(work, onnx_name)
        export(model, x, onnx_path)
        if not a.no_check:
            check(model, x, onnx_path, len(emd.get("Classes", [])))
        backbone = (emd.get("ModelParameters") or {}).get("backbone", "")
        parameters = sum(p.numel() for p in model.parameters())
        folder = os.path.relpath(os.path.dirname(emd_path), work) if emd_path.startswith(work) else ""
        inside = (lambda n: n) if folder in ("", ".") else (lambda n: f"{folder}/{n}")
        emd_name = inside(os.path.basename(emd_path))
        text = converted_definition(emd, onnx_name, backbone, parameters)
        skip = {emd_name, inside(emd["ModelFile"]), inside(onnx_name)}
        write_package(a.output, text, emd_name, onnx_path, inside(onnx_name), a.package, skip)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {a.output}: {backbone or 'FeatureClassifier'} as ONNX ({onnx_name}, opset {OPSET}, logits); "
          f"run it with: classify-objects -m {a.output} ...")


if __name__ == "__main__":
    main()
