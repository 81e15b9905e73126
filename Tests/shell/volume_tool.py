#!/usr/bin/env python3
"""Independent reader of the volume format for the mount tests: it extracts what the mount
must show straight from region.mmap and index.json, so the tests compare layerfs against a
second implementation rather than against itself.

  volume_tool.py expect BASE OUT     write OUT/DNN/layer-NNN files with the expected bytes
  volume_tool.py mmap FILE           mmap FILE read-only and print its SHA-256
"""
import hashlib
import json
import mmap
import os
import sys


def expect(base, out):
    for group in ("consciousness", "proto"):
        root = os.path.join(base, group)
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            d = os.path.join(root, name)
            index_path = os.path.join(d, "index.json")
            if name.startswith(".") or not os.path.isfile(index_path):
                continue
            try:
                index = json.load(open(index_path))
                region = open(os.path.join(d, "region.mmap"), "rb").read()
            except Exception:
                continue
            if region[:4] != b"MMAP":
                continue
            target = os.path.join(out, name if group == "consciousness" else "proto/" + name)
            os.makedirs(target, exist_ok=True)
            for layer in index["layers"]:
                data = region[layer["offset"]:layer["offset"] + layer["size"]]
                with open(os.path.join(target, "layer-%03d" % layer["layer_id"]), "wb") as f:
                    f.write(data)


def map_file(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            print(hashlib.sha256(b"").hexdigest())
            return
        with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ, flags=mmap.MAP_SHARED) as m:
            print(hashlib.sha256(m[:]).hexdigest())


if __name__ == "__main__":
    if sys.argv[1] == "expect":
        expect(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mmap":
        map_file(sys.argv[2])
    else:
        sys.exit("unknown command")
