/* hawkes.h -- the univariate Hawkes process with an exponential kernel: exact
 * log-likelihood with its gradient, and simulation by Ogata's thinning.
 *
 * Intensity  lambda(t) = mu + sum_{t_i < t} alpha * beta * exp(-beta * (t - t_i)):
 * mu > 0 is the baseline (events per unit time), alpha >= 0 the branching ratio (the
 * expected number of events each event triggers directly; < 1 for a stationary process,
 * whose mean rate is then mu / (1 - alpha)), beta > 0 the decay rate (per unit time; the
 * excitation halves every ln 2 / beta).  Times are doubles in one unit of the caller's
 * choosing (lobfast passes seconds) and the process is observed on [T0, T1] with no
 * events before T0.
 * Pure C11, re-entrant, never includes Python.h.
 */
#ifndef LOB_HAWKES_H
#define LOB_HAWKES_H

#include "core/lob.h"

/*! lob_hawkes_loglik() : the exact log-likelihood of events t[0..n) observed on [T0, T1]:
 *      sum_i log lambda(t_i) - mu (T1 - T0) - alpha sum_i (1 - exp(-beta (T1 - t_i))),
 *  in O(n) through A_i = exp(-beta d_i) (1 + A_{i-1}), d_i = t_i - t_{i-1}, A_0 = 0, so
 *  that lambda(t_i) = mu + alpha beta A_i.  When `grad` is not NULL it receives the
 *  analytic derivatives with respect to (mu, alpha, beta), the beta one through the
 *  companion recursion B_i = dA_i / dbeta = exp(-beta d_i) (B_{i-1} - d_i (1 + A_{i-1})).
 *  Equal times do not excite each other (the sum is over strictly earlier events): a run
 *  of m tied events enters the recursion as m, not 1, at the next later time.
 *  t must be finite, non-decreasing and inside [T0, T1]; T0 < T1 finite; mu > 0,
 *  alpha >= 0 and beta > 0 finite (alpha >= 1 is allowed here: the likelihood of a finite
 *  window is defined for any branching ratio).  Arguments are checked before anything is
 *  computed.
 *  @return 0, or LOB_E_ARG naming the first bad event index or parameter. */
int lob_hawkes_loglik(const double *t, size_t n, double T0, double T1, double mu, double alpha,
                      double beta, double *loglik, double grad[3], lob_error *err);

/*! lob_hawkes_simulate() : one path on (T0, T1] by Ogata's thinning, starting with no
 *  history at T0.  Between events the intensity only decays, so its value just after the
 *  last candidate bounds it until the next one; the excitation is carried forward by one
 *  exp() per candidate (O(1) each, O(events) in all).  Uniforms come from xoshiro256**
 *  seeded through splitmix64 from `seed`, held on the stack: the same seed gives the same
 *  times on every platform with IEEE doubles and a correctly rounded exp/log.  The times
 *  go to out[0..*n), increasing.  Requires 0 <= alpha < 1 (a stationary process), mu > 0,
 *  beta > 0, T0 < T1, all finite.
 *  @return 0; LOB_E_RANGE when more than `cap` events occur (out holds the first cap,
 *  *n = cap: rerun with a larger buffer and the same seed to get the whole path); or
 *  LOB_E_ARG for a bad parameter (then nothing is written). */
int lob_hawkes_simulate(double mu, double alpha, double beta, double T0, double T1, uint64_t seed,
                        double *out, size_t cap, size_t *n, lob_error *err);

#endif /* LOB_HAWKES_H */
