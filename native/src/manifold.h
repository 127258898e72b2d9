// Per-block loops of improved precision/recall (lib/metrics/precision_recall.ts), see manifold.c.
#pragma once
#include <stdint.h>

// k-NN radii: for rows [r0, r0 + rows) against columns [c0, c0 + w) of one set, uv the
// rows x w block of u.v: inserts D(i, j) into row i's k1 smallest (best, k1 per row, sorted;
// worst[i] = the largest kept), and for columns j >= mirror_from also D(j, i) into row j's.
void radii_block(const float *uv, long rows, long w, long r0, long c0, long mirror_from, const float *norms,
                 double *best, double *worst, long k1);

// evaluate_pr: rows [r0, r0 + rows) are references, columns [c0, c0 + w) samples; sets
// sample_in[j] when D(i, j) <= ref_radii[i] and ref_in[i] when D(i, j) <= sample_radii[j].
void pr_block(const float *uv, long rows, long w, long r0, long c0, const float *nr, const float *ns,
              const float *ref_radii, const float *sample_radii, uint8_t *ref_in, uint8_t *sample_in);
