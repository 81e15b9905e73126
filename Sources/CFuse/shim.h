// FUSE_USE_VERSION must come before the header, or fuse_common.h stops with #error.
// _FILE_OFFSET_BITS is deliberately not defined here (Swift would then see two statvfs).
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>
