"""Makes the labelled mosaic on which bench/quantize.sh measures trained ResNet packages.

Seven classes, each a kind of imagery found among the real rasters of ../shared/data (the class
is the scene a cell was cut from, so truth is known for every cell):

  landsat        rasterio/RGB.byte.tif (Landsat 7, 300 m, RGB)
  uav            deepness/dummy_fotomap_small.tif (UAV orthophoto, 2 cm, RGB of RGBA)
  uav_grey       the same orthophoto as luminance (confusable with the two panchromatic classes)
  atlanta_pan    solaris/sample_geotiff.tif (0.5 m panchromatic, UInt16)
  rotterdam_pan  solaris/pan1.tif (0.5 m panchromatic, UInt16)
  rotterdam_ms   solaris/ms1.tif (bands 3, 2, 1 of the 4-band Float64 multispectral image)
  albers_rgb     solaris/sample_geotiff_custom_proj.tif (3-band Int16)

Every source is stretched to 8 bits (2nd-98th percentile per band for the non-Byte ones) and cut
into its four quadrants: cells for training come only from the top-left and bottom-right
quadrants, cells of the mosaic (calibration, held-out and truth) only from the other two, so no
pixel is in both. A cell is a random square of 100-150 source pixels (at least 95 % data), a
random quarter-turn and flip, brightness and contrast within +-15 %, resized to 224 x 224
(bilinear).

OUT/export/       a "Labeled_Tiles" training export (the layout of ../shared/tools/arcgis_learn/
                  make_export.py): TRAIN cells per class, 224 x 224 GeoTIFF tiles, MAP_SPACE,
                  EPSG:32633, 1 m cells; the xml <name> holds the class value (1..7)
OUT/mosaic.tif    TEST cells per class in a grid of 224 x 224 px cells, shuffled, EPSG:32633,
                  1 m pixels, origin (500000, 5900000), tiled and deflate-compressed
OUT/cells.gpkg    layer `cells`: one polygon per mosaic cell (inset 8 px), fields `id`, `truth`
                  (the class name) and `value`

Run: /work/agl-venv/bin/python tools/quantize/make_mosaic.py OUT [--train 100] [--test 80]
     [--seed 5] [--shared ../shared/data]
then train with ../shared/tools/arcgis_learn/train_save.py OUT/export MODEL_DIR --backbone resnet18
--unfreeze --epochs N (bench/quantize.sh --trained does both).
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
CELL = 224
PIXEL = 1.0
ORIGIN = (500000.0, 5900000.0)
CLASSES = [
    (1, "landsat", [230, 152, 0]),
    (2, "uav", [56, 168, 0]),
    (3, "uav_grey", [130, 130, 130]),
    (4, "atlanta_pan", [0, 92, 230]),
    (5, "rotterdam_pan", [168, 0, 132]),
    (6, "rotterdam_ms", [255, 0, 0]),
    (7, "albers_rgb", [0, 168, 132]),
]


def stretch(band, valid):
    lo, hi = np.percentile(band[valid], [2, 98])
    return np.clip((band - lo) / max(hi - lo, 1e-9) * 255, 0, 255)


def load(shared, name):
    """3 x H x W float32 in 0..255 and the H x W mask of data."""
    def read(path):
        return gdal.Open(os.path.join(shared, path)).ReadAsArray().astype(np.float32)
    if name == "landsat":
        a = read("rasterio/RGB.byte.tif")
        return a, (a > 0).any(0)
    if name in ("uav", "uav_grey"):
        a = read("deepness/dummy_fotomap_small.tif")
        rgb, valid = a[:3], a[3] > 0
        if name == "uav_grey":
            rgb = np.repeat((0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None], 3, 0)
        return rgb, valid
    if name in ("atlanta_pan", "rotterdam_pan"):
        a = read("solaris/sample_geotiff.tif" if name == "atlanta_pan" else "solaris/pan1.tif")
        valid = a > 0
        return np.repeat(stretch(a, valid)[None], 3, 0), valid
    if name == "rotterdam_ms":
        a = read("solaris/ms1.tif")[[2, 1, 0]]
        valid = (a > 0).all(0)
        return np.stack([stretch(b, valid) for b in a]), valid
    a = read("solaris/sample_geotiff_custom_proj.tif")
    valid = (a != -9999).all(0)
    return np.stack([stretch(b, valid) for b in a]), valid


def cells(rng, rgb, valid, quadrants, count):
    _, H, W = rgb.shape
    out = []
    while len(out) < count:
        qr, qc = quadrants[rng.integers(len(quadrants))]
        r_lo, r_hi = (0, H // 2) if qr == 0 else (H // 2, H)
        c_lo, c_hi = (0, W // 2) if qc == 0 else (W // 2, W)
        side = int(rng.integers(100, 151))
        side = min(side, r_hi - r_lo, c_hi - c_lo)
        r0 = int(rng.integers(r_lo, r_hi - side + 1))
        c0 = int(rng.integers(c_lo, c_hi - side + 1))
        if valid[r0:r0 + side, c0:c0 + side].mean() < 0.95:
            continue
        crop = rgb[:, r0:r0 + side, c0:c0 + side]
        crop = np.rot90(crop, int(rng.integers(4)), axes=(1, 2))
        if rng.integers(2):
            crop = crop[:, :, ::-1]
        mean = crop.mean()
        crop = (crop - mean) * rng.uniform(0.85, 1.15) + mean * rng.uniform(0.85, 1.15)
        t = torch.from_numpy(np.ascontiguousarray(crop))[None]
        t = F.interpolate(t, size=(CELL, CELL), mode="bilinear", align_corners=False)[0]
        out.append(np.clip(t.numpy(), 0, 255).round().astype(np.uint8))
    return out


def write_export(out, train):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    drv = gdal.GetDriverByName("GTiff")
    lines, counts = [], {}
    for i, (value, chip) in enumerate(train):
        stem = f"{i:09d}"
        t = drv.Create(os.path.join(out, "images", stem + ".tif"), CELL, CELL, 3, gdal.GDT_Byte)
        # Each tile has its own place (a row of tiles far from the mosaic); only the cell size matters.
        t.SetGeoTransform((300000.0 + i * CELL * PIXEL, PIXEL, 0.0, 5000000.0, 0.0, -PIXEL))
        t.SetProjection(srs.ExportToWkt())
        for b in range(3):
            t.GetRasterBand(b + 1).WriteArray(chip[b])
        t = None
        with open(os.path.join(out, "labels", stem + ".xml"), "w") as f:
            f.write("<?xml version=\"1.0\"?>\n<annotation>\n"
                    f"  <filename>{stem}.tif</filename>\n"
                    f"  <size><width>{CELL}</width><height>{CELL}</height><depth>3</depth></size>\n"
                    "  <object>\n"
                    f"    <name>{value}</name>\n"
                    "    <difficult>0</difficult>\n"
                    f"    <bndbox><xmin>8</xmin><ymin>8</ymin><xmax>{CELL - 8}</xmax>"
                    f"<ymax>{CELL - 8}</ymax></bndbox>\n"
                    "  </object>\n</annotation>\n")
        lines.append(f"images\\{stem}.tif labels\\{stem}.xml")
        counts[value] = counts.get(value, 0) + 1
    with open(os.path.join(out, "map.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    stack = np.stack([c for _, c in train]).astype(np.float64)
    cell = {"x": PIXEL, "y": PIXEL, "spatialReference": {"wkid": 32633, "latestWkid": 32633}}
    emd = {
        "MetaDataMode": "Labeled_Tiles", "ImageHeight": CELL, "ImageWidth": CELL,
        "ImageSpaceUsed": "MAP_SPACE", "CropTileMode": "Fixed_Size",
        "BlackenAroundFeature": False, "IsMultidimensional": False, "ExtractBands": [0, 1, 2],
        "Classes": [{"Value": v, "Name": n, "Color": c} for v, n, c in CLASSES],
        "InputRastersProps": {"RasterCount": 1, "SensorName": "",
                              "BandNames": ["red", "green", "blue"]},
        "AllTilesStats": [{"BandName": nm, "Min": float(stack[:, b].min()),
                           "Max": float(stack[:, b].max()), "Mean": float(stack[:, b].mean()),
                           "StdDev": float(stack[:, b].std())}
                          for b, nm in enumerate(["red", "green", "blue"])],
        "MinCellSize": cell, "MaxCellSize": dict(cell),
    }
    with open(os.path.join(out, "esri_model_definition.emd"), "w") as f:
        json.dump(emd, f, indent=4)
    acc = {"MetaDataMode": "Labeled_Tiles", "NumTiles": len(train), "NumBands": 3,
           "FeatureStats": {"NumFeatures": len(train),
                            "NumFeaturesPerClass": [{"Label": str(k), "NumFeatures": v}
                                                    for k, v in sorted(counts.items())]}}
    with open(os.path.join(out, "esri_accumulated_stats.json"), "w") as f:
        json.dump(acc, f, indent=4)


def write_mosaic(out, test):
    n = len(test)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = gdal.GetDriverByName("GTiff").Create(
        os.path.join(out, "mosaic.tif"), cols * CELL, rows * CELL, 3, gdal.GDT_Byte,
        ["TILED=YES", "COMPRESS=DEFLATE", "PHOTOMETRIC=RGB"])
    ds.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
    ds.SetProjection(srs.ExportToWkt())
    vds = ogr.GetDriverByName("GPKG").CreateDataSource(os.path.join(out, "cells.gpkg"))
    layer = vds.CreateLayer("cells", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("truth", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    names = {v: n for v, n, _ in CLASSES}
    layer.StartTransaction()
    for i, (value, chip) in enumerate(test):
        r, c = divmod(i, cols)
        for b in range(3):
            ds.GetRasterBand(b + 1).WriteArray(chip[b], c * CELL, r * CELL)
        x0 = ORIGIN[0] + (c * CELL + 8) * PIXEL
        x1 = ORIGIN[0] + ((c + 1) * CELL - 8) * PIXEL
        y0 = ORIGIN[1] - (r * CELL + 8) * PIXEL
        y1 = ORIGIN[1] - ((r + 1) * CELL - 8) * PIXEL
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]:
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("id", i)
        f.SetField("truth", names[value])
        f.SetField("value", value)
        f.SetGeometry(poly)
        layer.CreateFeature(f)
    layer.CommitTransaction()
    ds = None
    vds = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=100, help="training cells per class")
    ap.add_argument("--test", type=int, default=80, help="mosaic cells per class")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared/data"))
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    train, test = [], []
    for value, name, _ in CLASSES:
        rgb, valid = load(a.shared, name)
        train += [(value, c) for c in cells(rng, rgb, valid, [(0, 0), (1, 1)], a.train)]
        test += [(value, c) for c in cells(rng, rgb, valid, [(0, 1), (1, 0)], a.test)]
    rng.shuffle(train)
    rng.shuffle(test)
    os.makedirs(a.out, exist_ok=True)
    write_export(os.path.join(a.out, "export"), train)
    write_mosaic(a.out, test)
    print(f"{len(train)} training tiles, {len(test)} mosaic cells, {len(CLASSES)} classes -> {a.out}")


if __name__ == "__main__":
    main()
