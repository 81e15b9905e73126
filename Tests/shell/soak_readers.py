#!/usr/bin/env python3
"""Readers and listers for the soak test (scripts/soak.sh), run against a dimension of a mount
while it is replaced again and again.

  soak_readers.py DIR STOPFILE DELETED_LOG [--oneshot N] [--holders N] [--scanners N]

Every layer file the soak writes describes itself: its bytes are the line
"layer-NNN gen G\\n" repeated and cut to layer_size(NNN, G) bytes, G being the replacement
that last changed the layer. So any read can be checked on its own: the bytes must be exactly
those one generation wrote for that name, never a mix of two, never cut short.

  --oneshot N   N processes that open a random layer, read user.checksum with fgetxattr on the
                open descriptor, read the whole file and close it; the bytes must be one
                generation's, and their SHA-256 must equal that user.checksum.
  --holders N   N processes that each keep 4 layers open for 1-4 s (many replacements), reading
                each again and again (dropping its page cache now and then, so the daemon is
                asked again for the old generation); every read must give the bytes of the first.
  --scanners N  N processes listing DIR with os.scandir and lstat-ing every entry; st_ino must
                equal the entry's d_ino.

All run until STOPFILE exists. A name that vanished (ENOENT on open or stat) counts as an error
unless the writer logged it in DELETED_LOG (one name a line, written before the pack that
removes it). Prints one line of key=value counts to stdout; each problem to stderr.
"""
import argparse
import errno
import hashlib
import multiprocessing
import os
import random
import re
import sys
import time

LINE = re.compile(rb"(layer-[0-9]+) gen ([0-9]+)\n")
MAX_REPORTS = 20  # per process, so that a broken mount does not flood the log


def layer_size(layer_id, gen):
    """The size of layer layer_id as written by replacement gen; scripts/soak.sh computes the same."""
    return 64 + (layer_id * 7919 + gen * 131) % 24000


