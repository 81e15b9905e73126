import CFuse
import Glibc
import LayerFSCore

/// The operations of a writable mount (`--writable`), installed over the read-only table's
/// EROFS answers. Thin as the others: one core call, one reply. The file handle (`fh`) is the
/// core's handle number.
enum WriteOperations {
    static func install(_ ops: inout fuse_lowlevel_ops) {
        ops.open = { req, ino, fi in
            let ctx = Operations.context(req)
            let flags = fi?.pointee.flags ?? 0
            ctx.trace("OPEN", ino, "flags=\(String(flags, radix: 8))")
            do throws(FSError) {
                let handle = try ctx.fs.openHandle(NodeID(rawValue: ino), flags: flags)
                fi?.pointee.fh = handle
                // Writes come through this mount's page cache; a commit by another writer
                // gives the layer a new node id, so cached pages of this one stay right.
                fi?.pointee.keep_cache = ctx.cache.keepCache ? 1 : 0
                fuse_reply_open(req, fi)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.create = { req, parent, name, _, fi in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("CREATE", parent, name)
            do throws(FSError) {
                let (entry, handle) = try ctx.fs.create(parent: NodeID(rawValue: parent), name: name, flags: fi?.pointee.flags ?? 0)
                fi?.pointee.fh = handle
                var e = Reply.entryParameters(entry, ctx.cache)
                fuse_reply_create(req, &e, fi)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.write = { req, ino, buf, size, offset, fi in
            let ctx = Operations.context(req)
            ctx.trace("WRITE", ino, "size=\(size) offset=\(offset)")
            do throws(FSError) {
                let n = try ctx.fs.write(NodeID(rawValue: ino), handle: fi?.pointee.fh ?? 0, offset: UInt64(max(0, offset)),
                                         bytes: UnsafeRawBufferPointer(start: buf, count: size))
                fuse_reply_write(req, n)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.flush = { req, ino, fi in
            let ctx = Operations.context(req)
            ctx.trace("FLUSH", ino)
            do throws(FSError) {
                try ctx.fs.flush(handle: fi?.pointee.fh ?? 0)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.release = { req, ino, fi in
            let ctx = Operations.context(req)
            ctx.trace("RELEASE", ino)
            ctx.fs.release(handle: fi?.pointee.fh ?? 0)
            fuse_reply_err(req, 0)
        }
        ops.fsync = { req, ino, _, fi in
            let ctx = Operations.context(req)
            ctx.trace("FSYNC", ino)
            do throws(FSError) {
                try ctx.fs.fsync(NodeID(rawValue: ino), handle: fi?.pointee.fh)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.fsyncdir = { req, ino, _, _ in
            let ctx = Operations.context(req)
            ctx.trace("FSYNCDIR", ino)
            do throws(FSError) {
                try ctx.fs.fsyncDirectory(NodeID(rawValue: ino))
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.setattr = { req, ino, attr, toSet, fi in
            let ctx = Operations.context(req)
            ctx.trace("SETATTR", ino, "to_set=\(String(toSet, radix: 16))")
            let st = attr?.pointee ?? stat()
            let size = toSet & FUSE_SET_ATTR_SIZE != 0 ? UInt64(max(0, st.st_size)) : nil
            var modified: Int64?
            if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 { modified = Int64(time(nil)) } else if toSet & FUSE_SET_ATTR_MTIME != 0 { modified = Int64(st.st_mtim.tv_sec) }
            let mode = toSet & FUSE_SET_ATTR_MODE != 0 ? UInt32(st.st_mode) : nil
            let uid = toSet & FUSE_SET_ATTR_UID != 0 ? st.st_uid : nil
            let gid = toSet & FUSE_SET_ATTR_GID != 0 ? st.st_gid : nil
            do throws(FSError) {
                let a = try ctx.fs.setAttributes(NodeID(rawValue: ino), handle: fi?.pointee.fh, size: size, modified: modified,
                                                 mode: mode, uid: uid, gid: gid)
                Reply.attributes(req, a, ctx.cache)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.unlink = { req, parent, name in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("UNLINK", parent, name)
            do throws(FSError) {
                try ctx.fs.unlink(parent: NodeID(rawValue: parent), name: name)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            let ctx = Operations.context(req)
            let name = Operations.name(name), newName = Operations.name(newName)
            ctx.trace("RENAME", parent, "\(name) -> \(newParent)/\(newName) flags=\(flags)")
            do throws(FSError) {
                try ctx.fs.rename(parent: NodeID(rawValue: parent), name: name, newParent: NodeID(rawValue: newParent),
                                  newName: newName, flags: flags)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.mkdir = { req, parent, name, _ in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("MKDIR", parent, name)
            do throws(FSError) {
                Reply.entry(req, try ctx.fs.makeDimension(parent: NodeID(rawValue: parent), name: name), ctx.cache)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.rmdir = { req, parent, name in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("RMDIR", parent, name)
            do throws(FSError) {
                try ctx.fs.removeDimension(parent: NodeID(rawValue: parent), name: name)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.setxattr = { req, ino, name, value, size, _ in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("SETXATTR", ino, name)
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            do throws(FSError) {
                try ctx.fs.setExtendedAttribute(NodeID(rawValue: ino), name: name, value: bytes)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.removexattr = { req, ino, name in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("REMOVEXATTR", ino, name)
            do throws(FSError) {
                try ctx.fs.removeExtendedAttribute(NodeID(rawValue: ino), name: name)
                fuse_reply_err(req, 0)
            } catch {
                Reply.error(req, error)
            }
        }
        // Links, symlinks and device nodes have no place in a dimension.
        ops.link = { req, _, _, _ in fuse_reply_err(req, EPERM) }
        ops.symlink = { req, _, _, _ in fuse_reply_err(req, EPERM) }
        // mknod of a regular file (tar makes its files so) is a create without an open;
        // FIFOs, sockets and device nodes: EPERM.
        ops.mknod = { req, parent, name, mode, _ in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("MKNOD", parent, "\(name) mode=\(String(mode, radix: 8))")
            guard mode & S_IFMT == S_IFREG || mode & S_IFMT == 0 else { fuse_reply_err(req, EPERM); return }
            do throws(FSError) {
                let (entry, handle) = try ctx.fs.create(parent: NodeID(rawValue: parent), name: name, flags: O_WRONLY)
                ctx.fs.release(handle: handle)
                Reply.entry(req, entry, ctx.cache)
            } catch {
                Reply.error(req, error)
            }
        }
        // Not a sparse or preallocated file store: posix_fallocate falls back to writing.
        ops.fallocate = { req, _, _, _, _, _ in fuse_reply_err(req, EOPNOTSUPP) }
    }
}
