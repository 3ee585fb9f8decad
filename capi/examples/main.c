/* Prints one checksum line per generated digit, in the format of
 * `firmware-sim --checksums`: "digit D seed S fnv1a 0xXXXXXXXX".
 *
 *   cc -O2 -Icapi/include capi/examples/main.c target/release/libdgen.a -lpthread -ldl -lm
 *   ./a.out [DIGITS [SEED [COUNT]]]      (defaults: 0123456789 42 1)
 *   ./a.out --bench RUNS                 (median microseconds per digit, on stderr:
 *                                         dgen_generate vs dgen_generate_batch, and
 *                                         1,000 digits on one thread vs the default)
 *
 * Image k (row-major over COUNT rows of DIGITS) uses seed SEED + k, as firmware-sim does.
 * It also checks, before anything else, that bad arguments give the documented codes and
 * that a batch gives the same bytes on 1, 2 and 3 threads. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dgen.h"

static uint32_t fnv1a32(const uint8_t *bytes, size_t len) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ bytes[i]) * 0x01000193u;
    }
    return h;
}

static int expect(const char *what, int32_t got, int32_t want) {
    if (got != want) {
        fprintf(stderr, "check failed: %s returned %d (%s), expected %d\n", what, (int)got,
                dgen_error_message(got), (int)want);
        return 1;
    }
    return 0;
}

/* Misuse must be rejected with the documented codes, never crash. */
static int self_check(const uint8_t *model, size_t len, uint8_t *arena, size_t arena_len) {
    uint8_t image[DGEN_IMAGE_PIXELS];
    static const uint8_t junk[16] = "not a dgen model";
    int bad = 0;
    bad |= expect("arena_bytes(NULL)", dgen_arena_bytes(NULL, len), DGEN_ERR_NULL_POINTER);
    bad |= expect("arena_bytes(junk)", dgen_arena_bytes(junk, sizeof junk), DGEN_ERR_BAD_MAGIC);
    bad |= expect("arena_bytes(truncated)", dgen_arena_bytes(model, len / 2), DGEN_ERR_TRUNCATED);
    bad |= expect("generate(image NULL)",
                  dgen_generate(model, len, 1, 0, NULL, arena, arena_len), DGEN_ERR_NULL_POINTER);
    bad |= expect("generate(arena NULL)",
                  dgen_generate(model, len, 1, 0, image, NULL, arena_len), DGEN_ERR_NULL_POINTER);
    bad |= expect("generate(short arena)",
                  dgen_generate(model, len, 1, 0, image, arena, arena_len - 1),
                  DGEN_ERR_ARENA_TOO_SMALL);
    bad |= expect("generate(digit 10)",
                  dgen_generate(model, len, 10, 0, image, arena, arena_len), DGEN_ERR_INVALID_DIGIT);
    bad |= expect("generate_batch_threads(too many)",
                  dgen_generate_batch_threads(model, len, junk, 1, 0, image, sizeof image, arena,
                                              arena_len, DGEN_MAX_THREADS + 1),
                  DGEN_ERR_THREADS);
    /* The same bytes on 1, 2 and 3 threads (one thread for all in a library built without
     * the threads feature). */
    enum { N = 13 };
    static uint8_t one[N * DGEN_IMAGE_PIXELS], more[N * DGEN_IMAGE_PIXELS];
    uint8_t digits[N];
    for (int i = 0; i < N; i++) {
        digits[i] = (uint8_t)((i * 7 + i / 3) % 10);
    }
    for (uint32_t t = 1; t <= 3; t++) {
        uint8_t *dst = t == 1 ? one : more;
        int32_t rc = dgen_generate_batch_threads(model, len, digits, N, 4000000000u, dst,
                                                 sizeof one, arena, arena_len, t);
        bad |= expect("generate_batch_threads", rc, DGEN_OK);
        if (rc == DGEN_OK && t > 1 && memcmp(one, more, sizeof one) != 0) {
            fprintf(stderr, "check failed: %u threads gave other bytes than one\n", (unsigned)t);
            bad = 1;
        }
    }
    if (dgen_default_threads() < 1) {
        fprintf(stderr, "DGEN_THREADS: %s\n", dgen_error_message(dgen_default_threads()));
        bad = 1;
    }
    if (strcmp(dgen_error_message(DGEN_OK), "success") != 0 || dgen_error_message(12345) == NULL) {
        fprintf(stderr, "check failed: dgen_error_message\n");
        bad = 1;
    }
    return bad;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t len = 0;
    const uint8_t *model = dgen_default_model(&len);
    int32_t need = dgen_arena_bytes(model, len);
    if (need < 0) {
        fprintf(stderr, "model: %s\n", dgen_error_message(need));
        return 2;
    }
    static uint8_t arena[DGEN_MAX_ARENA_BYTES];
    if ((size_t)need > sizeof arena || self_check(model, len, arena, (size_t)need) != 0) {
        return 1;
    }
    uint8_t image[DGEN_IMAGE_PIXELS];

    if (argc == 3 && strcmp(argv[1], "--bench") == 0) {
        int runs = atoi(argv[2]);
        if (runs < 1 || runs > 1000) {
            fprintf(stderr, "--bench RUNS: 1..1000\n");
            return 2;
        }
        static double single[1000], batch[1000];
        static uint8_t images[64 * DGEN_IMAGE_PIXELS];
        uint8_t labels[64];
        for (int k = 0; k < 64; k++) {
            labels[k] = (uint8_t)(k % 10);
        }
        for (int r = 0; r < runs; r++) {
            double start = now_us();
            for (uint32_t k = 0; k < 64; k++) {
                int32_t rc = dgen_generate(model, len, labels[k], k, image, arena, sizeof arena);
                if (rc != DGEN_OK) {
                    fprintf(stderr, "generate: %s\n", dgen_error_message(rc));
                    return 1;
                }
            }
            single[r] = (now_us() - start) / 64.0;
            start = now_us();
            int32_t rc = dgen_generate_batch(model, len, labels, 64, 0, images, sizeof images,
                                             arena, sizeof arena);
            if (rc != DGEN_OK) {
                fprintf(stderr, "generate_batch: %s\n", dgen_error_message(rc));
                return 1;
            }
            batch[r] = (now_us() - start) / 64.0;
        }
        qsort(single, (size_t)runs, sizeof single[0], cmp_double);
        qsort(batch, (size_t)runs, sizeof batch[0], cmp_double);
        fprintf(stderr, "64 digits x %d runs, median us per digit: dgen_generate %.1f, "
                "dgen_generate_batch %.1f\n", runs, single[runs / 2], batch[runs / 2]);
        /* Threads: 1,000 digits on one thread and on the default count, alternating. */
        enum { BIG = 1000 };
        static uint8_t big[BIG * DGEN_IMAGE_PIXELS], big_labels[BIG];
        for (int k = 0; k < BIG; k++) {
            big_labels[k] = (uint8_t)(k % 10);
        }
        for (int r = 0; r < runs; r++) {
            for (int t = 0; t < 2; t++) {
                double start = now_us();
                int32_t rc = dgen_generate_batch_threads(model, len, big_labels, BIG, 0, big,
                                                         sizeof big, arena, sizeof arena,
                                                         t == 0 ? 1u : 0u);
                if (rc != DGEN_OK) {
                    fprintf(stderr, "generate_batch_threads: %s\n", dgen_error_message(rc));
                    return 1;
                }
                (t == 0 ? single : batch)[r] = (now_us() - start) / BIG;
            }
        }
        qsort(single, (size_t)runs, sizeof single[0], cmp_double);
        qsort(batch, (size_t)runs, sizeof batch[0], cmp_double);
        fprintf(stderr, "%d digits x %d runs, median us per digit: 1 thread %.1f, "
                "%d threads %.1f (%.2fx)\n", BIG, runs, single[runs / 2],
                (int)dgen_default_threads(), batch[runs / 2], single[runs / 2] / batch[runs / 2]);
        return 0;
    }

    const char *digits = argc > 1 ? argv[1] : "0123456789";
    uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 42u;
    int count = argc > 3 ? atoi(argv[3]) : 1;
    size_t n = strlen(digits);
    if (n == 0 || count < 1) {
        fprintf(stderr, "usage: %s [DIGITS [SEED [COUNT]]] | --bench RUNS\n", argv[0]);
        return 2;
    }
    uint32_t k = 0;
    for (int row = 0; row < count; row++) {
        for (size_t i = 0; i < n; i++, k++) {
            uint8_t digit = (uint8_t)(digits[i] - '0');
            int32_t rc = dgen_generate(model, len, digit, seed + k, image, arena, sizeof arena);
            if (rc != DGEN_OK) {
                fprintf(stderr, "digit '%c': %s\n", digits[i], dgen_error_message(rc));
                return 1;
            }
            printf("digit %u seed %u fnv1a 0x%08x\n", (unsigned)digit, (unsigned)(seed + k),
                   (unsigned)fnv1a32(image, sizeof image));
        }
    }
    return 0;
}
