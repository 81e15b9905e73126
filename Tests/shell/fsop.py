#!/usr/bin/env python3
"""One filesystem operation for scripts/test-writable.sh; prints OK or the errno's name.

Usage: fsop.py OP PATH [ARG]. Each op does exactly one thing the shell cannot ask for by
itself with a clean errno (renameat2 flags, fsync of a descriptor, a write past a limit).
"""
import ctypes
import errno
import os
import sys

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(a, b, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def close_quietly(fd):
    """Close after the operation under test: its errno is the one reported, not close's (which
    on a writable mount may carry an earlier commit's failure)."""
    try:
        os.close(fd)
    except OSError:
        pass


def run(op, path, arg):
    if op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    elif op == "write-then-read":
        # The bytes written are read back through another descriptor before the first closes.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        write_all(fd, b"staged")
        with open(path, "rb") as f:
            got = f.read()
        os.close(fd)
        if got != b"staged":
            return "MISMATCH:%r" % got
    elif op == "write-fsync":
        data = open(arg, "rb").read()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            close_quietly(fd)
    elif op == "fsync":
        fd = os.open(path, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            close_quietly(fd)
    elif op == "write-size":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            left = int(arg)
            chunk = b"x" * (1 << 16)
            while left > 0:
                n = os.write(fd, chunk[:min(left, len(chunk))])
                left -= n
            os.fsync(fd)
        finally:
            close_quietly(fd)
    elif op == "rename":
        os.rename(path, arg)
    elif op == "rename-noreplace":
        renameat2(path, arg, RENAME_NOREPLACE)
    elif op == "rename-exchange":
        renameat2(path, arg, RENAME_EXCHANGE)
    elif op == "unlink":
        os.unlink(path)
    elif op == "link":
        os.link(path, arg)
    elif op == "symlink":
        os.symlink(path, arg)
    elif op == "mkfifo":
        os.mkfifo(path)
    elif op == "chmod":
        os.chmod(path, int(arg, 8))
    elif op == "chown":
        os.chown(path, int(arg), -1)
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "rmdir":
        os.rmdir(path)
    elif op == "setxattr":
        name, _, value = arg.partition("=")
        os.setxattr(path, name, value.encode())
    elif op == "utime":
        os.utime(path, (int(arg), int(arg)))
    elif op == "fsyncdir":
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    else:
        return "UNKNOWN-OP"
    return "OK"


def main():
    op, path = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        print(run(op, path, arg))
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))


main()
