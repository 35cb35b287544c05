"""Prove the seeded-package spec is complete, without torch: for each fixtures/arcgis_learn/<name>/,
rebuild <name>.pth from seeded_weights.py + layout.json (via pth_writer.py) and compare it with
what torch wrote (fingerprint.json): every zip entry (name, size, CRC32, 64-byte alignment, header
offset), the sha256 of data.pkl, of the storages and of the whole file, and the serialization id.

usage: python check_seeded.py [FIXTURE_DIR ...] [--write-pth OUT_DIR]
       (default: every folder under ../../fixtures/arcgis_learn that has a layout.json)
Needs numpy only. Exit status 1 on any difference.
"""
import argparse
import hashlib
import json
import os
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pth_writer as pw  # noqa: E402
import seeded_weights as sw  # noqa: E402


def expand(layout):
    return {"archive_name": layout["archive_name"], "tensors": pw.expand_tensors(layout["tensors"]),
            "metadata": layout["metadata"]}


def check(folder, write_dir=None):
    t0 = time.time()
    layout = json.load(open(os.path.join(folder, "layout.json")))
    fp = json.load(open(os.path.join(folder, "fingerprint.json")))
    name = layout["name"]
    full = expand(layout)
    problems = []
    storages = [sw.tensor_bytes(layout["seed"], t["key"], t["dtype"], t["shape"], layout["gain"])
                for t in pw.storage_owners(full["tensors"])]
    pkl = pw.data_pkl(full)
    recs = pw.records_for(full, storages, pkl)
    sid = pw.serialization_id([n for n, _ in recs], [zlib.crc32(d) & 0xFFFFFFFF for _, d in recs])
    raw = pw.pth_bytes(full, storages, pkl)
    _, entries = pw.zip_entries(raw)
    mine = [[e["name"], e["method"], e["size"], f"{e['crc32']:08x}", e["data_offset"] % 64, e["header_offset"]]
            for e in entries]
    if len(mine) != len(fp["entries"]):
        problems.append(f"{len(mine)} zip entries, torch wrote {len(fp['entries'])}")
    for m, f in zip(mine, fp["entries"]):
        if m != f:
            problems.append(f"entry {m} != torch's {f}")
            if len(problems) > 10:
                break
    checks = [("data.pkl sha256", hashlib.sha256(pkl).hexdigest(), fp["data_pkl_sha256"]),
              ("storages sha256", hashlib.sha256(b"".join(storages)).hexdigest(), fp["storages_concat_sha256"]),
              ("serialization_id", sid, fp["serialization_id"]),
              (".pth size", len(raw), fp["pth_size"]),
              (".pth sha256", hashlib.sha256(raw).hexdigest(), fp["pth_sha256"])]
    for what, got, want in checks:
        if got != want:
            problems.append(f"{what}: {got} != torch's {want}")
    if write_dir:
        os.makedirs(write_dir, exist_ok=True)
        with open(os.path.join(write_dir, name + ".pth"), "wb") as f:
            f.write(raw)
    status = "ok" if not problems else "DIFFERS"
    print(f"{name}: {status}: {len(full['tensors'])} tensors, {len(raw):,} byte .pth rebuilt "
          f"(sha256 {hashlib.sha256(raw).hexdigest()[:16]}...) in {time.time() - t0:.1f} s")
    for p in problems:
        print("  " + p)
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--write-pth", help="also write each rebuilt .pth into this folder")
    a = ap.parse_args()
    folders = a.folders
    if not folders:
        root = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "arcgis_learn"))
        folders = sorted(os.path.join(root, d) for d in os.listdir(root)
                         if os.path.exists(os.path.join(root, d, "layout.json")))
    ok = all([check(f, a.write_pth) for f in folders])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
