/*
 * open + read 4 KiB + close latency, for scripts/bench.sh.
 *
 *   bench_latency DIR COUNT PASSES
 *
 * Times open(DIR/layer-NNN, O_RDONLY), one read of 4096 bytes, close, for NNN = 1..COUNT
 * (at least three digits, the names both the source tree and the mounts use), PASSES times
 * over the same files. The paths are built here rather than read from the directory, so a
 * first pass on a fresh mount looks every name up cold (no READDIRPLUS has primed anything).
 * Prints one line per pass: "PASS p50_us p99_us max_us". Exits 1 on any failed call.
 *
 * Build: gcc -O2 -o bench_latency bench_latency.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nearest-rank percentile of a sorted array. */
static double percentile_us(const uint64_t *sorted, long n, double p) {
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR COUNT PASSES\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long count = strtol(argv[2], NULL, 10), passes = strtol(argv[3], NULL, 10);
    if (count < 1 || passes < 1) {
        fprintf(stderr, "COUNT and PASSES must be positive\n");
        return 2;
    }
    char **paths = calloc((size_t)count, sizeof *paths);
    uint64_t *samples = calloc((size_t)count, sizeof *samples);
    static char buffer[4096] __attribute__((aligned(4096)));
    if (!paths || !samples) return 1;
    for (long i = 0; i < count; i++) {
        if (asprintf(&paths[i], "%s/layer-%03ld", dir, i + 1) < 0) return 1;
    }
    for (long pass = 1; pass <= passes; pass++) {
        for (long i = 0; i < count; i++) {
            uint64_t t0 = now_ns();
            int fd = open(paths[i], O_RDONLY);
            if (fd < 0) {
                fprintf(stderr, "open %s: %s\n", paths[i], strerror(errno));
                return 1;
            }
            ssize_t n = read(fd, buffer, sizeof buffer);
            if (n < 0) {
                fprintf(stderr, "read %s: %s\n", paths[i], strerror(errno));
                return 1;
            }
            close(fd);
            samples[i] = now_ns() - t0;
        }
        qsort(samples, (size_t)count, sizeof *samples, compare);
        printf("%ld %.2f %.2f %.2f\n", pass, percentile_us(samples, count, 50),
               percentile_us(samples, count, 99), (double)samples[count - 1] / 1000.0);
    }
    return 0;
}
