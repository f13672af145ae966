#include "CAllocator.h"

#if defined(__linux__)
#include <malloc.h>  /* also defines __GLIBC__ when the C library is glibc */
#endif

void backstop_tune_allocator(int threshold_bytes, int arenas) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, threshold_bytes);
    mallopt(M_TRIM_THRESHOLD, threshold_bytes);
    mallopt(M_ARENA_MAX, arenas);
#else
    (void)threshold_bytes;
    (void)arenas;
#endif
}

__attribute__((constructor)) static void backstop_tune_allocator_at_start(void) {
    backstop_tune_allocator(128 * 1024, 2);
}
