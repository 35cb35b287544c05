"""Makes the quantize test material in fixtures/quantize/ (deterministic, CPU, one thread).

* textures.tif: a 384 x 384 RGB GeoTIFF (EPSG:32633, 1 m pixels, origin 500000, 5800000) of
  12 x 12 cells of 32 x 32 px, each painted with one of four textures (horizontal stripes,
  vertical stripes, checkerboard, smooth speckle) in random colours, periods, phases and noise;
* textures.gpkg: layer `cells`, one polygon per cell (inset 2 px), fields `id` and `truth` (the
  texture painted);
* textures.onnx / textures.emd / textures.dlpk: a small residual CNN (conv-BN-ReLU stem, max-pool,
  two residual blocks, global average pool, a Linear head; about 30k parameters, opset 17)
  trained here on 6,000 freshly generated 32 x 32 texture chips (never the test raster's), with
  the .emd of a 32 x 32 ObjectClassification package (ImageNet normalisation on 0-255).

Run: /work/agl-venv/bin/python tools/quantize/make_textures.py fixtures/quantize
(any Python with torch >= 2, numpy, onnx and GDAL's Python bindings).
"""
import json, os, sys, zipfile
import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.manual_seed(0)
CLASSES = ["horizontal", "vertical", "checker", "speckle"]
S = 32


def texture(rng, k, size=S):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(4, 10)
    phase = rng.uniform(0, 2 * np.pi)
    if k == 0:
        t = np.sin(2 * np.pi * y / period + phase)
    elif k == 1:
        t = np.sin(2 * np.pi * x / period + phase)
    elif k == 2:
        t = np.sign(np.sin(2 * np.pi * x / period + phase) * np.sin(2 * np.pi * y / period + phase))
    else:
        n = rng.normal(size=(size // 4 + 2, size // 4 + 2)).astype(np.float32)
        n = np.kron(n, np.ones((4, 4), np.float32))[:size, :size]
        t = np.clip(n, -1, 1)
    a = rng.uniform(0, 255, 3).astype(np.float32)
    b = rng.uniform(0, 255, 3).astype(np.float32)
    w = (t + 1) / 2
    img = a[:, None, None] * w + b[:, None, None] * (1 - w)
    img += rng.normal(0, rng.uniform(2, 20), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.b1, self.b2 = Block(32), Block(32)
        self.head = nn.Linear(32, len(CLASSES))

    def forward(self, x):
        x = self.b2(self.b1(self.stem(x)))
        return self.head(x.mean((2, 3)))


MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None] * 255
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None] * 255


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for i in range(6000):
        k = i % 4
        xs.append((texture(rng, k).astype(np.float32) - MEAN) / STD)
        ys.append(k)
    X, Y = torch.tensor(np.stack(xs)), torch.tensor(ys)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for epoch in range(8):
        perm = torch.randperm(len(X))
        net.train()
        for s in range(0, len(X), 64):
            idx = perm[s:s + 64]
            loss = nn.functional.cross_entropy(net(X[idx]), Y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
        print("epoch", epoch, "loss", float(loss), flush=True)
    net.eval()
    # The test raster: 12 x 12 cells, textures in a seeded order.
    from osgeo import gdal, ogr, osr
    rng = np.random.default_rng(2)
    n = 12
    truth = rng.integers(0, 4, n * n)
    raster = np.zeros((3, n * S, n * S), np.uint8)
    for i, k in enumerate(truth):
        r, c = divmod(i, n)
        raster[:, r * S:(r + 1) * S, c * S:(c + 1) * S] = texture(rng, int(k))
    with torch.no_grad():
        chips = torch.tensor(np.stack([(raster[:, (i // n) * S:(i // n + 1) * S, (i % n) * S:(i % n + 1) * S].astype(np.float32) - MEAN) / STD for i in range(n * n)]))
        p = torch.softmax(net(chips), 1)
    print("accuracy on the test raster", float((p.argmax(1).numpy() == truth).mean()),
          "top probability quantiles", np.quantile(p.max(1).values.numpy(), [0.05, 0.5]).round(3))
    srs = osr.SpatialReference(); srs.ImportFromEPSG(32633)
    ds = gdal.GetDriverByName("GTiff").Create(f"{out}/textures.tif", n * S, n * S, 3, gdal.GDT_Byte, ["COMPRESS=DEFLATE", "PREDICTOR=2"])
    ds.SetGeoTransform([500000, 1, 0, 5800000, 0, -1]); ds.SetProjection(srs.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(raster[b])
    ds = None
    path = f"{out}/textures.gpkg"
    if os.path.exists(path):
        os.remove(path)
    v = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = v.CreateLayer("cells", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("truth", ogr.OFTString))
    for i, k in enumerate(truth):
        r, c = divmod(i, n)
        x0, y0 = 500000 + c * S + 2, 5800000 - r * S - 2
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in [(x0, y0), (x0 + S - 4, y0), (x0 + S - 4, y0 - S + 4), (x0, y0 - S + 4), (x0, y0)]:
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon); poly.AddGeometry(ring)
        f = ogr.Feature(layer.GetLayerDefn()); f.SetField("id", i); f.SetField("truth", CLASSES[k]); f.SetGeometry(poly)
        layer.CreateFeature(f)
    v = None
    torch.onnx.export(net, torch.zeros(1, 3, S, S), f"{out}/textures.onnx", input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    emd = {"Framework": "ONNX", "ModelConfiguration": "Custom", "ModelType": "ObjectClassification",
           "ModelFile": "textures.onnx", "ImageHeight": S, "ImageWidth": S, "ExtractBands": [0, 1, 2],
           "CropSizeFixed": 1, "BlackenAroundFeature": 0, "ModelName": "textures",
           "Classes": [{"Value": i, "Name": c, "Color": [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48]][i]} for i, c in enumerate(CLASSES)]}
    with open(f"{out}/textures.emd", "w") as f:
        json.dump(emd, f, indent=2)
    with zipfile.ZipFile(f"{out}/textures.dlpk", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(f"{out}/textures.emd", "textures.emd")
        z.write(f"{out}/textures.onnx", "textures.onnx")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/quantize")
