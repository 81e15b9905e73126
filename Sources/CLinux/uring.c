// FUSE over io_uring, driven through raw syscalls (see FuseUring.h for the why).
//
// The Debian headers here are 6.1's: io_uring's SQE128 and URING_CMD are there, FUSE's ring
// ABI (kernel 6.14, FUSE 7.42) is not, so its few definitions are written out below from the
// kernel's uapi documentation of include/uapi/linux/fuse.h.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include "FuseUring.h"

// --- FUSE's ring ABI (uapi fuse.h, 7.42) ---
#define LFS_FUSE_OVER_IO_URING_FLAGS2 (1u << 9) // FUSE_OVER_IO_URING is 1ULL << 41: bit 9 of flags2
#define LFS_FUSE_INIT_EXT (1u << 30)
#define LFS_FUSE_MAX_PAGES (1u << 22)
#define LFS_FUSE_INIT_OPCODE 26
enum { LFS_URING_CMD_REGISTER = 1, LFS_URING_CMD_COMMIT_AND_FETCH = 2 };

struct lfs_uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id; // the request's unique, given back on commit
    uint32_t payload_sz; // bytes used in the payload buffer, both ways
    uint32_t padding;
    uint64_t reserved;
};

struct lfs_uring_req_header {
    char in_out[128]; // fuse_in_header on the way in, fuse_out_header on the way out
    char op_in[128]; // the operation's fixed argument (fuse_read_in...)
    struct lfs_uring_ent_in_out ring_ent_in_out;
};

