#!/usr/bin/env python3
"""Reader processes for the live-update stress test.

  stress_readers.py DIR PROCS SECONDS STOPFILE FINAL_MARKER

Each of PROCS processes opens random layers of DIR, reads user.checksum with fgetxattr on the
open descriptor, reads the bytes and compares their SHA-256 with it, until STOPFILE exists
(or SECONDS pass). Then each checks that it sees FINAL_MARKER in every layer within 3 s
(every reader eventually sees the last generation). Prints one line:
  reads=N mismatches=N errors=N final_ok=N/PROCS
"""
import hashlib
import multiprocessing
import os
import random
import sys
import time


def reader(directory, seconds, stopfile, marker, out):
    names = sorted(os.listdir(directory))
    reads = mismatches = errors = 0
    deadline = time.time() + seconds
    while time.time() < deadline and not os.path.exists(stopfile):
        name = random.choice(names)
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                want = os.getxattr(fd, "user.checksum").decode()
                chunks = []
                while True:
                    b = os.read(fd, 1 << 20)
                    if not b:
                        break
                    chunks.append(b)
            finally:
                os.close(fd)
            got = "sha256:" + hashlib.sha256(b"".join(chunks)).hexdigest()
            reads += 1
            if got != want:
                mismatches += 1
                print("MISMATCH %s: xattr %s bytes %s" % (name, want, got), file=sys.stderr)
        except OSError as e:
            errors += 1
            print("ERROR %s: %s" % (name, e), file=sys.stderr)
    final_ok = 0
    end = time.time() + 3
    while time.time() < end:
        try:
            if all(marker.encode() in open(os.path.join(directory, n), "rb").read() for n in names):
                final_ok = 1
                break
        except OSError:
            pass
        time.sleep(0.05)
    out.put((reads, mismatches, errors, final_ok))


def main():
    directory, procs, seconds, stopfile, marker = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
    out = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=reader, args=(directory, seconds, stopfile, marker, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = [out.get() for _ in ps]
    for p in ps:
        p.join()
    print("reads=%d mismatches=%d errors=%d final_ok=%d/%d" % (
        sum(r[0] for r in results), sum(r[1] for r in results), sum(r[2] for r in results),
        sum(r[3] for r in results), procs))


if __name__ == "__main__":
    main()
