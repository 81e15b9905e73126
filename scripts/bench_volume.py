#!/usr/bin/env python3
"""Data generator for scripts/bench.sh and scripts/bench-format.sh.

  bench_volume.py files DIR COUNT SIZE [--meta] [--checksum-xattr]
      write DIR/layer-NNN (NNN = 1..COUNT, at least three digits) of SIZE random bytes each;
      --meta sets user.frequency and user.keywords, --checksum-xattr sets user.checksum
      (sha256:<hex>), so the same query works on the source tree, on layerfs and on squashfuse.

  bench_volume.py dimension DIMDIR DIM_ID COUNT SIZE [--time RFC3339]
      write DIMDIR/region.mmap and DIMDIR/index.json directly, following
      docs/FORMAT.md / volume-format-v1 exactly (256-byte header, layers in id order on
      4096-byte boundaries starting at 4096, zero padding to a multiple of 4096, one index
      line per layer like `layerfs pack` writes), without creating COUNT input files.

Content is random (os.urandom) so no filesystem can compress or deduplicate it.
"""
import hashlib
import json
import os
import random
import struct
import sys

CANONICAL = ["Emotion", "Cognition", "Intention", "Social", "Temporal", "Philosophical", "Technical",
             "Creative", "Ethical", "Meta", "Ecological", "Positivity", "Balance", "Security"]

VOCABULARY = ["emotion", "feeling", "memory", "pattern", "signal", "context", "focus",
              "balance", "insight", "relation", "tempo", "structure", "meaning", "trace"]


def layer_name(i):
    return "layer-%03d" % i


def meta_for(i):
    rng = random.Random(i)
    frequency = round(rng.uniform(0.05, 3.0), 3)
    keywords = rng.sample(VOCABULARY, 2)
    return frequency, keywords


def files(directory, count, size, meta, checksum_xattr):
    os.makedirs(directory, exist_ok=True)
    for i in range(1, count + 1):
        data = os.urandom(size)
        path = os.path.join(directory, layer_name(i))
        with open(path, "wb") as f:
            f.write(data)
        if meta:
            frequency, keywords = meta_for(i)
            os.setxattr(path, "user.frequency", repr(frequency).encode())
            os.setxattr(path, "user.keywords", ",".join(keywords).encode())
        if checksum_xattr:
            os.setxattr(path, "user.checksum", b"sha256:" + hashlib.sha256(data).hexdigest().encode())


def dimension(dimdir, dim_id, count, size, time):
    os.makedirs(dimdir, exist_ok=True)
    step = (size + 4095) // 4096 * 4096 if size > 0 else 0
    offsets = []
    lines = []
    region_path = os.path.join(dimdir, "region.mmap")
    body = hashlib.sha256()            # SHA-256 of bytes [256, total_size)
    with open(region_path, "wb") as f:
        f.write(b"\0" * 4096)          # header placeholder + padding up to the first layer
        body.update(b"\0" * (4096 - 256))
        position = 4096
        for i in range(1, count + 1):
            data = os.urandom(size)
            pad = b"\0" * (step - size)
            f.write(data)
            f.write(pad)
            body.update(data)
            body.update(pad)
            offsets.append(position)
            frequency, keywords = meta_for(i)
            lines.append('    { "layer_id": %d, "offset": %d, "size": %d, "checksum": "sha256:%s", '
                         '"frequency": %s, "keywords": %s, "updated_at": "%s" }'
                         % (i, position, size, hashlib.sha256(data).hexdigest(), repr(frequency),
                            json.dumps(keywords), time))
            position += step
        total = position
        if total % 4096:
            pad = b"\0" * (4096 - total % 4096)
            f.write(pad)
            body.update(pad)
            total += len(pad)
        digest = body.digest()
        header = b"MMAP" + struct.pack("<IIIQ", 1, dim_id, count, total) + digest
        header += b"\0" * (256 - len(header))
        f.seek(0)
        f.write(header)
        f.flush()
        os.fsync(f.fileno())
    index = ('{\n'
             '  "dimension_id": %d,\n'
             '  "dimension_name": "%s",\n'
             '  "version": 1,\n'
             '  "created_at": "%s",\n'
             '  "updated_at": "%s",\n'
             '  "layer_count": %d,\n'
             '  "total_size": %d,\n'
             '  "region_checksum": "sha256:%s",\n'
             '  "layers": [\n%s\n  ]\n}\n'
             % (dim_id, CANONICAL[dim_id - 1] if 1 <= dim_id <= 14 else "D%02d" % dim_id, time, time, count, total, digest.hex(), ",\n".join(lines)))
    with open(os.path.join(dimdir, "index.json"), "w") as f:
        f.write(index)
        f.flush()
        os.fsync(f.fileno())


def main(argv):
    if len(argv) >= 5 and argv[1] == "files":
        files(argv[2], int(argv[3]), int(argv[4]), "--meta" in argv[5:], "--checksum-xattr" in argv[5:])
    elif len(argv) >= 6 and argv[1] == "dimension":
        time = "2024-06-01T00:00:00Z"
        if "--time" in argv:
            time = argv[argv.index("--time") + 1]
        dimension(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), time)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
