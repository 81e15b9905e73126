#ifndef LAYERFS_CLINUX_H
#define LAYERFS_CLINUX_H
// Linux calls Swift's Glibc module cannot reach: renameat2 sits behind _GNU_SOURCE (defined
// only in shim.c, so that this header does not change struct definitions other modules see),
// syslog is variadic, and the xattr and inotify headers are not part of the Glibc module.
#include <stdint.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/inotify.h>
#include <syslog.h>
#include <malloc.h>

int layerfs_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int layerfs_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
void layerfs_syslog(int priority, const char *message);

#endif
