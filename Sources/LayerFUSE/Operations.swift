import CFuse
import Glibc
import LayerFSCore
import Logging

/// The libfuse low-level operations table: thin C-callback trampolines. Each one finds the
/// context, makes one call into the core, and replies once. Closures here capture nothing
/// (so they convert to C function pointers); state comes from `fuse_req_userdata`.
enum Operations {
    static func context(_ req: fuse_req_t?) -> MountContext {
        Unmanaged<MountContext>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }

    static func name(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    static func make(writable: Bool = false) -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let userdata, let conn else { return }
            Unmanaged<MountContext>.fromOpaque(userdata).takeUnretainedValue().negotiate(conn)
        }
        ops.destroy = { userdata in
            guard let userdata else { return }
            Unmanaged<MountContext>.fromOpaque(userdata).takeUnretainedValue().logger.info("session ended")
        }
        ops.lookup = { req, parent, name in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("LOOKUP", parent, name)
            do throws(FSError) {
                Reply.entry(req, try ctx.fs.lookup(parent: NodeID(rawValue: parent), name: name), ctx.cache)
            } catch .notFound {
                Reply.negativeEntry(req, ctx.cache)
            } catch {
                Reply.error(req, error)
            }
        }
        // FORGET drops lookups; an old generation's mapping goes when its last one does.
        ops.forget = { req, ino, nlookup in
            let ctx = Operations.context(req)
            ctx.trace("FORGET", ino, "n=\(nlookup)")
            ctx.fs.forget(NodeID(rawValue: ino), count: nlookup)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            let ctx = Operations.context(req)
            ctx.observer.begin("BATCH_FORGET", 0)
            for i in 0..<count {
                guard let f = forgets?[i] else { continue }
                ctx.fs.forget(NodeID(rawValue: f.ino), count: f.nlookup)
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, _ in
            let ctx = Operations.context(req)
            ctx.trace("GETATTR", ino)
            do throws(FSError) {
                Reply.attributes(req, try ctx.fs.attributes(NodeID(rawValue: ino)), ctx.cache)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.open = { req, ino, fi in
            let ctx = Operations.context(req)
            let flags = fi?.pointee.flags ?? 0
            ctx.trace("OPEN", ino, "flags=\(String(flags, radix: 8))")
            do throws(FSError) {
                try ctx.fs.open(NodeID(rawValue: ino), flags: flags)
                if ctx.answersNoOpen {
                    // Turns OPEN and RELEASE off for the whole connection (see CachePolicy).
                    fuse_reply_err(req, ENOSYS)
                    return
                }
                fi?.pointee.keep_cache = ctx.cache.keepCache ? 1 : 0
                ctx.observer.opened(req, ino)
                fuse_reply_open(req, fi)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.read = { req, ino, size, offset, _ in
            let ctx = Operations.context(req)
            ctx.trace("READ", ino, "size=\(size) offset=\(offset)")
            do throws(FSError) {
                try ctx.fs.read(NodeID(rawValue: ino), offset: UInt64(max(0, offset)), size: size) { bytes in
                    // Straight from the mapping: libfuse hands the pointer to writev. If the
                    // region was truncated under us the kernel's copy fails (EFAULT) and the
                    // reader gets EIO; the daemon never touches the bytes itself.
                    ctx.observer.served(req, ino, bytes.count)
                    _ = fuse_reply_buf(req, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
                }
                ctx.prefetcher?.hint(NodeID(rawValue: ino), offset: offset, count: size)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.release = { req, _, _ in fuse_reply_err(req, 0) }
        ops.opendir = { req, ino, fi in
            let ctx = Operations.context(req)
            ctx.trace("OPENDIR", ino)
            do throws(FSError) {
                try ctx.fs.openDirectory(NodeID(rawValue: ino))
                if ctx.cache.cacheDirectories {
                    fi?.pointee.cache_readdir = 1
                    fi?.pointee.keep_cache = 1
                }
                fuse_reply_open(req, fi)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.readdir = { req, ino, size, offset, _ in
            Operations.context(req).readDirectory(req, ino, size: size, offset: offset, plus: false)
        }
        ops.readdirplus = { req, ino, size, offset, _ in
            Operations.context(req).readDirectory(req, ino, size: size, offset: offset, plus: true)
        }
        ops.releasedir = { req, _, _ in fuse_reply_err(req, 0) }
        ops.statfs = { req, _ in
            let ctx = Operations.context(req)
            ctx.trace("STATFS", 1)
            var st = Reply.fileSystemStatus(ctx.fs.statistics())
            fuse_reply_statfs(req, &st)
        }
        ops.getxattr = { req, ino, name, size in
            let ctx = Operations.context(req)
            let name = Operations.name(name)
            ctx.trace("GETXATTR", ino, name)
            do throws(FSError) {
                Reply.extendedAttribute(req, try ctx.fs.extendedAttribute(NodeID(rawValue: ino), name: name), size: size)
            } catch {
                Reply.error(req, error)
            }
        }
        ops.listxattr = { req, ino, size in
            let ctx = Operations.context(req)
            ctx.trace("LISTXATTR", ino)
            do throws(FSError) {
                Reply.extendedAttribute(req, try ctx.fs.extendedAttributeNames(NodeID(rawValue: ino)), size: size)
            } catch {
                Reply.error(req, error)
            }
        }
        // Everything that would change the filesystem: EROFS, even where the kernel's `ro`
        // would already have refused (defence in depth, and mounts made without `ro`).
        ops.setattr = { req, ino, _, _, _ in Operations.context(req).refuse(req, "SETATTR", ino) }
        ops.mknod = { req, parent, _, _, _ in Operations.context(req).refuse(req, "MKNOD", parent) }
        ops.mkdir = { req, parent, _, _ in Operations.context(req).refuse(req, "MKDIR", parent) }
        ops.unlink = { req, parent, _ in Operations.context(req).refuse(req, "UNLINK", parent) }
        ops.rmdir = { req, parent, _ in Operations.context(req).refuse(req, "RMDIR", parent) }
        ops.symlink = { req, _, parent, _ in Operations.context(req).refuse(req, "SYMLINK", parent) }
        ops.rename = { req, parent, _, _, _, _ in Operations.context(req).refuse(req, "RENAME", parent) }
        ops.link = { req, ino, _, _ in Operations.context(req).refuse(req, "LINK", ino) }
        ops.write = { req, ino, _, _, _, _ in Operations.context(req).refuse(req, "WRITE", ino) }
        ops.create = { req, parent, _, _, _ in Operations.context(req).refuse(req, "CREATE", parent) }
        ops.setxattr = { req, ino, _, _, _, _ in Operations.context(req).refuse(req, "SETXATTR", ino) }
        ops.removexattr = { req, ino, _ in Operations.context(req).refuse(req, "REMOVEXATTR", ino) }
        ops.fallocate = { req, ino, _, _, _, _ in Operations.context(req).refuse(req, "FALLOCATE", ino) }
        if writable { WriteOperations.install(&ops) }
        return ops
    }
}
