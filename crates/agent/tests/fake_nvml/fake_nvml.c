/*
 * A test double of NVML (libnvidia-ml.so.1) for the agent's tests on
 * machines without an NVIDIA driver: the symbols the agent binds, with the
 * C prototypes and struct layouts of nvml.h, over three fixed GPUs.
 *
 *   GPU 0: healthy (no ECC errors, no row remap), serial not supported.
 *   GPU 1: 3 uncorrectable volatile ECC errors and a pending row remap.
 *   GPU 2: lost (NVML_ERROR_GPU_IS_LOST when opened).
 *
 * Critical Xid events: the first wait on an event set gets Xid 13 (an
 * application's) on GPU 0, the second Xid 79 (fallen off the bus) on GPU 1,
 * later ones time out.
 *
 * NVLink: GPUs 0 and 1 have 18 links, GPU 1's links 4 and 11 down (and
 * errors counted on link 4).
 *
 * Built with -DNO_READINGS it lacks the optional readings (temperature,
 * power, utilization, ECC, row remapping, NVLink) and the events, as an
 * old driver would.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef unsigned int nvmlReturn_t;
typedef struct fake_gpu *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_GPU_IS_LOST 15

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

struct fake_gpu {
    int index;
};

static struct fake_gpu gpus[3] = {{0}, {1}, {2}};
static int initialized;

static nvmlReturn_t copy(char *buf, unsigned int len, const char *s) {
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return NVML_SUCCESS;
}

static nvmlReturn_t check(nvmlDevice_t d) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (d == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { initialized = 1; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { initialized = 0; return NVML_SUCCESS; }

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) {
    return copy(v, len, "570.86.15-fake");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    *n = 3;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (i == 2) return NVML_ERROR_GPU_IS_LOST;
    if (i > 2) return NVML_ERROR_INVALID_ARGUMENT;
    *d = &gpus[i];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *v, unsigned int len) {
    nvmlReturn_t rc = check(d);
    return rc ? rc : copy(v, len, "NVIDIA H200 (fake)");
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *v, unsigned int len) {
    char u[64];
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    snprintf(u, sizeof u, "GPU-fa4e0000-0000-0000-0000-00000000000%d", d->index);
    return copy(v, len, u);
}

nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t d, char *v, unsigned int len) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (d->index == 0) return NVML_ERROR_NOT_SUPPORTED;
    return copy(v, len, "1650924060001");
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    m->total = 143771ULL << 20;
    m->used = (unsigned long long)(512 * (d->index + 1)) << 20;
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    memset(p, 0, sizeof *p);
    p->bus = 0x18 + 0x10 * d->index;
    snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", p->bus);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t d, char *v, unsigned int len) {
    nvmlReturn_t rc = check(d);
    return rc ? rc : copy(v, len, "96.00.A5.00.01");
}

#ifndef NO_READINGS
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, unsigned int sensor, unsigned int *t) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
    *t = 30 + d->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    *mw = 75000 + 1000 * d->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    u->gpu = 40 + d->index;
    u->memory = 7;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, unsigned int type, unsigned int counter,
                                         unsigned long long *n) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    /* Only the uncorrected (1) volatile (0) count is faked; the others are
       refused so a wrong argument shows as a missing reading. */
    if (type != 1 || counter != 0) return NVML_ERROR_INVALID_ARGUMENT;
    *n = d->index == 1 ? 3 : 0;
    return NVML_SUCCESS;
}

/* NVLink: 18 links on GPUs 0 and 1; GPU 1's links 4 and 11 are down.
   Links past the board's count are refused, as NVML does. */
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t d, unsigned int link, unsigned int *active) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (link >= 18) return NVML_ERROR_INVALID_ARGUMENT;
    *active = !(d->index == 1 && (link == 4 || link == 11));
    return NVML_SUCCESS;
}

/* NVLink error counters: GPU 1's link 4 replayed 7 times, recovered
   twice and saw 5 flit CRC errors and 1 data CRC error; the rest none. */
nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(nvmlDevice_t d, unsigned int link,
                                             unsigned int counter, unsigned long long *n) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (link >= 18) return NVML_ERROR_INVALID_ARGUMENT;
    if (counter > 4) return NVML_ERROR_INVALID_ARGUMENT;
    static const unsigned long long link4[5] = {7, 2, 5, 1, 0};
    *n = (d->index == 1 && link == 4) ? link4[counter] : 0;
    return NVML_SUCCESS;
}

/* ECC and MIG modes, current and pending (a reset applies pending): GPU 1
   was left with ECC off and MIG on by its tenant. */
static unsigned int ecc_now[3] = {1, 0, 1}, ecc_next[3] = {1, 0, 1};
static unsigned int mig_now[3] = {0, 1, 0}, mig_next[3] = {0, 1, 0};

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, unsigned int *now, unsigned int *next) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    *now = ecc_now[d->index];
    *next = ecc_next[d->index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetEccMode(nvmlDevice_t d, unsigned int on) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (on > 1) return NVML_ERROR_INVALID_ARGUMENT;
    ecc_next[d->index] = on;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *now, unsigned int *next) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    *now = mig_now[d->index];
    *next = mig_next[d->index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetMigMode(nvmlDevice_t d, unsigned int mode, nvmlReturn_t *activation) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (mode > 1) return NVML_ERROR_INVALID_ARGUMENT;
    mig_next[d->index] = mode;
    *activation = NVML_SUCCESS;
    return NVML_SUCCESS;
}

/* Not NVML: the test's stand-in for `nvidia-smi --gpu-reset`. */
void fake_nvml_reset(void) {
    for (int i = 0; i < 3; i++) {
        ecc_now[i] = ecc_next[i];
        mig_now[i] = mig_next[i];
    }
}

/* The pre-12.2 name only: the agent falls back to it. GPU 0 idles, GPU 1
   runs under its software power cap and thermal limit. */
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *r) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    *r = d->index == 1 ? 0x4 | 0x20 : 0x1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failed) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    *corr = 0;
    *unc = d->index == 1 ? 1 : 0;
    *pending = d->index == 1;
    *failed = 0;
    return NVML_SUCCESS;
}

typedef struct fake_set *nvmlEventSet_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

#define XID_CRITICAL 0x8ULL

struct fake_set {
    unsigned long long registered[3];
    int waits;
};

static struct fake_set the_set;

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    memset(&the_set, 0, sizeof the_set);
    *set = &the_set;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
    nvmlReturn_t rc = check(d);
    if (rc) return rc;
    if (set != &the_set) return NVML_ERROR_INVALID_ARGUMENT;
    set->registered[d->index] |= types;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int ms) {
    struct timespec t = {0, 20 * 1000 * 1000};
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (set != &the_set) return NVML_ERROR_INVALID_ARGUMENT;
    int n = set->waits++;
    int gpu = n == 0 ? 0 : 1;
    if (n < 2 && (set->registered[gpu] & XID_CRITICAL)) {
        memset(data, 0, sizeof *data);
        data->device = &gpus[gpu];
        data->eventType = XID_CRITICAL;
        data->eventData = n == 0 ? 13 : 79;
        return NVML_SUCCESS;
    }
    if (ms < 20) t.tv_nsec = (long)ms * 1000 * 1000;
    nanosleep(&t, NULL);
    return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    return set == &the_set ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
#endif
