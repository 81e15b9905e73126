/*
 * Random 4 KiB reads, for scripts/bench.sh when fio is not installed.
 *
 *   bench_randread FILE PROCESSES READS_PER_PROCESS
 *
 * Each of PROCESSES forked processes opens FILE and preads READS_PER_PROCESS blocks of 4096
 * bytes at random 4096-aligned offsets (a fixed seed per process, so every run and every
 * filesystem sees the same offsets), with POSIX_FADV_RANDOM like fio's default. Prints the
 * total in thousands of reads per second over the wall time of all processes. Exits 1 on
 * any failed call.
 *
 * Build: gcc -O2 -o bench_randread bench_randread.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t next(uint64_t *state) {   /* xorshift64* */
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int reader(const char *path, long reads, uint64_t seed) {
    static char buffer[4096] __attribute__((aligned(4096)));
    int fd = open(path, O_RDONLY);
    if (fd < 0) { fprintf(stderr, "open %s: %s\n", path, strerror(errno)); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 4096) { fprintf(stderr, "%s: too small\n", path); return 1; }
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    uint64_t blocks = (uint64_t)st.st_size / 4096, state = seed;
    for (long i = 0; i < reads; i++) {
        off_t offset = (off_t)(next(&state) % blocks) * 4096;
        if (pread(fd, buffer, sizeof buffer, offset) != (ssize_t)sizeof buffer) {
            fprintf(stderr, "pread %s at %lld: %s\n", path, (long long)offset, strerror(errno));
            return 1;
        }
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILE PROCESSES READS_PER_PROCESS\n", argv[0]);
        return 2;
    }
    long processes = strtol(argv[2], NULL, 10), reads = strtol(argv[3], NULL, 10);
    if (processes < 1 || reads < 1) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long p = 0; p < processes; p++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) _exit(reader(argv[1], reads, 0x9E3779B97F4A7C15ULL * (uint64_t)(p + 1)));
    }
    int failed = 0, status;
    while (wait(&status) > 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (failed) return 1;
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.3f\n", (double)processes * (double)reads / seconds / 1000.0);
    return 0;
}
