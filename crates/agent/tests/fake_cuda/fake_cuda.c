/*
 * A test double of the CUDA driver API (libcuda.so.1) for the agent's
 * tests on machines without an NVIDIA driver: the symbols the agent binds,
 * with the C prototypes of cuda.h, over two GPUs whose UUIDs are the fake
 * NVML's GPU 0 and GPU 1. Each GPU's memory is a host buffer of 64 MiB,
 * 62 MiB of it free (the rest the "driver's"), all of it holding the last
 * tenant's bytes (0xab) until something writes it.
 *
 * fake_cuda_residue(device) counts the bytes of a GPU's memory that are
 * not zero (the driver's part included), for the tests to check what the
 * agent left behind, without the agent's own read back.
 *
 * Built with -DIGNORE_MEMSET its memsets change nothing (a broken
 * driver); with -DSTINGY it gives out at most half the free memory; with
 * -DNOT_READY=N a context is refused N times as an NVSwitch system's is
 * until its fabric is ready (CUDA_ERROR_SYSTEM_NOT_READY); with -DHANG its
 * memsets never return.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;
typedef struct {
    char bytes[16];
} CUuuid;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_SYSTEM_NOT_READY 802

#define MIB (1024ULL * 1024ULL)
#define TOTAL (64 * MIB)
#define DRIVERS (2 * MIB)
/* Device addresses: GPU d's memory starts at (d + 1) << 40. */
#define BASE(d) ((CUdeviceptr)(d + 1) << 40)

struct gpu {
    unsigned char *mem;
    unsigned long long used; /* bump allocator over the free part */
    int blocks;              /* live allocations */
    int retained;
};

static struct gpu gpus[2];
static int initialized;
static int current = -1;

static struct gpu *gpu_of(CUdeviceptr p, unsigned long long n, unsigned long long *off) {
    for (int d = 0; d < 2; d++) {
        if (p >= BASE(d) && p + n <= BASE(d) + TOTAL) {
            *off = p - BASE(d);
            return &gpus[d];
        }
    }
    return 0;
}

CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (!initialized) {
        for (int d = 0; d < 2; d++) {
            gpus[d].mem = malloc(TOTAL);
            memset(gpus[d].mem, 0xab, TOTAL);
        }
        initialized = 1;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    *count = 2;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
    if (ordinal < 0 || ordinal > 1) return CUDA_ERROR_INVALID_DEVICE;
    /* CUDA's order is not NVML's: device 0 is NVML's GPU 1. */
    *dev = 1 - ordinal;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) {
    if (dev < 0 || dev > 1) return CUDA_ERROR_INVALID_DEVICE;
    /* GPU-fa4e0000-0000-0000-0000-00000000000<dev> */
    memset(uuid->bytes, 0, 16);
    uuid->bytes[0] = (char)0xfa;
    uuid->bytes[1] = 0x4e;
    uuid->bytes[15] = (char)dev;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) {
    return cuDeviceGetUuid(uuid, dev);
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev) {
    if (dev < 0 || dev > 1) return CUDA_ERROR_INVALID_DEVICE;
#ifdef NOT_READY
    static int refused;
    if (refused++ < NOT_READY) return CUDA_ERROR_SYSTEM_NOT_READY;
#endif
    gpus[dev].retained++;
    *ctx = &gpus[dev];
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    if (dev < 0 || dev > 1 || gpus[dev].retained == 0) return CUDA_ERROR_INVALID_DEVICE;
    gpus[dev].retained--;
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
    current = ctx == 0 ? -1 : (int)((struct gpu *)ctx - gpus);
    return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    *free_bytes = TOTAL - DRIVERS - gpus[current].used;
    *total = TOTAL;
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    struct gpu *g = &gpus[current];
    unsigned long long limit = TOTAL - DRIVERS;
#ifdef STINGY
    limit /= 2;
#endif
    if (n == 0) return CUDA_ERROR_INVALID_VALUE;
    if (g->used + n > limit) return CUDA_ERROR_OUT_OF_MEMORY;
    *p = BASE(current) + DRIVERS + g->used;
    g->used += n;
    g->blocks++;
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
    unsigned long long off;
    struct gpu *g = gpu_of(p, 1, &off);
    if (!g || g->blocks == 0) return CUDA_ERROR_INVALID_VALUE;
    if (--g->blocks == 0) g->used = 0;
    return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) {
    unsigned long long off;
    struct gpu *g = gpu_of(p, n, &off);
    if (!g) return CUDA_ERROR_INVALID_VALUE;
#ifdef HANG
    for (;;) pause();
#endif
#ifndef IGNORE_MEMSET
    memset(g->mem + off, v, n);
#endif
    return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr p, size_t n) {
    unsigned long long off;
    struct gpu *g = gpu_of(p, n, &off);
    if (!g) return CUDA_ERROR_INVALID_VALUE;
    memcpy(dst, g->mem + off, n);
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
    return current < 0 ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
}

/* Not CUDA's: for the tests. */
unsigned long long fake_cuda_residue(int dev) {
    unsigned long long n = 0;
    for (unsigned long long i = 0; i < TOTAL; i++) n += gpus[dev].mem[i] != 0;
    return n;
}

int fake_cuda_retained(int dev) {
    return gpus[dev].retained;
}
