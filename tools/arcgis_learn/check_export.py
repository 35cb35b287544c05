"""Check tools/export_onnx.py end to end on a backbone classify-objects does not convert itself:

  1. make_reference.py builds a seeded FeatureClassifier package of that backbone with Esri's own
     code and records Esri's inference outputs on the six reference chips (plain and TTA);
  2. export_onnx.py turns the package into an ONNX package (Esri's from_model + torch.onnx.export);
  3. classify-objects runs the ONNX package on the same chips of the same raster, plain and with
     test_time_augmentation=True;
  4. labels must equal Esri's and confidences be within 1e-4, and the references must vary across
     the chips (else the check proves little).

Run inside the arcgis.learn environment (see README.md here), from the repository root:

  python tools/arcgis_learn/check_export.py --shim-dir ../shared/tools/arcgis_learn \\
      --program target/release/classify-objects [--backbone timm:swin_tiny_patch4_window7_224 --seed N --gain G]
      [--keep DIR]

--keep DIR writes the exported package (<name>.dlpk) and Esri's reference.json into DIR/<name>/:
that is how fixtures/arcgis_learn/fc_tf_mobilenetv3_small_minimal_export/ was made. Exit status 1
when a check fails.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOLERANCE = 1e-4
CHIP = 224

# The swin preset checks a transformer arcgis.learn builds on its own path; the tf_ MobileNetV3 is
# small enough (4 MB as ONNX) for its exported package to be committed for the Rust test.
PRESETS = {
    "fc_swin_tiny_export": {"backbone": "timm:swin_tiny_patch4_window7_224", "seed": 2028, "gain": 3.0},
    "fc_tf_mobilenetv3_small_minimal_export": {"backbone": "timm:tf_mobilenetv3_small_minimal_100",
                                               "seed": 2028, "gain": 4.0},
}


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, **kw)
    if done.returncode != 0:
        sys.exit(f"check_export.py: {os.path.basename(cmd[1] if cmd[0] == sys.executable else cmd[0])} "
                 f"failed (exit {done.returncode})")
    return done


def make_package(a, name, cfg, work):
    """Esri's seeded package and its reference.json (make_reference.py, --work keeps the .dlpk)."""
    out_root = os.path.join(work, "fixtures")
    run([sys.executable, os.path.join(HERE, "make_reference.py"), name, "--backbone", cfg["backbone"],
         "--mode", "single", "--seed", str(cfg["seed"]), "--gain", str(cfg["gain"]), "--shim-dir", a.shim_dir,
         "--train-raster", os.path.join(ROOT, "fixtures/real/dummy_fotomap_small.tif"),
         "--raster", os.path.join(ROOT, "fixtures/real/RGB.byte.tif"), "--out-root", out_root,
         "--work", os.path.join(work, "scratch")])
    dlpk = os.path.join(work, "scratch", name, "model", name, name + ".dlpk")
    with open(os.path.join(out_root, name, "reference.json")) as f:
        return dlpk, json.load(f)


def export(a, dlpk, out):
    """export_onnx.py as a user runs it, after the offline shim (no downloads, stub arcpy)."""
    shim = os.path.abspath(a.shim_dir)
    boot = ("import runpy, sys; sys.path[:0] = [%r, %r]; import offline_shim; "
            "sys.argv = ['export_onnx.py', %r, '-o', %r]; "
            "runpy.run_path(%r, run_name='__main__')") % (
        shim, os.path.join(shim, "arcpy_stub"), dlpk, out, os.path.join(ROOT, "tools", "export_onnx.py"))
    run([sys.executable, "-c", boot])


def chip_points(reference, path):
    """Points whose 224 px window (start at floor(centre - 112)) is each reference chip."""
    from osgeo import gdal

    gt = gdal.Open(os.path.join(ROOT, "fixtures/real/RGB.byte.tif")).GetGeoTransform()
    features = []
    for i, chip in enumerate(reference["chips"]):
        c, r = (v + CHIP / 2 + 0.5 for v in chip["window_col_row_width_height"][:2])
        x, y = gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]
        features.append({"type": "Feature", "properties": {"chip": i},
                         "geometry": {"type": "Point", "coordinates": [x, y]}})
    with open(path, "w") as f:
        json.dump({"type": "FeatureCollection",
                   "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32618"}},
                   "features": features}, f)


def classify(a, package, points, out, tta):
    run([a.program, "-r", os.path.join(ROOT, "fixtures/real/RGB.byte.tif"), "-m", package, "-f", points,
         "-o", out, "--model-arg", f"test_time_augmentation={tta}", "--overwrite"])
    with open(out, newline="") as f:
        return [(row["ClassLabel"], float(row["Confidence"].split(";")[0])) for row in csv.DictReader(f)]


def compare(reference, rows, tta):
    """Largest |confidence - Esri's|; a list of problems (labels, tolerance, too little variation)."""
    label_key, prob_key = ("tta_label", "tta_probabilities") if tta else ("label", "probabilities")
    problems, worst = [], 0.0
    chips = reference["chips"]
    for i, ((label, conf), chip) in enumerate(zip(rows, chips)):
        if label != chip[label_key]:
            problems.append(f"chip {i}: label {label!r}, Esri {chip[label_key]!r}")
        worst = max(worst, abs(conf - max(chip[prob_key])))
    if len(rows) != len(chips):
        problems.append(f"{len(rows)} rows for {len(chips)} chips")
    if worst > TOLERANCE:
        problems.append(f"max |confidence - Esri's| {worst:.3g} > {TOLERANCE}")
    if len({c[label_key] for c in chips}) < 2:
        problems.append(f"Esri's {label_key}s do not vary across the chips")
    return worst, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="fc_swin_tiny_export", help=f"a preset ({', '.join(PRESETS)}) or a new name")
    ap.add_argument("--backbone")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--gain", type=float)
    ap.add_argument("--shim-dir", required=True)
    ap.add_argument("--program", default=os.path.join(ROOT, "target", "release", "classify-objects"))
    ap.add_argument("--keep", help="write <name>/<name>.dlpk (the ONNX package) and reference.json here")
    a = ap.parse_args()
    cfg = dict(PRESETS.get(a.name, {"seed": 2021, "gain": 3.0}))
    for k in ("backbone", "seed", "gain"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    if "backbone" not in cfg:
        sys.exit(f"{a.name} is not a preset: give --backbone")
    work = tempfile.mkdtemp(prefix="check_export_")
    try:
        dlpk, reference = make_package(a, a.name, cfg, work)
        exported = os.path.join(work, a.name + ".dlpk")
        export(a, dlpk, exported)
        points = os.path.join(work, "chips.geojson")
        chip_points(reference, points)
        failed = False
        for tta in (False, True):
            rows = classify(a, exported, points, os.path.join(work, f"out_{tta}.csv"), tta)
            worst, problems = compare(reference, rows, tta)
            print(f"{a.name} ({cfg['backbone']}) exported, tta={tta}: labels {[r[0] for r in rows]}, "
                  f"max |Δ| vs Esri {worst:.2e}: {'ok' if not problems else 'FAILED'}")
            for p in problems:
                print("  " + p)
            failed |= bool(problems)
        if a.keep and not failed:
            keep = os.path.join(a.keep, a.name)
            os.makedirs(keep, exist_ok=True)
            shutil.copyfile(exported, os.path.join(keep, a.name + ".dlpk"))
            shutil.copyfile(os.path.join(work, "fixtures", a.name, "reference.json"),
                            os.path.join(keep, "reference.json"))
            print(f"kept {keep}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
