#!/usr/bin/env python3
"""Python baseline for the benchmark: the same job as classify-objects, written the way a GIS
engineer would in Python with GDAL's bindings, numpy and onnxruntime.

Same chip rules (fixed ImageWidth x ImageHeight window, top-left at floor(cx - W/2),
floor(cy - H/2) of the feature's envelope centre, outside and NoData pixels 0, NormalizationStats
or ImageNet on 0-255), same model, same batch size, same ONNX Runtime intra-op threads; features
read in order, chips read one window per feature, results written as CSV.

    python3 baseline.py RASTER MODEL.dlpk FEATURES OUT.csv BATCH_SIZE INTRA_OP_THREADS [gdal|rasterio|rasterio_clipped]

Chip reading: `gdal` (default) clips the window to the raster and reads it with one
ReadAsArray call, pasting it into a zero chip; `rasterio_clipped` does the same with rasterio's
`src.read(window=...)`; `rasterio` is the other idiomatic rasterio way,
`src.read(window=..., boundless=True, fill_value=0)`, which handles the outside for you (and is
much slower on large tiled images).

Prints one line: features_per_second=<f> features=<n> seconds=<f> read_s=<f> infer_s=<f>
"""
import csv
import io
import json
import math
import sys
import time
import zipfile

import numpy as np
import onnxruntime as ort
from osgeo import gdal, ogr, osr

gdal.UseExceptions()


def load_package(path):
    with zipfile.ZipFile(path) as z:
        emd_name = [n for n in z.namelist() if n.lower().endswith(".emd") and "/" not in n][0]
        emd = json.loads(z.read(emd_name))
        model_file = emd["ModelFile"].replace("\\", "/")
        while model_file.startswith("./"):
            model_file = model_file[2:]
        return emd, z.read(model_file)


def main():
    raster_path, package_path, features_path, out_path = sys.argv[1:5]
    batch_size, threads = int(sys.argv[5]), int(sys.argv[6])
    reader = sys.argv[7] if len(sys.argv) > 7 else "gdal"
    started = time.perf_counter()
    emd, model = load_package(package_path)
    w, h = int(emd["ImageWidth"]), int(emd["ImageHeight"])
    bands = [int(b) for b in emd.get("ExtractBands", [0, 1, 2])]
    names = [c.get("Name", c.get("ClassName")) for c in emd["Classes"]]
    stats = emd.get("NormalizationStats")
    if stats:
        lo = np.array([stats["band_min_values"][b] for b in bands], np.float32)
        hi = np.array([stats["band_max_values"][b] for b in bands], np.float32)
        mean = np.array([stats["scaled_mean_values"][b] for b in bands], np.float32)
        std = np.array([stats["scaled_std_values"][b] for b in bands], np.float32)
        scale, offset = 1 / ((hi - lo) * std), (-lo / (hi - lo) - mean) / std
    else:
        mean = np.array([123.675, 116.28, 103.53], np.float32)
        std = np.array([58.395, 57.12, 57.375], np.float32)
        scale, offset = 1 / std, -mean / std
    scale, offset = scale[:, None, None], offset[:, None, None]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    ds = gdal.Open(raster_path)
    inv = gdal.InvGeoTransform(ds.GetGeoTransform())
    nodata = [ds.GetRasterBand(b + 1).GetNoDataValue() for b in bands]
    raster_srs = osr.SpatialReference(wkt=ds.GetProjection())
    raster_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    vector = ogr.Open(features_path)  # keep the datasource alive while its layer is used
    layer = vector.GetLayer(0)
    layer_srs = layer.GetSpatialRef()
    transform = None
    if layer_srs is not None and not layer_srs.IsSame(raster_srs):
        layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(layer_srs, raster_srs)

    rio = None
    if reader in ("rasterio", "rasterio_clipped"):
        import rasterio
        from rasterio.windows import Window

        rio = rasterio.open(raster_path)
        rio_nodata = rio.nodata
    read_s = infer_s = 0.0
    rows, fids, chips = [], [], []

    def flush():
        nonlocal infer_s
        t = time.perf_counter()
        out = session.run(None, {input_name: np.stack(chips)})[0].astype(np.float64)
        infer_s += time.perf_counter() - t
        for fid, scores in zip(fids, out):
            if not (np.all((scores >= 0) & (scores <= 1)) and abs(scores.sum() - 1) < 1e-3):
                e = np.exp(scores - scores.max())
                scores = e / e.sum()
            best = int(np.argmax(scores))
            rows.append((fid, names[best], float(scores[best])))
        fids.clear()
        chips.clear()

    for feature in layer:
        t = time.perf_counter()
        geom = feature.GetGeometryRef().Clone()
        if transform is not None:
            geom.Transform(transform)
        minx, maxx, miny, maxy = geom.GetEnvelope()
        corners = [gdal.ApplyGeoTransform(inv, x, y) for x in (minx, maxx) for y in (miny, maxy)]
        cx = (min(c[0] for c in corners) + max(c[0] for c in corners)) / 2
        cy = (min(c[1] for c in corners) + max(c[1] for c in corners)) / 2
        col0, row0 = math.floor(cx - w / 2), math.floor(cy - h / 2)
        if rio is not None and reader == "rasterio_clipped":
            # The window clipped to the raster, pasted into a zero chip.
            chip = np.zeros((len(bands), h, w), np.float32)
            c0, r0 = max(col0, 0), max(row0, 0)
            c1, r1 = min(col0 + w, rio.width), min(row0 + h, rio.height)
            if c0 < c1 and r0 < r1:
                data = rio.read([b + 1 for b in bands], window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float32)
                if rio_nodata is not None:
                    data[data == np.float32(rio_nodata)] = 0
                chip[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = data
        elif rio is not None:
            chip = rio.read([b + 1 for b in bands], window=Window(col0, row0, w, h), boundless=True, fill_value=0)
            chip = chip.astype(np.float32)
            if rio_nodata is not None:
                chip[chip == np.float32(rio_nodata)] = 0
        else:
            chip = np.zeros((len(bands), h, w), np.float32)
            c0, r0 = max(col0, 0), max(row0, 0)
            c1, r1 = min(col0 + w, ds.RasterXSize), min(row0 + h, ds.RasterYSize)
            if c0 < c1 and r0 < r1:
                data = ds.ReadAsArray(c0, r0, c1 - c0, r1 - r0, band_list=[b + 1 for b in bands]).astype(np.float32)
                data = data.reshape(len(bands), r1 - r0, c1 - c0)
                for k, nd in enumerate(nodata):
                    if nd is not None:
                        data[k][data[k] == np.float32(nd)] = 0
                chip[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = data
        chips.append(chip * scale + offset)
        fids.append(feature.GetFID())
        read_s += time.perf_counter() - t
        if len(chips) == batch_size:
            flush()
    if chips:
        flush()

    with open(out_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fid", "ClassLabel", "Confidence"])
        writer.writerows(rows)
    seconds = time.perf_counter() - started
    print(
        f"features_per_second={len(rows) / seconds:.2f} features={len(rows)} seconds={seconds:.3f} "
        f"read_s={read_s:.3f} infer_s={infer_s:.3f}"
    )


if __name__ == "__main__":
    main()
