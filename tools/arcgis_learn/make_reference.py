"""Make a seeded arcgis.learn FeatureClassifier package with Esri's own code and write its small
reference files into fixtures/arcgis_learn/<name>/ (see README.md in this folder).

  1. a small training export ("Export Training Data For Deep Learning" layout) from a raster;
  2. arcgis.learn prepare_data -> FeatureClassifier(backbone=...) (no training);
  3. every state_dict tensor replaced by the seeded-weights spec (seeded_weights.py), strict load;
  4. FeatureClassifier.save(name, save_inference_file=False, save_html=False): <name>.emd + .pth;
  5. Esri's inference path (ArcGISObjectClassifier raster function, driven as ArcGIS Pro drives it)
     on fixed 224 x 224 windows of a raster, plain and with test-time augmentation;
  6. writes <name>.emd (verbatim), layout.json, fingerprint.json, reference.json, and checks that
     the outputs vary across the chips and that pth_writer.py rebuilds the .pth byte for byte.

usage:
  python make_reference.py NAME --shim-dir DIR --train-raster TIF --raster TIF --out-root DIR
                           [--backbone B --mode single|multi --seed N --gain G] [--windows "c,r ..."]
                           [--work DIR] [--threads 2] [--extra-threshold 0.3]
NAME is one of the presets below (backbone/mode/seed/gain can still be overridden) or any new
name with --backbone, --mode and --seed (--gain defaults to 3). --shim-dir is the folder holding offline_shim.py and
arcpy_stub/ (../shared/tools/arcgis_learn in this project's layout).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

PRESETS = {
    "fc_resnet18_seeded": {"backbone": "resnet18", "mode": "single", "seed": 2021, "gain": 3.0},
    "fc_resnet50_multilabel_seeded": {"backbone": "resnet50", "mode": "multi", "seed": 2035, "gain": 3.0},
    "fc_efficientnet_b0_seeded": {"backbone": "timm:efficientnet_b0", "mode": "single", "seed": 2021,
                                  "gain": 6.75},
    "fc_mobilenet_v2_seeded": {"backbone": "mobilenet_v2", "mode": "single", "seed": 2058, "gain": 4.0},
    "fc_mobilenetv3_large_seeded": {"backbone": "timm:mobilenetv3_large_100", "mode": "single", "seed": 2035,
                                    "gain": 4.0},
    "fc_densenet121_seeded": {"backbone": "timm:densenet121", "mode": "single", "seed": 2022, "gain": 4.0},
    "fc_vgg11_bn_seeded": {"backbone": "timm:vgg11_bn", "mode": "single", "seed": 2025, "gain": 4.0},
    "fc_deit_tiny_seeded": {"backbone": "timm:deit_tiny", "mode": "single", "seed": 2024, "gain": 3.0},
}
DEFAULT_WINDOWS = "546,0 567,95 231,114 483,152 210,171 147,152"

# Training-export presets. Class values/names as in ../shared's make_export.py presets, so that the
# model's class order (Python sort of the names) differs from value order and from a
# case-insensitive order: single -> Built-up, Vegetation, Water, bare_soil.
EXPORTS = {
    "single": {"mode": "Labeled_Tiles", "space": "MAP_SPACE",
               "classes": [(1, "Vegetation", [56, 168, 0]), (2, "Water", [0, 92, 230]),
                           (3, "bare_soil", [205, 170, 102]), (4, "Built-up", [178, 178, 178])]},
    "multi": {"mode": "MultiLabeled_Tiles", "space": "PIXEL_SPACE",
              "classes": [(1, "tree", [38, 115, 0]), (2, "Roof", [230, 76, 0]), (3, "paved", [130, 130, 130])]},
}
EXPORT_TILES = 16
EXPORT_TILE = 256
CHIP = 224


def log(msg):
    print(msg, flush=True)


# ---- 1. training export ------------------------------------------------------------------------

def write_export(raster, out, preset):
    """A small export folder. Tiles: a deterministic scan of TILE x TILE windows (stride TILE/2)
    of the raster keeping those with >= 60 % valid pixels; labels: round robin over the classes
    (single) or over class combinations (multi). Training never runs, so labels only need to give
    every class some members."""
    from osgeo import gdal, osr
    import numpy as np

    spec = EXPORTS[preset]
    ds = gdal.Open(raster)
    arr = ds.ReadAsArray()
    valid = np.ones(arr.shape[1:], bool)
    if arr.shape[0] >= 4 and ds.GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand:
        valid = arr[3] > 0
    rgb = arr[:3].astype(np.uint8)
    rgb[:, ~valid] = 0
    T = EXPORT_TILE
    H, W = valid.shape
    origins = []
    for r0 in range(0, H - T + 1, T // 2):
        for c0 in range(0, W - T + 1, T // 2):
            if valid[r0:r0 + T, c0:c0 + T].mean() >= 0.6:
                origins.append((r0, c0))
    if len(origins) < EXPORT_TILES:
        sys.exit(f"{raster}: only {len(origins)} usable {T} px tiles, need {EXPORT_TILES}")
    step = len(origins) / EXPORT_TILES
    origins = [origins[int(i * step)] for i in range(EXPORT_TILES)]

    classes = spec["classes"]
    if spec["mode"] == "Labeled_Tiles":
        labels = [str(classes[i % len(classes)][0]) for i in range(EXPORT_TILES)]  # <name> = value
    else:
        names = [c[1] for c in classes]
        combos = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2]]
        labels = [",".join(names[j] for j in combos[i % len(combos)]) for i in range(EXPORT_TILES)]

    georef = spec["space"] == "MAP_SPACE"
    gt = ds.GetGeoTransform()
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    drv = gdal.GetDriverByName("GTiff")
    lines = []
    for i, ((r0, c0), lab) in enumerate(zip(origins, labels)):
        stem = f"{i:09d}"
        t = drv.Create(os.path.join(out, "images", stem + ".tif"), T, T, 3, gdal.GDT_Byte)
        if georef:
            t.SetGeoTransform((gt[0] + c0 * gt[1], gt[1], 0.0, gt[3] + r0 * gt[5], 0.0, gt[5]))
            t.SetProjection(ds.GetProjection())
        for b in range(3):
            t.GetRasterBand(b + 1).WriteArray(rgb[b, r0:r0 + T, c0:c0 + T])
        t = None
        with open(os.path.join(out, "labels", stem + ".xml"), "w") as f:
            f.write(f'<?xml version="1.0"?>\n<annotation>\n  <filename>{stem}.tif</filename>\n'
                    f"  <size><width>{T}</width><height>{T}</height><depth>3</depth></size>\n"
                    f"  <object>\n    <name>{lab}</name>\n    <difficult>0</difficult>\n"
                    f"    <bndbox><xmin>0</xmin><ymin>0</ymin><xmax>{T}</xmax><ymax>{T}</ymax></bndbox>\n"
                    "  </object>\n</annotation>\n")
        lines.append(f"images\\{stem}.tif labels\\{stem}.xml")
    with open(os.path.join(out, "map.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    tiles = np.stack([rgb[:, r0:r0 + T, c0:c0 + T] for r0, c0 in origins]).astype(np.float64)
    emd = {"MetaDataMode": spec["mode"], "ImageHeight": T, "ImageWidth": T,
           "ImageSpaceUsed": spec["space"], "CropTileMode": "Fixed_Size", "BlackenAroundFeature": False,
           "IsMultidimensional": False, "ExtractBands": [0, 1, 2],
           "Classes": [{"Value": v, "Name": n, "Color": c} for v, n, c in classes],
           "InputRastersProps": {"RasterCount": 1, "SensorName": "", "BandNames": ["red", "green", "blue"]},
           "AllTilesStats": [{"BandName": nm, "Min": float(tiles[:, b].min()), "Max": float(tiles[:, b].max()),
                              "Mean": float(tiles[:, b].mean()), "StdDev": float(tiles[:, b].std())}
                             for b, nm in enumerate(["red", "green", "blue"])]}
    if georef:
        srs = osr.SpatialReference(wkt=ds.GetProjection())
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
        sr = {"wkid": int(code), "latestWkid": int(code)} if code else {"wkt": ds.GetProjection()}
        emd["MinCellSize"] = {"x": abs(gt[1]), "y": abs(gt[5]), "spatialReference": sr}
        emd["MaxCellSize"] = dict(emd["MinCellSize"])
    with open(os.path.join(out, "esri_model_definition.emd"), "w") as f:
        json.dump(emd, f, indent=4)
    counts = {}
    for lab in labels:
        for part in lab.split(","):
            counts[part] = counts.get(part, 0) + 1
    acc = {"MetaDataMode": spec["mode"], "NumTiles": EXPORT_TILES, "NumBands": 3,
           "FeatureStats": {"NumFeatures": EXPORT_TILES,
                            "NumFeaturesPerClass": [{"Label": k, "NumFeatures": v} for k, v in sorted(counts.items())]}}
    with open(os.path.join(out, "esri_accumulated_stats.json"), "w") as f:
        json.dump(acc, f, indent=4)
    return {"raster": os.path.basename(raster), "metadata_mode": spec["mode"], "image_space": spec["space"],
            "tiles": EXPORT_TILES, "tile_size": T, "tile_origins_row_col": origins, "labels": labels}


# ---- small JSON writer: one record per line, so files stay small and diff well ------------------

def dump_json(obj, path):
    def enc(v, indent):
        pad = "  " * indent
        if isinstance(v, dict) and v:
            inner = ",\n".join(f"{pad}  {json.dumps(k)}: {enc(x, indent + 1)}" for k, x in v.items())
            return "{\n" + inner + "\n" + pad + "}"
        if isinstance(v, list) and v and all(isinstance(x, (list, dict)) for x in v):
            inner = ",\n".join(pad + "  " + json.dumps(x, separators=(", ", ": ")) for x in v)
            return "[\n" + inner + "\n" + pad + "]"
        return json.dumps(v, separators=(", ", ": "))
    with open(path, "w") as f:
        f.write(enc(obj, 0) + "\n")


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# ---- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--backbone")
    ap.add_argument("--mode", choices=["single", "multi"])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--gain", type=float, help="rule 4 of the seeded-weights spec: b = sqrt(gain / fan_in)")
    ap.add_argument("--shim-dir", required=True, help="folder with offline_shim.py and arcpy_stub/")
    ap.add_argument("--train-raster", required=True, help="raster the training export is cut from")
    ap.add_argument("--raster", required=True, help="raster the reference chips are read from")
    ap.add_argument("--out-root", required=True, help="fixtures/arcgis_learn")
    ap.add_argument("--windows", default=DEFAULT_WINDOWS, help="top-left col,row of each 224 px chip")
    ap.add_argument("--work", help="scratch folder (default: a new temporary folder, removed at the end)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra-threshold", type=float, default=0.3)
    ap.add_argument("--allow-uniform", action="store_true",
                    help="write the files even if the outputs do not vary across the chips")
    a = ap.parse_args()
    cfg = dict(PRESETS.get(a.name, {}))
    cfg.setdefault("gain", 3.0)
    for k in ("backbone", "mode", "seed", "gain"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    missing = [k for k in ("backbone", "mode", "seed") if k not in cfg]
    if missing:
        sys.exit(f"{a.name} is not a preset: give --{' --'.join(missing)}")
    multilabel = cfg["mode"] == "multi"
    timings = {}
    t_all = time.time()

    work = a.work or tempfile.mkdtemp(prefix="agl_seeded_")
    if not a.work:
        import atexit
        atexit.register(shutil.rmtree, work, True)
    if os.path.exists(os.path.join(work, a.name)):
        shutil.rmtree(os.path.join(work, a.name))
    os.makedirs(work, exist_ok=True)

    # offline shims (no downloads; fastai 1.0.61 vs Esri's fork; stub arcpy): see their docstrings
    shim = os.path.abspath(a.shim_dir)
    sys.path.insert(0, shim)
    sys.path.insert(0, os.path.join(shim, "arcpy_stub"))
    sys.path.insert(0, HERE)
    t = time.time()
    import offline_shim  # noqa: F401  (must come before arcgis.learn)
    import numpy as np
    import torch
    from osgeo import gdal
    import seeded_weights as sw
    import pth_writer as pw

    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"] % 2**32)
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(a.threads)
    import arcgis
    import fastai
    from arcgis.learn import FeatureClassifier, prepare_data
    timings["imports_s"] = round(time.time() - t, 1)

    # 1. training export
    t = time.time()
    export_dir = os.path.join(work, a.name, "export")
    export_info = write_export(a.train_raster, export_dir, cfg["mode"])
    timings["export_s"] = round(time.time() - t, 1)

    # 2. FeatureClassifier, built by arcgis.learn (no fit)
    t = time.time()
    data = prepare_data(export_dir, chip_size=CHIP, batch_size=4, val_split_pct=0.2, seed=7)
    fc = FeatureClassifier(data, backbone=cfg["backbone"])
    model = fc.learn.model
    log(f"{a.name}: backbone {cfg['backbone']}, classes {list(data.classes)}, dataset {data._dataset_type}")
    timings["build_s"] = round(time.time() - t, 1)

    # 3. seeded weights, strict load
    t = time.time()
    dtypes = {torch.float32: "float32", torch.int64: "int64"}
    current = model.state_dict()
    seeded = {}
    owner_of_storage = {}  # a module registered twice: its second name's tensors share the first's storage
    for k, v in current.items():
        if v.dtype not in dtypes:
            sys.exit(f"{k}: dtype {v.dtype} is outside the seeded-weights spec")
        owner = owner_of_storage.setdefault(v.untyped_storage().data_ptr(), k)
        seeded[k] = torch.from_numpy(sw.tensor_values(cfg["seed"], owner, dtypes[v.dtype], tuple(v.shape),
                                                      cfg["gain"]).copy())
    model.load_state_dict(seeded, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, seeded[k]), f"{k} did not load bit for bit"
    timings["seed_weights_s"] = round(time.time() - t, 1)

    # 4. Esri's save(): only <name>.emd + <name>.pth in the package
    t = time.time()
    random.seed(cfg["seed"])  # the class colours in the .emd come from random.choice
    model_dir = os.path.join(work, a.name, "model", a.name)
    saved = fc.save(model_dir, save_inference_file=False, save_html=False)
    saved = str(saved)
    emd_path = os.path.join(model_dir, a.name + ".emd")
    pth_path = os.path.join(model_dir, a.name + ".pth")
    dlpk_path = os.path.join(model_dir, a.name + ".dlpk")
    with zipfile.ZipFile(dlpk_path) as z:
        members = z.namelist()
        assert sorted(members) == sorted([a.name + ".emd", a.name + ".pth"]), members
        assert z.read(a.name + ".pth") == open(pth_path, "rb").read()
        assert z.read(a.name + ".emd") == open(emd_path, "rb").read()
    timings["save_s"] = round(time.time() - t, 1)
    log(f"saved: {saved} ({os.path.getsize(pth_path):,} byte .pth)")

    # layout + fingerprint, from the bytes torch wrote
    t = time.time()
    raw = open(pth_path, "rb").read()
    layout, pkl, zpth, entries = pw.layout_from_pth(raw)
    owners = pw.storage_owners(layout["tensors"])
    storages = [zpth.read(f"{layout['archive_name']}/data/{tt['storage_key']}") for tt in owners]
    expected = [sw.tensor_bytes(cfg["seed"], tt["key"], tt["dtype"], tt["shape"], cfg["gain"]) for tt in owners]
    bad = [tt["key"] for tt, s, e in zip(owners, storages, expected) if s != e]
    assert not bad, f"storages differ from the seeded spec: {bad[:5]}"
    rebuilt_pkl = pw.data_pkl(layout)
    rebuilt = pw.pth_bytes(layout, expected)
    same_pkl, same_file = rebuilt_pkl == pkl, rebuilt == raw
    log(f"pth_writer: data.pkl identical {same_pkl}, whole .pth identical {same_file}")
    sid = zpth.read(f"{layout['archive_name']}/.data/serialization_id").decode()
    recs = pw.records_for(layout, expected)
    sid_rebuilt = pw.serialization_id([n for n, _ in recs], [e["crc32"] for e in entries[:-1]])
    timings["layout_fingerprint_s"] = round(time.time() - t, 1)

    # 5. Esri's inference path
    t = time.time()
    ref = run_esri(a, cfg, emd_path, pth_path, members, multilabel, gdal, np, torch)
    timings["esri_inference_s"] = round(time.time() - t, 1)

    # 6. variation
    variation = check_variation(ref, multilabel, a.extra_threshold)
    for line in variation["lines"]:
        log(line)
    if not variation["ok"] and not a.allow_uniform:
        sys.exit(f"{a.name}: outputs do not vary enough across the chips; choose another seed "
                 "(or pass --allow-uniform)")

    # write
    out = os.path.join(a.out_root, a.name)
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(emd_path, os.path.join(out, a.name + ".emd"))
    import torchvision
    versions = {"arcgis": arcgis.__version__, "fastai": fastai.__version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    try:
        import timm
        versions["timm"] = timm.__version__
    except ImportError:
        pass
    layout_doc = {
        "about": "Everything needed, with seeded_weights.py (README 'Seeded weights'), to rebuild "
                 f"{a.name}.pth byte for byte without torch (README 'Reproducing torch's .pth'; "
                 "pth_writer.py is the executable form). Written from the .pth that "
                 "arcgis.learn FeatureClassifier.save() wrote.",
        "name": a.name,
        "backbone": cfg["backbone"],
        "seed": cfg["seed"],
        "gain": cfg["gain"],
        "archive_name": layout["archive_name"],
        "pickle_protocol": layout["pickle_protocol"],
        "conventions": {"storage_key": "storages are numbered \"0\", \"1\", ... in order of first use: a new one "
                                       "per tensor, unless the tensor has a 4th element, the key of an earlier "
                                       "storage it views whole (a module saved under two names); a storage's "
                                       "values are seeded by the key of its first tensor",
                        "storage_offset": 0, "stride": "contiguous (row-major)", "location": "cpu",
                        "requires_grad": False, "backward_hooks": "empty OrderedDict",
                        "storage_class": {"float32": "FloatStorage", "int64": "LongStorage"}},
        "records": {"data.pkl": "pickle, see README", ".format_version": "1", ".storage_alignment": "64",
                    "byteorder": "little", "data/<k>": "storage bytes, little-endian", "version": "3\n",
                    ".data/serialization_id": "computed, see README"},
        "tensor_count": len(layout["tensors"]),
        "float32_values": sum(tt["numel"] for tt in owners if tt["dtype"] == "float32"),
        "tensors": pw.compact_tensors(layout["tensors"]),
        "metadata": layout["metadata"],
    }
    # the compact form must expand to what was read from the pickle
    assert pw.expand_tensors(layout_doc["tensors"]) == layout["tensors"]
    dump_json(layout_doc, os.path.join(out, "layout.json"))

    fingerprint = {
        "about": f"What torch {torch.__version__} wrote for {a.name}.pth (arcgis.learn save()). "
                 "entries: [name, compression method (0 = stored), size, crc32, payload offset mod 64, "
                 "local header offset], in zip order.",
        "pth_size": len(raw),
        "pth_sha256": sha256(raw),
        "data_pkl_size": len(pkl),
        "data_pkl_sha256": sha256(pkl),
        "storages_concat_sha256": sha256(b"".join(storages)),
        "storages_concat_size": sum(len(s) for s in storages),
        "serialization_id": sid,
        "serialization_id_recomputed": sid_rebuilt,
        "not_reproducible": [] if sid == sid_rebuilt else [".data/serialization_id"],
        "pth_writer_rebuilds_data_pkl": same_pkl,
        "pth_writer_rebuilds_pth": same_file,
        "emd_sha256": sha256(open(emd_path, "rb").read()),
        "dlpk_members": members,
        "dlpk_note": "the .dlpk (shutil.make_archive, Deflate) carries zip timestamps, so it is not "
                     "reproducible byte for byte and is not fingerprinted; a test packs emd + pth itself",
        "entries": [[e["name"], e["method"], e["size"], f"{e['crc32']:08x}", e["data_offset"] % 64,
                     e["header_offset"]] for e in entries],
    }
    dump_json(fingerprint, os.path.join(out, "fingerprint.json"))

    timings["total_s"] = round(time.time() - t_all, 1)
    ref_doc = {
        "about": "Outputs of a seeded arcgis.learn FeatureClassifier package computed by Esri's own "
                 "inference code (ArcGISObjectClassifier raster function -> _FeatureClassifier."
                 "ChildObjectDetector -> FeatureClassifier.from_model -> fastai pred_batch), made by "
                 "tools/arcgis_learn/make_reference.py. Label and confidence strings are exactly what "
                 "that function writes; probability vectors are the ones its own calls produced.",
        "versions": versions,
        "package": a.name,
        "package_members": members,
        "backbone": cfg["backbone"],
        "seed": cfg["seed"],
        "gain": cfg["gain"],
        "weights": "seeded (tools/arcgis_learn/README.md 'Seeded weights'); no training",
        "training_export": export_info,
        **ref,
        "variation": {k: v for k, v in variation.items() if k != "lines"},
    }
    dump_json(ref_doc, os.path.join(out, "reference.json"))
    for fn in sorted(os.listdir(out)):
        log(f"{os.path.getsize(os.path.join(out, fn)):>8}  {os.path.join(out, fn)}")
    log("timings: " + json.dumps(timings))
    if not (same_pkl and same_file):
        sys.exit("pth_writer.py does not reproduce this .pth: see fingerprint.json")


def run_esri(a, cfg, emd_path, pth_path, members, multilabel, gdal, np, torch):
    """Drive the raster function like Pro: initialize -> getParameterInfo -> getConfiguration ->
    vectorize, on the chips, plain / TTA (/ thresholds). The function text is taken from the
    installed arcgis package (what the emd's [Functions] path names in Pro) into a temp folder."""
    tmp = tempfile.mkdtemp(prefix="fc_seeded_ref_")
    try:
        emd_tmp = os.path.join(tmp, os.path.basename(emd_path))
        shutil.copyfile(emd_path, emd_tmp)
        shutil.copyfile(pth_path, os.path.join(tmp, os.path.basename(pth_path)))
        emd = json.load(open(emd_tmp))
        prf_file = emd["InferenceFunction"].replace("\\", "/").split("/")[-1]
        from arcgis.learn.models._codetemplate import feature_classifier_prf
        with open(os.path.join(tmp, prf_file), "w") as f:
            f.write(feature_classifier_prf)
        spec = importlib.util.spec_from_file_location("ArcGISObjectClassifier", os.path.join(tmp, prf_file))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        prf = mod.ArcGISObjectClassifier()
        prf.initialize(model=emd_tmp, device=-1)
        param_info = prf.getParameterInfo()
        child = prf.child_object_detector

        # record the probability vectors the function's own calls produce (outermost call only)
        seen = {"depth": 0, "last": None}
        plain_pred, plain_tta = child.cf.learn.pred_batch, child.tta_predict

        def rec_pred(*args, **kw):
            r = plain_pred(*args, **kw)
            if seen["depth"] == 0:
                seen["last"] = r.detach().cpu().numpy().copy()
            return r

        def rec_tta(*args, **kw):
            seen["depth"] += 1
            try:
                r = plain_tta(*args, **kw)
            finally:
                seen["depth"] -= 1
            seen["last"] = r.detach().cpu().numpy().copy()
            return r

        child.cf.learn.pred_batch = rec_pred
        child.tta_predict = rec_tta

        names = [c["Name"] for c in emd["Classes"]]
        H, W, bands = emd["ImageHeight"], emd["ImageWidth"], emd["ExtractBands"]
        ds = gdal.Open(a.raster)
        chips, masks, meta = [], [], []
        for w in a.windows.split():
            c, r = (int(v) for v in w.split(","))
            assert 0 <= c and 0 <= r and c + W <= ds.RasterXSize and r + H <= ds.RasterYSize, f"window {w} leaves the raster"
            px = np.stack([ds.GetRasterBand(b + 1).ReadAsArray(c, r, W, H) for b in bands])
            m = np.stack([ds.GetRasterBand(b + 1).GetMaskBand().ReadAsArray(c, r, W, H) for b in bands])
            chips.append(px)
            masks.append(m)
            f = px.astype(np.float64)
            meta.append({"window_col_row_width_height": [c, r, W, H], "dtype": str(px.dtype),
                         "shape": list(px.shape), "sha256_uint8_chw": sha256(px.tobytes()),
                         "nodata_pixels_all_bands": int((m == 0).all(0).sum()),
                         "band_mean": [round(float(v), 6) for v in f.mean((1, 2))],
                         "band_std": [round(float(v), 6) for v in f.std((1, 2))]})

        def run(**scalars):
            scalars = {k: str(v) for k, v in scalars.items()}  # Pro passes strings
            conf = prf.getConfiguration(**scalars)
            fields = json.loads(prf.getFields())["fields"]
            seen["last"] = None
            res = prf.vectorize(rasters_pixels=[x.copy() for x in chips], rasters_mask=[m.copy() for m in masks])
            feats = json.loads(res["output_vectors"])["features"]
            return {"model_arguments": scalars,
                    "configuration": {k: (list(v) if isinstance(v, tuple) else v) for k, v in conf.items()},
                    "threshold_in_effect": getattr(child, "thresh", None) if multilabel else None,
                    "fields": [[f["name"], f["type"]] for f in fields],
                    "rows": [[f["attributes"]["Label"], f["attributes"]["Confidence"]] for f in feats],
                    "vectors": seen["last"]}

        n = len(chips)
        thr = a.extra_threshold
        runs = {"plain": run(batch_size=n), "tta": run(batch_size=n, test_time_augmentation="True")}
        if multilabel:
            runs["threshold_arg"] = run(batch_size=n, threshold=thr)
            runs["threshold_arg_tta"] = run(batch_size=n, threshold=thr, test_time_augmentation="True")
            runs["score_threshold_arg"] = run(batch_size=n, score_threshold=thr)

        # logits: the same module the function runs, on the function's own normalisation
        from arcgis.learn.models._inferencing import _FeatureClassifier as fc_inf
        batch = np.asarray(chips)
        x = torch.tensor(fc_inf.norm(batch.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)).float()
        with torch.no_grad():
            logits = child.model.eval()(x).numpy()
        act = (lambda t: 1 / (1 + np.exp(-t))) if multilabel else (lambda t: np.exp(t - t.max(1, keepdims=True)) / np.exp(t - t.max(1, keepdims=True)).sum(1, keepdims=True))
        probs, probs_tta = runs["plain"]["vectors"], runs["tta"]["vectors"]
        assert np.abs(act(logits.astype(np.float64)) - probs).max() < 1e-5, "logits and probabilities disagree"
        mean = np.array([0.485, 0.456, 0.406], np.float32) * np.float32(255)
        std = np.array([0.229, 0.224, 0.225], np.float32) * np.float32(255)
        own = (batch.astype(np.float32) - mean[None, :, None, None]) / std[None, :, None, None]
        for i, e in enumerate(meta):
            e["input_mean"] = round(float(x[i].double().mean()), 6)
            e["input_std"] = round(float(x[i].double().std(unbiased=False)), 6)

        # the rows must be what the vectors say
        for i, (lab, conf) in enumerate(runs["plain"]["rows"]):
            if multilabel:
                assert lab == ";".join(nm for nm, p in zip(names, probs[i]) if p >= 0.5), (i, lab)
                assert conf == ";".join(str(float(p)) for p in probs[i]), (i, conf)
            else:
                assert lab == names[int(probs[i].argmax())] and conf == str(float(probs[i].max())), (i, lab, conf)

        chips_out = []
        for i, e in enumerate(meta):
            e = dict(e)
            e["logits"] = logits[i].tolist()
            e["probabilities"] = probs[i].tolist()
            e["tta_probabilities"] = probs_tta[i].tolist()
            (lab, conf), (tlab, tconf) = runs["plain"]["rows"][i], runs["tta"]["rows"][i]
            if multilabel:
                e.update({"labels": lab, "confidence": conf, "tta_labels": tlab, "tta_confidence": tconf,
                          f"labels_threshold_{thr}": runs["threshold_arg"]["rows"][i][0],
                          f"tta_labels_threshold_{thr}": runs["threshold_arg_tta"]["rows"][i][0],
                          f"labels_score_threshold_arg_{thr}": runs["score_threshold_arg"]["rows"][i][0]})
            else:
                e.update({"label": lab, "confidence": conf, "tta_label": tlab, "tta_confidence": tconf})
            chips_out.append(e)

        out = {
            "metadata_mode": emd.get("MetaDataMode"),
            "image_space": emd["ImageSpaceUsed"],
            "class_names_in_output_order": names,
            "class_values_in_output_order": [c["Value"] for c in emd["Classes"]],
            "activation": "sigmoid" if multilabel else "softmax",
            "raster": os.path.basename(a.raster),
            "windows": a.windows.split(),
            "preprocessing": "x = (chip - 255*[0.485,0.456,0.406]) / (255*[0.229,0.224,0.225]) per band, "
                             "float32, NCHW, after setting masked (NoData) pixels to 0; no resize",
            "preprocessing_own_max_abs_diff_vs_esri": float(np.abs(own - x.numpy()).max()),
            "prf_parameter_names": [p["name"] for p in param_info],
            "prf_parameters": [{k: p.get(k) for k in ("name", "dataType", "value", "required", "domain")}
                               for p in param_info],
            "prf_output_fields": runs["plain"]["fields"],
            "tta_dihedral_variants": list(range(8)) if emd["ImageSpaceUsed"] == "MAP_SPACE" else [0, 2],
            "runs": {k: {kk: v[kk] for kk in ("model_arguments", "configuration", "threshold_in_effect")}
                     for k, v in runs.items()},
        }
        if multilabel:
            out["multilabel"] = {
                "default_threshold": 0.5, "extra_threshold": thr,
                "label_rule": "names of classes with probability >= threshold, in output order, joined with "
                              "';' ('' when none); Confidence = every class probability as Python str(float), "
                              "joined with ';'",
                "note_score_threshold": "arcgis 2.4.4 reads only 'threshold'; the run with score_threshold="
                                        f"{thr} kept threshold {runs['score_threshold_arg']['threshold_in_effect']}"}
        out["chips"] = chips_out
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_variation(ref, multilabel, thr):
    chips = ref["chips"]
    lines, res = [], {}
    if multilabel:
        keys = ["labels", "tta_labels", f"labels_threshold_{thr}", f"tta_labels_threshold_{thr}"]
        for k in keys:
            vals = [c[k] for c in chips]
            res[f"distinct_{k}"] = len(set(vals))
            lines.append(f"  {k:28s} {vals}")
        spread = [max(c["probabilities"][j] for c in chips) - min(c["probabilities"][j] for c in chips)
                  for j in range(len(chips[0]["probabilities"]))]
        res["probability_spread_per_class"] = [round(s, 4) for s in spread]
        res["threshold_changes_labels_on_chips"] = [i for i, c in enumerate(chips) if c["labels"] != c[f"labels_threshold_{thr}"]]
        ok = res["distinct_labels"] > 1 and res["distinct_tta_labels"] > 1 and min(spread) > 0.02 \
            and bool(res["threshold_changes_labels_on_chips"])
    else:
        for k, ck in (("label", "confidence"), ("tta_label", "tta_confidence")):
            vals = [c[k] for c in chips]
            conf = [float(c[ck]) for c in chips]
            res[f"distinct_{k}"] = len(set(vals))
            res[f"{ck}_range"] = [round(min(conf), 4), round(max(conf), 4)]
            lines.append(f"  {k:10s} {vals}  {ck} {[round(v, 3) for v in conf]}")
        res["tta_changes_label_on_chips"] = [i for i, c in enumerate(chips) if c["label"] != c["tta_label"]]
        ok = all(res[f"distinct_{k}"] > 1 for k in ("label", "tta_label")) and \
            all(r[1] - r[0] > 0.02 for r in (res["confidence_range"], res["tta_confidence_range"]))
    res["ok"] = bool(ok)
    lines.insert(0, f"variation across the {len(chips)} chips: {'ok' if ok else 'NOT ENOUGH'}")
    res["lines"] = lines
    return res


if __name__ == "__main__":
    main()
