/* Every fsync and fdatasync of the process takes SLOW_FSYNC_US microseconds longer: a disk whose flush is slow
 * (network block storage: commonly a few ms), on a VM whose own takes ~0.4 ms. Loaded with LD_PRELOAD by `bench.run
 * --fsync-delay-ms`, built by bench/slow_fsync.py. SQLite (synchronous = FULL) flushes its log at every commit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static void slow(void) {
    const char *us = getenv("SLOW_FSYNC_US");
    if (us != NULL) usleep((useconds_t)atoi(us));
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int done = real(fd);
    slow();
    return done;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int done = real(fd);
    slow();
    return done;
}