struct lfs_uring_cmd_req { // in the SQE's command area (hence SQE128)
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

_Static_assert(sizeof(struct lfs_uring_req_header) == 288, "fuse_uring_req_header layout");
_Static_assert(sizeof(struct lfs_uring_cmd_req) == 24, "fuse_uring_cmd_req layout");
_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header layout");
_Static_assert(sizeof(struct fuse_init_out) == 64, "fuse_init_out layout");

#define SQE_SIZE 128

struct entry {
    struct queue *q;
    struct lfs_uring_req_header *headers;
    char *payload;
    char *request; // the request rebuilt in /dev/fuse's layout for libfuse
    struct iovec iov[2];
    _Atomic uint64_t unique; // non-zero while its request is with the daemon
    bool live;
};

struct queue {
    struct layerfs_uring *u;
    unsigned qid;
    int ring_fd;
    void *sq_map, *cq_map, *sqe_map;
    size_t sq_len, cq_len, sqe_len;
    _Atomic unsigned *sq_tail;
    unsigned sq_mask;
    _Atomic unsigned *cq_head, *cq_tail;
    unsigned cq_mask;
    struct io_uring_cqe *cqes;
    pthread_mutex_t sq_lock;
    pthread_t thread;
    bool started;
    struct entry *entries;
};

struct layerfs_uring {
    int fuse_fd;
    unsigned ncpu, per_cpu; // the kernel's queues (one per possible CPU), rings per queue
    unsigned nq, depth; // rings (ncpu * per_cpu), entries per ring (1: see layerfs_uring_create)
    struct queue *queues;
    layerfs_uring_process_fn process;
    layerfs_uring_log_fn log;
    void *cookie;
    size_t payload_size;
    _Atomic uint64_t init_unique;
    _Atomic bool init_offered; // the kernel's INIT offered FUSE_OVER_IO_URING
    _Atomic int state;
    _Atomic unsigned registered;
    _Atomic uint64_t served;
    pthread_mutex_t lock;
    pthread_cond_t exited_cond;
    unsigned exited;
};

// The queue whose thread is running, and the COMMIT SQEs it queued but did not submit yet:
// a reply written on the queue's own thread rides on its next io_uring_enter.
static __thread struct queue *current_queue;
static __thread unsigned current_pending;

static void say(struct layerfs_uring *u, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(struct layerfs_uring *u, int level, const char *fmt, ...) {
    char message[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (u->log) u->log(u->cookie, level, message);
}

static int ring_enter(int fd, unsigned submit, unsigned wait, unsigned flags) {
    return (int)syscall(__NR_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}

static int queue_setup(struct queue *q, unsigned entries) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQE128;
    int fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (fd < 0) return -errno;
    q->ring_fd = fd;
    q->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    q->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (q->cq_len > q->sq_len) q->sq_len = q->cq_len;
        q->cq_len = q->sq_len;
    }
    q->sq_map = mmap(NULL, q->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (q->sq_map == MAP_FAILED) { q->sq_map = NULL; return -errno; }
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        q->cq_map = q->sq_map;
    } else {
        q->cq_map = mmap(NULL, q->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (q->cq_map == MAP_FAILED) { q->cq_map = NULL; return -errno; }
    }
    q->sqe_len = p.sq_entries * SQE_SIZE;
    q->sqe_map = mmap(NULL, q->sqe_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (q->sqe_map == MAP_FAILED) { q->sqe_map = NULL; return -errno; }
    char *sq = q->sq_map, *cq = q->cq_map;
    q->sq_tail = (_Atomic unsigned *)(sq + p.sq_off.tail);
    q->sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i; // slot i is SQE i, always
    q->cq_head = (_Atomic unsigned *)(cq + p.cq_off.head);
    q->cq_tail = (_Atomic unsigned *)(cq + p.cq_off.tail);
    q->cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
    q->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

// Queues one URING_CMD SQE (not submitted). An entry has at most one SQE in flight and the
// SQ has room for all of a queue's entries, so the ring cannot be full.
static void queue_cmd(struct queue *q, uint32_t op, uint64_t user_data, struct entry *e, uint64_t commit_id,
                      uint16_t qid) {
    pthread_mutex_lock(&q->sq_lock);
    unsigned tail = atomic_load_explicit(q->sq_tail, memory_order_relaxed);
    struct io_uring_sqe *sqe = (struct io_uring_sqe *)((char *)q->sqe_map + (size_t)(tail & q->sq_mask) * SQE_SIZE);
    memset(sqe, 0, SQE_SIZE);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = q->u->fuse_fd;
    sqe->cmd_op = op;
    sqe->user_data = user_data;
    if (e) {
        sqe->addr = (uint64_t)(uintptr_t)e->iov;
        sqe->len = 2;
    }
    struct lfs_uring_cmd_req req = { .flags = 0, .commit_id = commit_id, .qid = qid };
    memcpy(sqe->cmd, &req, sizeof req);
    atomic_store_explicit(q->sq_tail, tail + 1, memory_order_release);
    pthread_mutex_unlock(&q->sq_lock);
}

static size_t gather(const struct iovec *iov, int count, size_t skip, char *out, size_t cap, bool *overflow) {
    size_t done = 0;
    *overflow = false;
    for (int i = 0; i < count; i++) {
        const char *base = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (skip >= len) { skip -= len; continue; }
        base += skip; len -= skip; skip = 0;
        if (done + len > cap) { *overflow = true; len = cap - done; }
        memcpy(out + done, base, len);
        done += len;
        if (*overflow) break;
    }
    return done;
}

struct layerfs_uring *layerfs_uring_create(int fuse_fd, unsigned per_cpu, layerfs_uring_process_fn process,
                                           layerfs_uring_log_fn log, void *cookie, char *why, size_t why_len) {
    // Off: the kernel would not offer it in INIT; say so plainly rather than at INIT.
    char value = 0;
    int pfd = open("/sys/module/fuse/parameters/enable_uring", O_RDONLY | O_CLOEXEC);
    if (pfd < 0) {
        snprintf(why, why_len, "this kernel has no FUSE over io_uring (no fuse parameter enable_uring)");
        return NULL;
    }
    ssize_t got = read(pfd, &value, 1);
    close(pfd);
    if (got != 1 || value != 'Y') {
        snprintf(why, why_len, "the fuse module parameter enable_uring is off");
        return NULL;
    }
    long cpus = sysconf(_SC_NPROCESSORS_CONF); // the kernel makes one queue per possible CPU
    if (cpus < 1 || per_cpu < 1 || per_cpu > 64) {
        snprintf(why, why_len, "bad queue count (%ld) or threads per queue (%u)", cpus, per_cpu);
        return NULL;
    }
    struct layerfs_uring *u = calloc(1, sizeof *u);
    if (!u) { snprintf(why, why_len, "out of memory"); return NULL; }
    u->fuse_fd = fuse_fd;
    u->ncpu = (unsigned)cpus;
    u->per_cpu = per_cpu;
    u->nq = u->ncpu * per_cpu;
    // One entry per ring and thread. The kernel gives a request to any available entry of
    // its CPU's queue and delivers it as task work of the thread that armed the entry: a
    // thread holding a second, available entry while it serves the first would be given a
    // request it made itself (a handler touching its own mount, or a volume bound inside
    // it) and wait for it forever, uninterruptibly. With one entry each, the nested request
    // goes to another thread of the queue, or waits in the queue (killable).
    u->depth = 1;
    u->process = process;
    u->log = log;
    u->cookie = cookie;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->exited_cond, NULL);
    u->queues = calloc(u->nq, sizeof *u->queues);
    if (!u->queues) { snprintf(why, why_len, "out of memory"); free(u); return NULL; }
    for (unsigned i = 0; i < u->nq; i++) {
        struct queue *q = &u->queues[i];
        q->u = u;
        q->qid = i / per_cpu;
        q->ring_fd = -1;
        pthread_mutex_init(&q->sq_lock, NULL);
        int err = queue_setup(q, 4);
        if (err) {
            snprintf(why, why_len, "io_uring_setup for queue %u: %s", i, strerror(-err));
            layerfs_uring_stop(u, 0);
            return NULL;
        }
    }
    return u;
}

ssize_t layerfs_uring_read(struct layerfs_uring *u, int fd, void *buf, size_t len) {
    ssize_t n = read(fd, buf, len);
    if (n >= (ssize_t)(sizeof(struct fuse_in_header) + 20) && atomic_load(&u->init_unique) == 0) {
        const struct fuse_in_header *in = buf;
        if (in->opcode == LFS_FUSE_INIT_OPCODE) {
            const struct fuse_init_in *init = (const void *)(in + 1);
            bool offered = (init->flags & LFS_FUSE_INIT_EXT) && (init->flags2 & LFS_FUSE_OVER_IO_URING_FLAGS2);
            atomic_store(&u->init_offered, offered);
            atomic_store(&u->init_unique, in->unique);
        }
    }
    return n;
}

// After a failure past INIT: the kernel holds every request until the ring is complete, or
// until a registration fails. Send one that must fail (a queue id out of range), so that the
// connection falls back to /dev/fuse rather than waiting for queues that will never come.
static void abandon(struct layerfs_uring *u, int err, const char *where) {
    int expected = 0;
    atomic_compare_exchange_strong(&u->state, &expected, err);
    struct queue *q = &u->queues[0];
    queue_cmd(q, LFS_URING_CMD_REGISTER, UINT64_MAX, NULL, 0, UINT16_MAX);
    ring_enter(q->ring_fd, 1, 0, 0);
    say(u, 1, "io_uring: %s: %s; requests go through /dev/fuse", where, strerror(-err));
}

static void serve(struct queue *q, struct entry *e) {
    struct layerfs_uring *u = q->u;
    const struct fuse_in_header *in = (const void *)e->headers->in_out;
    uint32_t payload = e->headers->ring_ent_in_out.payload_sz;
    size_t total = in->len;
    // The kernel splits a request into its header, the operation's fixed argument and the
    // rest; libfuse wants them back to back.
    if (total < sizeof *in + (size_t)payload || total - sizeof *in - payload > sizeof e->headers->op_in ||
        payload > u->payload_size) {
        struct fuse_out_header out = { .len = sizeof out, .error = -EIO, .unique = in->unique };
        memcpy(e->headers->in_out, &out, sizeof out);
        e->headers->ring_ent_in_out.payload_sz = 0;
        queue_cmd(q, LFS_URING_CMD_COMMIT_AND_FETCH, (uint64_t)(e - q->entries), e, in->unique, (uint16_t)q->qid);
        current_pending++;
        return;
    }
    size_t op = total - sizeof *in - payload;
    memcpy(e->request, in, sizeof *in);
    memcpy(e->request + sizeof *in, e->headers->op_in, op);
    memcpy(e->request + sizeof *in + op, e->payload, payload);
    atomic_store(&e->unique, in->unique);
    atomic_fetch_add_explicit(&u->served, 1, memory_order_relaxed);
    u->process(u->cookie, e->request, total);
}

static void *queue_thread(void *arg) {
    struct queue *q = arg;
    struct layerfs_uring *u = q->u;
    current_queue = q;
    current_pending = 0;
    // Served on the CPU whose requests this queue receives: the point of the transport.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(q->qid, &set);
    sched_setaffinity(0, sizeof set, &set);

    unsigned live = 0;
    int failure = 0;
    for (unsigned i = 0; i < u->depth; i++) {
        struct entry *e = &q->entries[i];
        queue_cmd(q, LFS_URING_CMD_REGISTER, i, e, 0, (uint16_t)q->qid);
        e->live = true;
        live++;
    }
    if (ring_enter(q->ring_fd, u->depth, 0, 0) < 0) failure = -errno;
    // A refused registration completes at once; an accepted one only when a request comes.
    for (;;) {
        unsigned head = atomic_load_explicit(q->cq_head, memory_order_relaxed);
        if (head == atomic_load_explicit(q->cq_tail, memory_order_acquire)) break;
        struct io_uring_cqe *cqe = &q->cqes[head & q->cq_mask];
        // A request already (the other queues were complete): left for the loop below.
        if (cqe->res >= 0) break;
        if (!failure) failure = cqe->res;
        if (cqe->user_data < u->depth && q->entries[cqe->user_data].live) {
            q->entries[cqe->user_data].live = false;
            live--;
        }
        atomic_store_explicit(q->cq_head, head + 1, memory_order_release);
    }
    if (failure) {
        int expected = 0;
        atomic_compare_exchange_strong(&u->state, &expected, failure);
        say(u, 1, "io_uring: registering on queue %u refused: %s; requests go through /dev/fuse", q->qid,
            strerror(-failure));
    } else if (atomic_fetch_add(&u->registered, 1) + 1 == u->nq) {
        int expected = 0;
        atomic_compare_exchange_strong(&u->state, &expected, 1);
        say(u, 0, "io_uring: in use, %u queues of %u threads, payload %zu bytes", u->ncpu, u->per_cpu, u->payload_size);
    }

    while (live > 0) {
        unsigned submit = current_pending;
        current_pending = 0;
        int r = ring_enter(q->ring_fd, submit, 1, IORING_ENTER_GETEVENTS);
        if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
            say(u, 1, "io_uring: queue %u: io_uring_enter: %s", q->qid, strerror(errno));
            break;
        }
        for (;;) {
            unsigned head = atomic_load_explicit(q->cq_head, memory_order_relaxed);
            if (head == atomic_load_explicit(q->cq_tail, memory_order_acquire)) break;
            struct io_uring_cqe cqe = q->cqes[head & q->cq_mask];
            atomic_store_explicit(q->cq_head, head + 1, memory_order_release);
            if (cqe.user_data >= u->depth) continue;
            struct entry *e = &q->entries[cqe.user_data];
            if (cqe.res < 0) {
                // The connection ended (ENOTCONN), or the kernel refused a commit.
                if (e->live) { e->live = false; live--; }
                if (cqe.res != -ENOTCONN && cqe.res != -ECANCELED && cqe.res != -ECONNABORTED)
                    say(u, 1, "io_uring: queue %u: entry ended: %s", q->qid, strerror(-cqe.res));
                continue;
            }
            serve(q, e);
        }
    }
    pthread_mutex_lock(&u->lock);
    u->exited++;
    pthread_cond_broadcast(&u->exited_cond);
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

static int queue_allocate(struct queue *q) {
    struct layerfs_uring *u = q->u;
    q->entries = calloc(u->depth, sizeof *q->entries);
    if (!q->entries) return -ENOMEM;
    for (unsigned i = 0; i < u->depth; i++) {
        struct entry *e = &q->entries[i];
        e->q = q;
        e->headers = aligned_alloc(4096, 4096);
        e->payload = mmap(NULL, u->payload_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        e->request = malloc(sizeof(struct fuse_in_header) + 128 + u->payload_size);
        if (e->payload == MAP_FAILED) e->payload = NULL;
        if (!e->headers || !e->payload || !e->request) return -ENOMEM;
        memset(e->headers, 0, sizeof *e->headers);
        e->iov[0] = (struct iovec){ e->headers, sizeof *e->headers };
        e->iov[1] = (struct iovec){ e->payload, u->payload_size };
    }
    return 0;
}

// INIT's reply is out and the kernel took FUSE_OVER_IO_URING: register every queue.
static void start_queues(struct layerfs_uring *u) {
    for (unsigned i = 0; i < u->nq; i++) {
        struct queue *q = &u->queues[i];
        int err = queue_allocate(q);
        if (err) { abandon(u, err, "allocating ring entries"); return; }
    }
    for (unsigned i = 0; i < u->nq; i++) {
        struct queue *q = &u->queues[i];
        int err = pthread_create(&q->thread, NULL, queue_thread, q);
        if (err) { abandon(u, -err, "starting a queue thread"); return; }
        q->started = true;
    }
}

static ssize_t write_init_reply(struct layerfs_uring *u, int fd, const struct iovec *iov, int count) {
    struct {
        struct fuse_out_header h;
        struct fuse_init_out init;
    } reply;
    memset(&reply, 0, sizeof reply);
    bool overflow;
    size_t len = gather(iov, count, 0, (char *)&reply, sizeof reply, &overflow);
    size_t needed = sizeof reply.h + offsetof(struct fuse_init_out, flags2) + sizeof reply.init.flags2;
    if (overflow || len < needed || reply.h.error != 0 || !atomic_load(&u->init_offered)) {
        if (!atomic_load(&u->init_offered))
            say(u, 1, "io_uring: the kernel's INIT did not offer FUSE_OVER_IO_URING; requests go through /dev/fuse");
        atomic_store(&u->state, -EOPNOTSUPP);
        return writev(fd, iov, count);
    }
    reply.init.flags |= LFS_FUSE_INIT_EXT;
    reply.init.flags2 |= LFS_FUSE_OVER_IO_URING_FLAGS2;
    uint32_t max_pages = (reply.init.flags & LFS_FUSE_MAX_PAGES) && reply.init.max_pages ? reply.init.max_pages : 32;
    size_t payload = 8192;
    if (reply.init.max_write > payload) payload = reply.init.max_write;
    if ((size_t)max_pages * 4096 > payload) payload = (size_t)max_pages * 4096;
    u->payload_size = payload;
    ssize_t n = write(fd, &reply, len);
    if (n < 0) return n;
    // The kernel handled the reply inside write(): registration is accepted from now on.
    start_queues(u);
    return n;
}

ssize_t layerfs_uring_writev(struct layerfs_uring *u, int fd, const struct iovec *iov, int count) {
    if (count < 1 || iov[0].iov_len < sizeof(struct fuse_out_header)) return writev(fd, iov, count);
    struct fuse_out_header out;
    memcpy(&out, iov[0].iov_base, sizeof out);
    if (out.unique == 0) return writev(fd, iov, count); // notifications: the device only
    uint64_t init = atomic_load(&u->init_unique);
    if (init != 0 && out.unique == init) return write_init_reply(u, fd, iov, count);
    struct entry *e = NULL;
    if (u->payload_size) {
        for (unsigned i = 0; i < u->nq && !e; i++) {
            struct queue *q = &u->queues[i];
            if (!q->entries) continue;
            for (unsigned j = 0; j < u->depth; j++) {
                uint64_t unique = out.unique;
                if (atomic_compare_exchange_strong(&q->entries[j].unique, &unique, 0)) { e = &q->entries[j]; break; }
            }
        }
    }
    if (!e) return writev(fd, iov, count); // a request that came through /dev/fuse
    struct queue *q = e->q;
    bool overflow;
    size_t body = gather(iov, count, sizeof out, e->payload, u->payload_size, &overflow);
    if (overflow) {
        out.error = -EIO;
        body = 0;
    }
    out.len = (uint32_t)(sizeof out + body);
    memcpy(e->headers->in_out, &out, sizeof out);
    e->headers->ring_ent_in_out.payload_sz = (uint32_t)body;
    queue_cmd(q, LFS_URING_CMD_COMMIT_AND_FETCH, (uint64_t)(e - q->entries), e, out.unique, (uint16_t)q->qid);
    // On the entry's own thread (every layerfs reply is: handlers answer before returning),
    // the commit rides on the thread's next io_uring_enter. From another thread it is
    // submitted here, which makes that thread the entry's owner for the next request's
    // task work: fine for a thread that returns to user space, not for one that blocks.
    if (current_queue == q) {
        current_pending++;
    } else if (ring_enter(q->ring_fd, 1, 0, 0) < 0) {
        return -1;
    }
    if (overflow) { errno = EINVAL; return -1; }
    return (ssize_t)(sizeof out + body);
}

int layerfs_uring_state(struct layerfs_uring *u) { return atomic_load(&u->state); }

uint64_t layerfs_uring_served(struct layerfs_uring *u) { return atomic_load(&u->served); }

void layerfs_uring_stop(struct layerfs_uring *u, int timeout_ms) {
    if (!u) return;
    unsigned started = 0;
    for (unsigned i = 0; i < u->nq; i++) started += u->queues[i].started;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&u->lock);
    while (u->exited < started) {
        if (pthread_cond_timedwait(&u->exited_cond, &u->lock, &deadline) == ETIMEDOUT) break;
    }
    bool all = u->exited >= started;
    pthread_mutex_unlock(&u->lock);
    if (!all) {
        // A thread still waits in the kernel: its buffers must stay; the process ends soon.
        say(u, 1, "io_uring: %u of %u queue threads still running at stop", started - u->exited, started);
        return;
    }
    for (unsigned i = 0; i < u->nq; i++) {
        struct queue *q = &u->queues[i];
        if (q->started) pthread_join(q->thread, NULL);
        if (q->sqe_map) munmap(q->sqe_map, q->sqe_len);
        if (q->cq_map && q->cq_map != q->sq_map) munmap(q->cq_map, q->cq_len);
        if (q->sq_map) munmap(q->sq_map, q->sq_len);
        if (q->ring_fd >= 0) close(q->ring_fd);
        if (q->entries) {
            for (unsigned j = 0; j < u->depth; j++) {
                struct entry *e = &q->entries[j];
                free(e->headers);
                if (e->payload) munmap(e->payload, u->payload_size);
                free(e->request);
            }
            free(q->entries);
        }
    }
    free(u->queues);
    free(u);
}
