#ifndef LAYERFS_CLINUX_H
#define LAYERFS_CLINUX_H
// Linux calls Swift's Glibc module cannot reach: renameat2 and copy_file_range sit behind
// _GNU_SOURCE (defined only in shim.c, so that this header does not change struct definitions
// other modules see), syslog is variadic, and the xattr and inotify headers are not part of
// the Glibc module.
#include <stdint.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/inotify.h>
#include <syslog.h>
#include <malloc.h>
#include "FuseUring.h"

int layerfs_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int layerfs_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
void layerfs_syslog(int priority, const char *message);
// copy_file_range(2) with both offsets given (the descriptors' own offsets are left alone).
// Returns the bytes copied, 0 at the end of the source, -1 with errno set.
int64_t layerfs_copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len);
// memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING, and sealing such a file against any
// further change (F_SEAL_WRITE and friends): a private, immutable copy of a region.
int layerfs_memfd_sealed_copy(const char *name);
int layerfs_seal_readonly(int fd);

#endif
