#!/usr/bin/env python3
"""An independent writer of Jessy's two legacy region layouts, for scripts/test-legacy.sh.

Written from the description in issue 12 (and so docs/FORMAT.md, "Legacy Jessy regions"), not
from layerfs's reader: what Jessy's RegionBuilder::build_to_file and scripts/init_mmap.py put
on disk, including the JSON layout's overflow bug (metadata over 1020 bytes is not padded, so
the layers follow it directly while every recorded offset still assumes byte 1024).

    jessy_writer.py fixtures BASE EXPECTED   a legacy volume under BASE, and under EXPECTED
                                             what a mount of it must show (files + attrs.json)
    jessy_writer.py json OUT SPEC.json       one JSON-layout region from a layer list
    jessy_writer.py text OUT SPEC.json       one text-layout region from a layer list
"""
import hashlib
import json
import os
import sys

HEADER = 1024


def json_region(dimension, name, layers, created_at):
    """layers: dicts with layer, name, frequency, depth, keywords, content (bytes), parent,
    children, last_accessed, access_count. Returns the file's bytes."""
    offset = HEADER
    meta_layers = []
    for l in layers:
        size = len(l["content"])
        meta_layers.append({
            "layer_id": {"dimension": dimension, "layer": l["layer"]},
            "name": l["name"], "frequency": l["frequency"], "depth": l["depth"],
            "offset": offset, "size": size, "keywords": l["keywords"],
            "parent": None if l.get("parent") is None else {"dimension": l["parent"][0], "layer": l["parent"][1]},
            "children": [{"dimension": d, "layer": n} for d, n in l.get("children", [])],
            "last_accessed": l["last_accessed"], "access_count": l["access_count"],
        })
        offset += size
    meta = {"version": 1, "created_at": created_at, "dimension_name": name, "total_size": offset,
            "content_offset": HEADER, "layers": meta_layers}
    # serde_json's compact form; non-ASCII kept as UTF-8.
    text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head = b"JSON" + text
    if len(head) < HEADER:
        head += b"\0" * (HEADER - len(head))
    # else: Jessy's bug, reproduced: no padding, the layers follow the JSON directly.
    return head + b"".join(l["content"] for l in layers)


def text_region(dimension, name, capacity, layers):
    """init_mmap.py: str writes, so OFFSET and SIZE count characters."""
    out = f"DIMENSION:{dimension:02d}|NAME:{name}|SIZE:{capacity}|LAYERS:{len(layers)}\n"
    offset = len(out)
    for l in layers:
        content = l["content"].decode("utf-8")
        line = (f"LAYER:{l['layer']}|DEPTH:{l['depth']}|FREQ:{l['frequency']:.2f}|"
                f"KEYWORDS:{','.join(l['keywords'])}|OFFSET:{offset}|SIZE:{len(content)}\n")
        out += line + content + "\n"
        offset += len(line) + len(content) + 1
    return out.encode("utf-8")


def shortest(f):
    return repr(float(f))


def escape_keywords(keywords):
    return ",".join(k.replace("\\", "\\\\").replace(",", "\\,") for k in keywords)


def mount_path(dimension, layer):
    return f"D{dimension:02d}/layer-{layer + 1:03d}"


def expected_layer_attrs(l, layout):
    attrs = {
        "user.checksum": "sha256:" + hashlib.sha256(l["content"]).hexdigest(),
        "user.layer_id": str(l["layer"] + 1),
        "user.frequency": shortest(l["frequency"] if layout == "jessy-json" else float(f"{l['frequency']:.2f}")),
        "user.keywords": escape_keywords(l["keywords"]),
        "user.depth": str(l["depth"]),
    }
    if layout == "jessy-json":
        attrs["user.name"] = l["name"]
        if l.get("parent") is not None:
            attrs["user.parent"] = mount_path(*l["parent"])
        attrs["user.children"] = ",".join(mount_path(d, n) for d, n in l.get("children", []))
    return attrs


