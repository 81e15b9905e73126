#!/usr/bin/env python3
"""A second, independent model of `layerfs update` for scripts/test-update.sh: it reads a
dimension straight from region.mmap and index.json, applies the changes of one update call to
a snapshot the way the spec says they apply, and compares a dimension against the result
field by field and byte by byte.

  update_tool.py snap DIM                 print the dimension's state (JSON) on stdout
  update_tool.py expect STATE [CHANGE]... print the state one update with these changes leads to
        CHANGE: --put ID=FILE  --put-next FILE  --delete ID  --keywords ID=a,b  --frequency ID=F
                --name NAME  --time T      (FILE is read now; give a copy of stdin for ID=-)
  update_tool.py compare DIM STATE [--printed SUM]
        exit 0 when DIM is exactly STATE: same layers, each one's bytes (read out of region.mmap
        at the index's offset and size) equal to the file or checksum STATE names, every index
        field as STATE has it, header and index agreeing, the region checksum right (and equal
        to SUM, what update printed), the writer's layout (ascending ids, 4096-byte aligned)
  update_tool.py layer DIM ID             the layer's bytes on stdout
  update_tool.py region-sum DIM           sha256 of region.mmap[256:] as sha256:HEX
"""
import hashlib
import json
import os
import struct
import sys

def load(dim):
    index = json.load(open(os.path.join(dim, "index.json")))
    region = open(os.path.join(dim, "region.mmap"), "rb").read()
    return index, region


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snap(dim):
    index, region = load(dim)
    layers = {}
    # The spec's defaults for optional fields, so that an index from an older producer (which
    # leaves them out) compares with the one update writes (which says them).
    defaults = {"frequency": 1.0, "keywords": []}
    if "updated_at" in index:
        defaults["updated_at"] = index["updated_at"]
    for l in index["layers"]:
        data = region[l["offset"]:l["offset"] + l["size"]]
        entry = dict(defaults)
        entry.update({k: v for k, v in l.items() if k not in ("offset",)})
        entry["bytes_sha"] = sha(data)
        layers[str(l["layer_id"])] = entry
    top = {k: v for k, v in index.items() if k not in ("layers", "layer_count", "total_size", "region_checksum")}
    if "dimension_name" not in top and os.path.basename(os.path.dirname(os.path.abspath(dim))) == "consciousness" \
            and index["dimension_id"] > 14:
        top["dimension_name"] = "D%02d" % index["dimension_id"]
    return {"top": top, "layers": layers, "region_checksum": index.get("region_checksum")}


def parse_id(s):
    i = int(s)
    if not 1 <= i <= 2**32 - 1:
        raise ValueError(s)
    return str(i)


def split_keywords(value):
    """The mount's user.keywords form: `,` separates, `\\,` and `\\\\` escape; empty: no keywords."""
    if value == "":
        return []
    out, cur, i = [], "", 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            cur += value[i + 1]
            i += 2
            continue
        if c == ",":
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return out


def expect(state, args):
    top, layers = state["top"], state["layers"]
    t = None
    i = 0
    ops = []
    while i < len(args):
        if args[i] in ("--file-by-file", "--dry-run"):  # how, not what
            i += 1
            continue
        opt, val = args[i], args[i + 1]
        i += 2
        ops.append((opt, val))
        if opt == "--time":
            t = val
    if t is None:
        sys.exit("expect needs --time")
    next_id = max([int(k) for k in layers] + [0]) + 1
    for opt, val in ops:
        if opt == "--put" or opt == "--put-next":
            if opt == "--put":
                lid, path = val.split("=", 1)
                lid = parse_id(lid)
            else:
                lid, path = str(next_id), val
            next_id = max(next_id, int(lid) + 1)
            data = open(path, "rb").read()
            old = layers.get(lid)
            new = dict(old) if old else {"layer_id": int(lid), "frequency": 1.0, "keywords": []}
            new["size"] = len(data)
            new["checksum"] = sha(data)
            new["bytes_sha"] = sha(data)
            new["file"] = os.path.abspath(path)
            if not old or old["checksum"] != new["checksum"]:
                new["updated_at"] = t
            layers[lid] = new
        elif opt == "--delete":
            del layers[parse_id(val)]
        elif opt == "--keywords":
            lid, kw = val.split("=", 1)
            layers[parse_id(lid)]["keywords"] = split_keywords(kw)
        elif opt == "--frequency":
            lid, f = val.split("=", 1)
            layers[parse_id(lid)]["frequency"] = float(f)
        elif opt == "--name":
            top["dimension_name"] = val
    top["updated_at"] = t
    state["region_checksum"] = None
    return state


