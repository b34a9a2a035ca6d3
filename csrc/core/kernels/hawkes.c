/* hawkes.c -- exponential-kernel Hawkes likelihood and Ogata thinning (see hawkes.h). */
#include "core/kernels/hawkes.h"

#include <math.h>

/* The parameters shared by both entry points: mu > 0, alpha >= 0 (< 1 when `stationary`),
 * beta > 0, T0 < T1, all finite. */
static int
check_params(double T0, double T1, double mu, double alpha, double beta, int stationary,
             lob_error *err)
{
    if (!isfinite(T0) || !isfinite(T1) || !(T0 < T1)) {
        return lob_error_set(err, LOB_E_ARG,
                             "the window [T0, T1] = [%.17g, %.17g] must be finite "
                             "with T0 < T1",
                             T0, T1);
    }
    if (!isfinite(mu) || !(mu > 0)) {
        return lob_error_set(err, LOB_E_ARG,
                             "mu (baseline intensity) must be finite and > 0, got %.17g", mu);
    }
    if (!isfinite(alpha) || !(alpha >= 0)) {
        return lob_error_set(err, LOB_E_ARG,
                             "alpha (branching ratio) must be finite and >= 0, got %.17g", alpha);
    }
    if (stationary && !(alpha < 1)) {
        return lob_error_set(err, LOB_E_ARG,
                             "alpha (branching ratio) must be < 1 for a stationary process, got "
                             "%.17g: the event count would grow without bound",
                             alpha);
    }
    if (!isfinite(beta) || !(beta > 0)) {
        return lob_error_set(err, LOB_E_ARG, "beta (decay rate) must be finite and > 0, got %.17g",
                             beta);
    }
    return LOB_OK;
}

int
lob_hawkes_loglik(const double *t, size_t n, double T0, double T1, double mu, double alpha,
                  double beta, double *loglik, double grad[3], lob_error *err)
{
    LOB_FORWARD_IF_ERROR(check_params(T0, T1, mu, alpha, beta, 0, err));
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(t[i])) {
            return lob_error_set(err, LOB_E_ARG, "event %zu is not finite (%.17g)", i, t[i]);
        }
        if (t[i] < T0 || t[i] > T1) {
            return lob_error_set(err, LOB_E_ARG,
                                 "event %zu at %.17g lies outside the window [%.17g, %.17g]", i,
                                 t[i], T0, T1);
        }
        if (i > 0 && t[i] < t[i - 1]) {
            return lob_error_set(err, LOB_E_ARG,
                                 "events must be sorted: event %zu (%.17g) comes before event "
                                 "%zu (%.17g)",
                                 i - 1, t[i - 1], i, t[i]);
        }
    }
    /* A = sum_{t_j < t_i} exp(-beta (t_i - t_j)), B = dA/dbeta; `tied` events sit at the
     * previous time and are not yet in A (tied events do not excite each other) */
    double A = 0, B = 0, sum_log = 0, tied = 0;
    double g_mu = 0, g_alpha = 0, g_beta = 0; /* sums of dlog(lambda_i) */
    double c_alpha = 0, c_beta = 0;           /* compensator's sums: 1 - e, tau e */
    const double ab = alpha * beta;
    for (size_t i = 0; i < n; i++) {
        double d = i > 0 ? t[i] - t[i - 1] : 0;
        if (d > 0) {
            double e = exp(-beta * d);
            B = e * (B - d * (tied + A));
            A = e * (tied + A);
            tied = 0;
        }
        tied += 1;
        double lam = mu + ab * A, inv = 1 / lam;
        sum_log += log(lam);
        g_mu += inv;
        g_alpha += beta * A * inv;
        g_beta += alpha * (A + beta * B) * inv;
        double tau = T1 - t[i];
        c_alpha += -expm1(-beta * tau);
        c_beta += tau * exp(-beta * tau);
    }
    *loglik = sum_log - mu * (T1 - T0) - alpha * c_alpha;
    if (grad != NULL) {
        grad[0] = g_mu - (T1 - T0);
        grad[1] = g_alpha - c_alpha;
        grad[2] = g_beta - alpha * c_beta;
    }
    return LOB_OK;
}

/* xoshiro256** (Blackman and Vigna), its state filled by splitmix64. */
typedef struct {
    uint64_t s[4];
} hawkes_rng;

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void
rng_seed(hawkes_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&seed); /* never all zero: splitmix64 is a bijection of a counter */
    }
}

static uint64_t
rng_next(hawkes_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* A uniform double in (0, 1]: the top 53 bits, plus one ulp, so log() never sees 0. */
static double
rng_unit(hawkes_rng *r)
{
    return (double)((rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

int
lob_hawkes_simulate(double mu, double alpha, double beta, double T0, double T1, uint64_t seed,
                    double *out, size_t cap, size_t *n, lob_error *err)
{
    *n = 0;
    LOB_FORWARD_IF_ERROR(check_params(T0, T1, mu, alpha, beta, 1, err));
    hawkes_rng rng;
    rng_seed(&rng, seed);
    const double jump = alpha * beta;
    double t = T0, exc = 0; /* exc: the excitation sum_i alpha beta exp(-beta (t - t_i)) at t */
    size_t k = 0;
    for (int64_t step = 1;; step++) {
        if (LOB_POLL_DUE(step)) {
            LOB_FORWARD_IF_ERROR(lob_poll_stop(err));
        }
        double bound = mu + exc; /* the intensity only decays until the next event */
        double w = -log(rng_unit(&rng)) / bound;
        if (t + w == t && w > 0) {
            /* far from 0 a double cannot hold the step: events would pile up on one instant */
            return lob_error_set(err, LOB_E_ARG,
                                 "time resolution lost at t = %.17g (step %.3g): shift the window "
                                 "so that T0 is near 0",
                                 t, w);
        }
        t += w;
        if (t > T1) {
            break;
        }
        exc *= exp(-beta * w);
        if (rng_unit(&rng) * bound <= mu + exc) {
            if (k == cap) {
                *n = k;
                return lob_error_set(err, LOB_E_RANGE, "more than %zu events on [%.17g, %.17g]",
                                     cap, T0, T1);
            }
            out[k++] = t;
            exc += jump;
        }
    }
    *n = k;
    return LOB_OK;
}
