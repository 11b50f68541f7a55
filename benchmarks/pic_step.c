/* The anchor of benchmarks/pic_push.py: one particle-in-cell leapfrog step of the 1D
 * Vlasov-Poisson system in plain C (one thread), the same physics as landau/vlasov_poisson.py:
 *
 *   loop 1: v += (dt/2) a;  x += dt v (mod L);  deposit x (cloud in cell, nodes at cell centres)
 *   field:  rho_j = 1 - n_j;  E by Gauss's law dE/dx = rho as a running sum (E mean removed)
 *   loop 2: a = -E(x) (cloud in cell);  v += (dt/2) a
 *
 * The field solve differs (running sum instead of FFT: O(M), M = 128, negligible); the particle
 * loops are those of the step. Build: cc -O3 -march=native -o pic_step pic_step.c -lm
 * Run: ./pic_step N STEPS   -> prints "N STEPS seconds particles_per_second checksum".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define M 128

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    const double L = 4 * M_PI, dx = L / M, inv_dx = 1 / dx, dt = 0.05, w = (double)M / n;
    double *x = malloc(n * sizeof *x), *v = malloc(n * sizeof *v), *a = calloc(n, sizeof *a);
    double dens[M], E[M];
    srand(1);
    for (long p = 0; p < n; p++) {
        x[p] = L * (p + 0.5) / n;
        v[p] = 2.0 * rand() / RAND_MAX - 1.0;
    }
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        for (int j = 0; j < M; j++) dens[j] = 0;
        for (long p = 0; p < n; p++) {
            double vp = v[p] + 0.5 * dt * a[p], xp = x[p] + dt * vp;
            xp -= L * floor(xp / L);
            if (xp >= L) xp -= L;
            v[p] = vp;
            x[p] = xp;
            double q = xp * inv_dx - 0.5, f;
            int j = (int)floor(q);
            f = q - j;
            if (j < 0) j += M;
            dens[j] += 1 - f;
            dens[j + 1 < M ? j + 1 : 0] += f;
        }
        double mean = 0;
        E[0] = 0;
        for (int j = 1; j < M; j++) E[j] = E[j - 1] + dx * (1 - w * dens[j]);
        for (int j = 0; j < M; j++) mean += E[j] / M;
        for (int j = 0; j < M; j++) E[j] -= mean;
        for (long p = 0; p < n; p++) {
            double q = x[p] * inv_dx - 0.5, f;
            int j = (int)floor(q);
            f = q - j;
            if (j < 0) j += M;
            a[p] = -((1 - f) * E[j] + f * E[j + 1 < M ? j + 1 : 0]);
            v[p] += 0.5 * dt * a[p];
        }
    }
    double sec = now() - t0, check = 0;
    for (long p = 0; p < n; p++) check += v[p];
    printf("%ld %d %.6f %.6e %.6e\n", n, steps, sec, (double)n * steps / sec, check);
    free(x); free(v); free(a);
    return 0;
}
