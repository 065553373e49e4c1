/* The machine's floor for SGD on the benchmark's task: a plain C loop of logistic-regression
 * updates over single examples, reshuffled every epoch (Fisher-Yates), float32 like jaxgd.
 *
 *   cc -O3 -o floor floor.c -lm && ./floor X.f32 y.f32 N D EPOCHS LR SEED
 *
 * Reads X (N x D) and y (N) as raw float32, trains from zero weights, and prints one JSON line:
 * the nanoseconds per update of every epoch (shuffle included) and the final mean loss. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rng_state;

static uint64_t next_random(void) { /* xorshift64*: a fast, good-enough generator. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void shuffle(int32_t *order, long n) { /* Fisher-Yates. */
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(next_random() % (uint64_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static float *read_floats(const char *path, long count) {
    float *out = malloc(count * sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!out || !f || fread(out, sizeof(float), count, f) != (size_t)count) {
        fprintf(stderr, "floor: cannot read %ld floats from %s\n", count, path);
        exit(1);
    }
    fclose(f);
    return out;
}

static void epoch(const float *X, const float *y, const int32_t *order, long n, long d,
                  float lr, float *w, float *b) {
    for (long k = 0; k < n; k++) {
        const float *x = X + (long)order[k] * d;
        float z = *b;
        for (long j = 0; j < d; j++) z += x[j] * w[j];
        float g = 1.0f / (1.0f + expf(-z)) - y[order[k]]; /* d loss / d z */
        for (long j = 0; j < d; j++) w[j] -= lr * g * x[j];
        *b -= lr * g;
    }
}

static double mean_loss(const float *X, const float *y, long n, long d, const float *w, float b) {
    double total = 0;
    for (long i = 0; i < n; i++) {
        double z = b;
        for (long j = 0; j < d; j++) z += (double)X[i * d + j] * w[j];
        total += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y[i] * z;
    }
    return total / n;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: floor X.f32 y.f32 N D EPOCHS LR SEED\n");
        return 2;
    }
    long n = atol(argv[3]), d = atol(argv[4]), epochs = atol(argv[5]);
    float lr = (float)atof(argv[6]);
    rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)atol(argv[7]);
    float *X = read_floats(argv[1], n * d), *y = read_floats(argv[2], n);
    float *w = calloc(d, sizeof(float)), b = 0;
    int32_t *order = malloc(n * sizeof(int32_t));
    for (long i = 0; i < n; i++) order[i] = (int32_t)i;
    printf("{\"ns_per_update\": [");
    for (long e = 0; e < epochs; e++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        shuffle(order, n);
        epoch(X, y, order, n, d, lr, w, &b);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
        printf("%s%.3f", e ? ", " : "", ns / n);
    }
    printf("], \"loss\": %.9f}\n", mean_loss(X, y, n, d, w, b));
    free(X), free(y), free(w), free(order);
    return 0;
}