def compare(dim, state, printed):
    problems = []
    index, region = load(dim)
    top, layers = state["top"], state["layers"]
    for k, v in top.items():
        if index.get(k) != v:
            problems.append("index %s: expected %r, got %r" % (k, v, index.get(k)))
    for k in index:
        if k not in top and k not in ("layers", "layer_count", "total_size", "region_checksum"):
            problems.append("index has an unexpected field %s=%r" % (k, index[k]))
    got = {str(l["layer_id"]): l for l in index["layers"]}
    if len(got) != len(index["layers"]):
        problems.append("duplicate layer ids in the index")
    if sorted(got, key=int) != sorted(layers, key=int):
        problems.append("layer ids: expected %s, got %s" % (sorted(layers, key=int), sorted(got, key=int)))
    for lid, want in layers.items():
        have = got.get(lid)
        if have is None:
            continue
        data = region[have["offset"]:have["offset"] + have["size"]]
        if "file" in want:
            if data != open(want["file"], "rb").read():
                problems.append("layer %s: bytes differ from %s" % (lid, os.path.basename(want["file"])))
        elif sha(data) != want["bytes_sha"]:
            problems.append("layer %s: bytes changed (%s, expected %s)" % (lid, sha(data), want["bytes_sha"]))
        if sha(data) != have["checksum"]:
            problems.append("layer %s: index checksum %s is not its bytes' %s" % (lid, have["checksum"], sha(data)))
        for k, v in want.items():
            if k in ("bytes_sha", "file"):
                continue
            if have.get(k) != v:
                problems.append("layer %s %s: expected %r, got %r" % (lid, k, v, have.get(k)))
        for k in have:
            if k not in want and k != "offset":
                problems.append("layer %s has an unexpected field %s=%r" % (lid, k, have[k]))
    # header against index, region checksum
    magic, version, dim_id, count, total = struct.unpack_from("<4sIIIQ", region, 0)
    header_sum = "sha256:" + region[24:56].hex()
    actual_sum = sha(region[256:])
    if magic != b"MMAP" or version != 1:
        problems.append("header magic/version %r %d" % (magic, version))
    if dim_id != index.get("dimension_id"):
        problems.append("header dimension_id %d, index %r" % (dim_id, index.get("dimension_id")))
    if count != index.get("layer_count") or count != len(index["layers"]):
        problems.append("layer_count: header %d, index %r, layers %d" % (count, index.get("layer_count"), len(index["layers"])))
    if total != len(region) or index.get("total_size") != len(region):
        problems.append("total_size: header %d, index %r, file %d" % (total, index.get("total_size"), len(region)))
    if header_sum != actual_sum:
        problems.append("header checksum %s is not the region's %s" % (header_sum, actual_sum))
    if index.get("region_checksum") != actual_sum:
        problems.append("index region_checksum %r is not the region's %s" % (index.get("region_checksum"), actual_sum))
    if printed is not None and printed != actual_sum:
        problems.append("printed checksum %s is not the region's %s" % (printed, actual_sum))
    if region[56:256] != bytes(200):
        problems.append("reserved header bytes not zero")
    # the writer's layout: ascending ids, each at a 4096 boundary, first at 4096, no overlap, padded
    pos = 4096
    for l in sorted(index["layers"], key=lambda l: l["layer_id"]):
        if l["offset"] % 4096 or l["offset"] < pos:
            problems.append("layer %d at offset %d: not the writer's layout (expected >= %d, 4096-aligned)" % (l["layer_id"], l["offset"], pos))
        pos = max(pos, l["offset"] + l["size"])
    if len(region) % 4096 or len(region) < 4096:
        problems.append("region size %d is not a multiple of 4096" % len(region))
    return problems


def main():
    cmd = sys.argv[1]
    if cmd == "snap":
        json.dump(snap(sys.argv[2]), sys.stdout, indent=1, sort_keys=True)
    elif cmd == "expect":
        state = json.load(open(sys.argv[2]))
        json.dump(expect(state, sys.argv[3:]), sys.stdout, indent=1, sort_keys=True)
    elif cmd == "compare":
        state = json.load(open(sys.argv[3]))
        printed = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--printed" else None
        problems = compare(sys.argv[2], state, printed)
        for p in problems[:20]:
            print(p)
        sys.exit(1 if problems else 0)
    elif cmd == "layer":
        index, region = load(sys.argv[2])
        for l in index["layers"]:
            if l["layer_id"] == int(sys.argv[3]):
                sys.stdout.buffer.write(region[l["offset"]:l["offset"] + l["size"]])
                return
        sys.exit("no layer %s" % sys.argv[3])
    elif cmd == "region-sum":
        print(sha(open(os.path.join(sys.argv[2], "region.mmap"), "rb").read()[256:]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
