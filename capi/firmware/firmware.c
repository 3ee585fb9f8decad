/* A bare-metal C firmware for QEMU mps2-an386 that links libdgen.a (built for
 * thumbv7em-none-eabihf) and prints, through semihosting, the checksum lines of
 * `firmware-sim --checksums`: digits 0-9, image k from seed 42 + k.
 *
 * No C library: startup, semihosting and number formatting are below. Build and run:
 * capi/firmware/run.sh. */
#include <stddef.h>
#include <stdint.h>

#include "dgen.h"

/* ---- semihosting ---- */
#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void put(const char *s) { semihost(SYS_WRITE0, s); }

static _Noreturn void quit(int ok) {
    semihost(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT
                                                    : ADP_STOPPED_RUN_TIME_ERROR));
    for (;;) {
    }
}

/* Appends the decimal digits of v to *p. */
static void put_dec(char **p, uint32_t v) {
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *(*p)++ = tmp[--n];
    }
}

static void put_str(char **p, const char *s) {
    while (*s) {
        *(*p)++ = *s++;
    }
}

static uint32_t fnv1a32(const uint8_t *bytes, size_t len) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ bytes[i]) * 0x01000193u;
    }
    return h;
}

static uint8_t arena[DGEN_MAX_ARENA_BYTES];
static uint8_t image[DGEN_IMAGE_PIXELS];

static int run(void) {
    size_t len = 0;
    const uint8_t *model = dgen_default_model(&len);
    int32_t need = dgen_arena_bytes(model, len);
    if (need < 0 || (size_t)need > sizeof arena) {
        put("model rejected: ");
        put(dgen_error_message(need));
        put("\n");
        return 0;
    }
    if (dgen_generate(model, len, 10, 0, image, arena, sizeof arena) != DGEN_ERR_INVALID_DIGIT ||
        dgen_generate(model, len, 1, 0, image, arena, (size_t)need - 1) !=
            DGEN_ERR_ARENA_TOO_SMALL) {
        put("error codes differ from the header's\n");
        return 0;
    }
    for (uint32_t k = 0; k < 10; k++) {
        uint32_t seed = 42 + k;
        int32_t rc = dgen_generate(model, len, (uint8_t)k, seed, image, arena, sizeof arena);
        if (rc != DGEN_OK) {
            put("dgen_generate: ");
            put(dgen_error_message(rc));
            put("\n");
            return 0;
        }
        char line[64], *p = line;
        uint32_t h = fnv1a32(image, sizeof image);
        put_str(&p, "digit ");
        put_dec(&p, k);
        put_str(&p, " seed ");
        put_dec(&p, seed);
        put_str(&p, " fnv1a 0x");
        for (int shift = 28; shift >= 0; shift -= 4) {
            *p++ = "0123456789abcdef"[(h >> shift) & 0xf];
        }
        *p++ = '\n';
        *p = '\0';
        put(line);
    }
    return 1;
}

/* ---- startup ---- */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;

void reset_handler(void) {
    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    /* The library uses the FPU (hard-float ABI): grant CP10/CP11 full access first. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    quit(run());
}

static void fault_handler(void) {
    put("fault\n");
    quit(0);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_stack_top,   (const void *)reset_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler,
};