def make_layers(dimension, count, seed, text_safe=False):
    layers = []
    for i in range(count):
        if i % 7 == 3:
            body = ""  # empty layers
        elif i % 3 == 0:
            body = f"# Ebene {i}: Gefühl, 感情, émotion ✓\nçà et là — {seed}\n" * (1 + i % 4)
        else:
            body = f"layer {i} of dimension {dimension}, plain ASCII ({seed})\n" * (1 + i % 5)
        keywords = [f"kw{i}", "geführt" if i % 2 else "plain"] + (["with,comma", "back\\slash"] if i % 5 == 1 and not text_safe else [])
        layers.append({
            "layer": i, "name": f"Layer {i} — {seed}", "frequency": [0.1, 1.5, 4.5, 2.25, 0.75][i % 5],
            "depth": i % 6, "keywords": keywords, "content": body.encode("utf-8"),
            "parent": None if i == 0 else (dimension, (i - 1) // 2),
            "children": [(dimension, c) for c in (2 * i + 1, 2 * i + 2) if c < count],
            "last_accessed": 1_700_000_000 + i * 61, "access_count": i * 3,
        })
    return layers


def fixtures(base, expected):
    """The suite's legacy volume: JSON layout under consciousness/ (D01: one layer, fits the
    header; D02: 500 layers, overflows it; D03: three layers, fits), text layout straight
    under the base as init_mmap.py writes it (D04: one layer; D05: non-ASCII and empty)."""
    plan = [
        ("consciousness/D01", "json", 1, make_layers(1, 1, "one")),
        ("consciousness/D02", "json", 2, make_layers(2, 500, "many")),
        ("consciousness/D03", "json", 3, make_layers(3, 3, "few")),
        ("D04", "text", 4, make_layers(4, 1, "single", text_safe=True)),
        ("D05", "text", 5, make_layers(5, 12, "texte", text_safe=True)),
    ]
    attrs = {}
    for path, layout, dim, layers in plan:
        os.makedirs(os.path.join(base, path), exist_ok=True)
        region = os.path.join(base, path, "region.mmap")
        name = ["Emotion", "Cognition", "Intention", "Social", "Temporal"][dim - 1]
        if layout == "json":
            data = json_region(dim, name, layers, 1_690_000_000 + dim)
            fmt = "jessy-json"
        else:
            data = text_region(dim, name, 16 * 1024 * 1024, layers)
            fmt = "jessy-text"
        with open(region, "wb") as f:
            f.write(data)
        d = f"D{dim:02d}"
        os.makedirs(os.path.join(expected, d), exist_ok=True)
        overflow = layout == "json" and data[HEADER - 1] != 0
        attrs[d] = {
            "user.format": fmt, "user.dimension_id": str(dim), "user.dimension_name": name,
            "user.layer_count": str(len(layers)),
            "user.generation": "sha256:" + hashlib.sha256(data).hexdigest(),
            "overflow": overflow,
            "layers": {},
        }
        if layout == "json":
            attrs[d]["user.created_at_epoch"] = 1_690_000_000 + dim
        for l in layers:
            file = f"layer-{l['layer'] + 1:03d}"
            with open(os.path.join(expected, d, file), "wb") as f:
                f.write(l["content"])
            attrs[d]["layers"][file] = expected_layer_attrs(l, fmt)
            if layout == "json":
                attrs[d]["layers"][file]["mtime"] = l["last_accessed"]
    with open(os.path.join(expected, "attrs.json"), "w") as f:
        json.dump(attrs, f, ensure_ascii=False, indent=1)


def rewrite_meta(path, change):
    """For the bad-file cases: reads a JSON-layout region's metadata the way Jessy's reader
    does (from JSON up to the first zero byte), lets change(meta) edit it, and writes it back
    padded to 1024 bytes with the layers' bytes unchanged."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.index(b"\0", 4)
    meta = json.loads(data[4:end])
    change(meta)
    head = b"JSON" + json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert len(head) < HEADER, "rewrite_meta needs metadata that fits the header"
    with open(path, "wb") as f:
        f.write(head + b"\0" * (HEADER - len(head)) + data[HEADER:])


def load_spec(path):
    with open(path) as f:
        spec = json.load(f)
    for l in spec["layers"]:
        l["content"] = l["content"].encode("utf-8")
        l.setdefault("name", f"layer {l['layer']}")
        l.setdefault("frequency", 1.0)
        l.setdefault("depth", 0)
        l.setdefault("keywords", [])
        l.setdefault("last_accessed", 1_700_000_000)
        l.setdefault("access_count", 0)
    return spec


def main(argv):
    if len(argv) == 4 and argv[1] == "fixtures":
        fixtures(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] in ("json", "text"):
        spec = load_spec(argv[3])
        if argv[1] == "json":
            data = json_region(spec["dimension"], spec["name"], spec["layers"], spec.get("created_at", 1_690_000_000))
        else:
            data = text_region(spec["dimension"], spec["name"], spec.get("capacity", 1 << 20), spec["layers"])
        with open(argv[2], "wb") as f:
            f.write(data)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
