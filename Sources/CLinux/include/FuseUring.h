#ifndef LAYERFS_FUSE_URING_H
#define LAYERFS_FUSE_URING_H
// FUSE over io_uring (kernel 6.14+, module parameter fuse.enable_uring): the daemon registers
// ring entries per CPU and the kernel hands each request to the queue of the CPU that made it.
// libfuse 3.14 does not drive it; this transport sits under libfuse's fuse_session_custom_io:
// requests taken from the rings are given to fuse_session_process_buf (through `process`),
// and the custom writev routes each reply to the ring entry its request came from. Raw
// syscalls, no liburing: a few hundred lines, and no new dependency to install.
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct layerfs_uring;

// Called on a queue's thread with one request in /dev/fuse's format (valid until it returns).
typedef void (*layerfs_uring_process_fn)(void *cookie, void *request, size_t length);
// Progress and failures, once each (level: 0 info, 1 warning).
typedef void (*layerfs_uring_log_fn)(void *cookie, int level, const char *message);

// Sets up `per_cpu` io_urings (one thread and one entry each) per possible CPU for `fuse_fd`
// (nothing is registered before INIT).
// NULL when the kernel parameter is off or a ring cannot be created; `why` says which.
struct layerfs_uring *layerfs_uring_create(int fuse_fd, unsigned per_cpu, layerfs_uring_process_fn process,
                                           layerfs_uring_log_fn log, void *cookie, char *why, size_t why_len);
// The custom io's read: a plain read, noting INIT's unique.
ssize_t layerfs_uring_read(struct layerfs_uring *u, int fd, void *buf, size_t len);
// The custom io's writev: a reply to a ring request goes into its entry; INIT's reply gains
// FUSE_OVER_IO_URING and, once the kernel has it, the queues register; anything else goes
// to the device.
ssize_t layerfs_uring_writev(struct layerfs_uring *u, int fd, const struct iovec *iov, int count);
// 1 once every queue registered, 0 before, -errno when registration failed (then /dev/fuse
// serves everything).
int layerfs_uring_state(struct layerfs_uring *u);
// Requests served through the rings.
uint64_t layerfs_uring_served(struct layerfs_uring *u);
// After the session loop ended (the connection is gone): waits up to `timeout_ms` for the
// queue threads, then frees what they no longer use.
void layerfs_uring_stop(struct layerfs_uring *u, int timeout_ms);

#endif