def expected(name, gen):
    line = b"%s gen %d\n" % (name.encode(), gen)
    size = layer_size(int(name[len("layer-"):]), gen)
    return (line * (size // len(line) + 1))[:size]


def generation_of(name, data):
    """The generation whose bytes data are, or None when they are no generation's."""
    m = LINE.match(data)
    if not m or m.group(1).decode() != name:
        return None
    gen = int(m.group(2))
    return gen if data == expected(name, gen) else None


class Worker:
    def __init__(self, kind, directory, stopfile, deleted_log):
        self.kind, self.directory, self.stopfile, self.deleted_log = kind, directory, stopfile, deleted_log
        self.counts = {"reads": 0, "mismatches": 0, "errors": 0, "gone": 0, "listings": 0, "stats": 0, "held": 0}
        self.reported = 0
        self.names = []
        self.names_at = 0.0

    def report(self, what):
        if self.reported < MAX_REPORTS:
            print("%s[%d]: %s" % (self.kind, os.getpid(), what), file=sys.stderr, flush=True)
        self.reported += 1

    def stopped(self):
        return os.path.exists(self.stopfile)

    def deleted(self, name):
        try:
            with open(self.deleted_log) as f:
                return name in f.read().split()
        except FileNotFoundError:
            return False

    def vanished(self, name, e, doing):
        """ENOENT (or ESTALE) for name: fine if the writer deleted it, else an error."""
        if e.errno in (errno.ENOENT, errno.ESTALE) and self.deleted(name):
            self.counts["gone"] += 1
        else:
            self.counts["errors"] += 1
            self.report("ERROR %s %s: %s" % (doing, name, e))

    def pick(self):
        if time.time() - self.names_at > 0.5 or not self.names:
            try:
                self.names = [n for n in os.listdir(self.directory) if n.startswith("layer-")]
            except OSError as e:
                self.counts["errors"] += 1
                self.report("ERROR listdir: %s" % e)
            self.names_at = time.time()
        return random.choice(self.names) if self.names else None

    def read_all(self, fd):
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return b"".join(chunks)
            chunks.append(b)

    # ---- open, fgetxattr, read, close
    def oneshot(self):
        while not self.stopped():
            name = self.pick()
            if name is None:
                time.sleep(0.05)
                continue
            try:
                fd = os.open(os.path.join(self.directory, name), os.O_RDONLY)
            except OSError as e:
                self.vanished(name, e, "open")
                continue
            try:
                want = os.getxattr(fd, "user.checksum").decode()
                data = self.read_all(fd)
            except OSError as e:
                self.counts["errors"] += 1
                self.report("ERROR read %s (open): %s" % (name, e))
                continue
            finally:
                os.close(fd)
            self.counts["reads"] += 1
            got = "sha256:" + hashlib.sha256(data).hexdigest()
            gen = generation_of(name, data)
            if gen is None or got != want:
                self.counts["mismatches"] += 1
                self.report("MISMATCH %s: %d bytes starting %r, no generation's%s" % (
                    name, len(data), data[:40], "" if got == want else "; user.checksum %s, bytes %s" % (want, got)))

    # ---- keep layers open across replacements
    def holders(self):
        held = []  # [fd, name, first bytes, close time]
        rounds = 0
        while not self.stopped():
            while len(held) < 4:
                name = self.pick()
                if name is None:
                    break
                try:
                    fd = os.open(os.path.join(self.directory, name), os.O_RDONLY)
                except OSError as e:
                    self.vanished(name, e, "open")
                    continue
                try:
                    data = self.read_all(fd)
                except OSError as e:
                    self.counts["errors"] += 1
                    self.report("ERROR first read %s: %s" % (name, e))
                    os.close(fd)
                    continue
                self.counts["reads"] += 1
                self.counts["held"] += 1
                if generation_of(name, data) is None:
                    self.counts["mismatches"] += 1
                    self.report("MISMATCH %s (first read of a held fd): %d bytes starting %r" % (name, len(data), data[:40]))
                held.append([fd, name, data, time.time() + random.uniform(1, 4)])
            rounds += 1
            for h in list(held):
                fd, name, first, until = h
                try:
                    if rounds % 3 == 0:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    data = os.pread(fd, len(first) + 4096, 0)
                    self.counts["reads"] += 1
                    if data != first:
                        self.counts["mismatches"] += 1
                        self.report("MISMATCH %s (held fd): first read %r (%d bytes), now %r (%d bytes)" % (
                            name, first[:24], len(first), data[:24], len(data)))
                except OSError as e:
                    self.counts["errors"] += 1
                    self.report("ERROR read %s (held fd): %s" % (name, e))
                if time.time() > until:
                    os.close(fd)
                    held.remove(h)
            time.sleep(0.02)
        for h in held:
            os.close(h[0])

    # ---- os.scandir + lstat of every entry
    def scanners(self):
        while not self.stopped():
            try:
                with os.scandir(self.directory) as it:
                    entries = list(it)
            except OSError as e:
                self.counts["errors"] += 1
                self.report("ERROR scandir: %s" % e)
                continue
            self.counts["listings"] += 1
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError as x:
                    self.vanished(e.name, x, "stat")
                    continue
                self.counts["stats"] += 1
                if st.st_ino != e.inode():  # st_ino depends only on dimension and layer id
                    self.counts["errors"] += 1
                    self.report("ERROR %s: readdir gave inode %d, stat %d" % (e.name, e.inode(), st.st_ino))

    def run(self, out):
        try:
            getattr(self, self.kind)()
        except Exception as e:  # an unexpected failure is a failure of the run, not a hang
            self.counts["errors"] += 1
            self.report("ERROR %s crashed: %r" % (self.kind, e))
        out.put((self.kind, self.counts))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("directory")
    p.add_argument("stopfile")
    p.add_argument("deleted_log")
    p.add_argument("--oneshot", type=int, default=0)
    p.add_argument("--holders", type=int, default=0)
    p.add_argument("--scanners", type=int, default=0)
    a = p.parse_args()
    out = multiprocessing.Queue()
    kinds = ["oneshot"] * a.oneshot + ["holders"] * a.holders + ["scanners"] * a.scanners
    ps = [multiprocessing.Process(target=lambda k=k: Worker(k, a.directory, a.stopfile, a.deleted_log).run(out)) for k in kinds]
    for q in ps:
        q.start()
    results = [out.get() for _ in ps]
    for q in ps:
        q.join()

    def total(kind, key):
        return sum(c[key] for k, c in results if kind is None or k == kind)

    print("oneshot_reads=%d held_reads=%d held_fds=%d scans=%d stats=%d mismatches=%d errors=%d gone=%d" % (
        total("oneshot", "reads"), total("holders", "reads"), total("holders", "held"),
        total("scanners", "listings"), total("scanners", "stats"),
        total(None, "mismatches"), total(None, "errors"), total(None, "gone")))


if __name__ == "__main__":
    main()
