// Float64 dense linear algebra for the FID, in plain TypeScript (no Python, no tfjs:
// tfjs has no float64). Row-major Float64Arrays throughout. The kernels are written as
// dot products over contiguous rows with 4x4 register blocks, which is what V8 turns into
// the tightest scalar loops (about 4 GFLOP/s on one core).
//
// What the FID needs is tr sqrtm(S1 S2) for covariance matrices S1, S2. Its value is the
// sum of the square roots of the eigenvalues of S1 S2, which are those of the symmetric
// PSD matrix L^T S2 L for any factor S1 = L L^T. We take L from a pivoted Cholesky
// factorisation (rank-revealing, so rank-deficient covariances are fine), and the
// eigenvalues of L^T S2 L from Householder tridiagonalisation + implicit QL.

const EPS = 2.220446049250313e-16;

// ---- matrix products ---------------------------------------------------------------

/** Which part of C = alpha A B^T to compute (see gemmNT). */
export interface GemmNTOptions {
  /** Only blocks that touch the lower triangle (j <= i); diagonal 4x4 blocks are full. */
  lowerOnly?: boolean;
  /** Row i of A is zero for k < i (upper trapezoid): sums start at the row block. */
  aTrapezoid?: boolean;
  /** Row j of B is zero for k < j (upper trapezoid): sums start at the column block. */
  bTrapezoid?: boolean;
}

const KB = 256; // k-panel: a 4-row strip of A and B stays in L1
const NB = 64; // rows of B per tile: 64 x 256 doubles stay in L2

/**
 * C[i, j] += alpha * sum_k A[i, k] B[j, k] for i < m, j < n, k < K ("A times B transposed":
 * both operands are read along contiguous rows). Matrices are addressed as
 * X[off + row * ld + col], so sub-blocks of larger matrices work in place.
 */
export function gemmNT(
  m: number, n: number, K: number, alpha: number,
  A: Float64Array, aOff: number, lda: number,
  B: Float64Array, bOff: number, ldb: number,
  C: Float64Array, cOff: number, ldc: number,
  opts: GemmNTOptions = {},
): void {
  const { lowerOnly = false, aTrapezoid = false, bTrapezoid = false } = opts;
  for (let k0 = 0; k0 < K; k0 += KB) {
    const k1 = Math.min(K, k0 + KB);
    for (let j0 = 0; j0 < n; j0 += NB) {
      const j1 = Math.min(n, j0 + NB);
      for (let i = 0; i < m; i += 4) {
        const mi = Math.min(4, m - i);
        if (aTrapezoid && i >= k1) break; // rows i.. are zero on this k-panel
        const jEnd = lowerOnly ? Math.min(j1, i + 4) : j1;
        for (let j = j0; j < jEnd; j += 4) {
          const nj = Math.min(4, jEnd - j);
          let kFrom = k0;
          if (aTrapezoid && i > kFrom) kFrom = i;
          if (bTrapezoid && j > kFrom) kFrom = j;
          if (kFrom >= k1) continue;
          const a = aOff + i * lda, b = bOff + j * ldb, c = cOff + i * ldc + j;
          if (mi === 4 && nj === 4) kernel4x4(A, a, lda, B, b, ldb, kFrom, k1, alpha, C, c, ldc);
          else kernelEdge(mi, nj, A, a, lda, B, b, ldb, kFrom, k1, alpha, C, c, ldc);
        }
      }
    }
  }
}

function kernel4x4(
  A: Float64Array, a: number, lda: number, B: Float64Array, b: number, ldb: number,
  k0: number, k1: number, alpha: number, C: Float64Array, c: number, ldc: number,
): void {
  const a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda;
  const b1 = b + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let k = k0; k < k1; k++) {
    const x0 = A[a + k], x1 = A[a1 + k], x2 = A[a2 + k], x3 = A[a3 + k];
    const y0 = B[b + k], y1 = B[b1 + k], y2 = B[b2 + k], y3 = B[b3 + k];
    c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
    c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
    c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
    c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
  }
  C[c] += alpha * c00; C[c + 1] += alpha * c01; C[c + 2] += alpha * c02; C[c + 3] += alpha * c03;
  c += ldc;
  C[c] += alpha * c10; C[c + 1] += alpha * c11; C[c + 2] += alpha * c12; C[c + 3] += alpha * c13;
  c += ldc;
  C[c] += alpha * c20; C[c + 1] += alpha * c21; C[c + 2] += alpha * c22; C[c + 3] += alpha * c23;
  c += ldc;
  C[c] += alpha * c30; C[c + 1] += alpha * c31; C[c + 2] += alpha * c32; C[c + 3] += alpha * c33;
}

function kernelEdge(
  mi: number, nj: number,
  A: Float64Array, a: number, lda: number, B: Float64Array, b: number, ldb: number,
  k0: number, k1: number, alpha: number, C: Float64Array, c: number, ldc: number,
): void {
  for (let i = 0; i < mi; i++) {
    const ai = a + i * lda;
    for (let j = 0; j < nj; j++) {
      const bj = b + j * ldb;
      let s = 0;
      for (let k = k0; k < k1; k++) s += A[ai + k] * B[bj + k];
      C[c + i * ldc + j] += alpha * s;
    }
  }
}

/** Copies the lower triangle of a square row-major matrix onto its upper triangle. */
export function mirrorLower(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
  }
}

// ---- mean and covariance -------------------------------------------------------------

/** Rows of the centred features transposed per chunk; the covariance is summed chunk by chunk. */
const COV_CHUNK = 256;

/**
 * Mean and unbiased covariance (np.cov(features, rowvar=False): centred first, 1 / (n - 1))
 * of n >= 2 row-major feature vectors of dimension d, accumulated in float64. The means are
 * summed in row order (the native path sums in the same order).
 */
export function meanCovariance(features: Float32Array | Float64Array, n: number, d: number): { mu: Float64Array; sigma: Float64Array } {
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const ri = i * d;
    for (let a = 0; a < d; a++) mu[a] += features[ri + a];
  }
  for (let a = 0; a < d; a++) mu[a] /= n;
  const sigma = new Float64Array(d * d);
  const t = new Float64Array(d * COV_CHUNK);
  for (let r0 = 0; r0 < n; r0 += COV_CHUNK) {
    const rows = Math.min(COV_CHUNK, n - r0);
    for (let r = 0; r < rows; r++) {
      const src = (r0 + r) * d;
      for (let a = 0; a < d; a++) t[a * COV_CHUNK + r] = features[src + a] - mu[a];
    }
    gemmNT(d, d, rows, 1, t, 0, COV_CHUNK, t, 0, COV_CHUNK, sigma, 0, d, { lowerOnly: true });
  }
  mirrorLower(sigma, d);
  const scale = 1 / (n - 1); // np.cov multiplies by 1/fact
  for (let i = 0; i < sigma.length; i++) sigma[i] *= scale;
  return { mu, sigma };
}

// ---- pivoted Cholesky ----------------------------------------------------------------

export interface PivotedCholesky {
  /** n x n row-major; L[i, k] for k < rank and k <= i (rows in pivoted order). */
  L: Float64Array;
  /** perm[i] = original index of pivoted row i: A[perm[i], perm[j]] ~ (L L^T)[i, j]. */
  perm: Int32Array;
  rank: number;
  /** The Schur-complement diagonal left when the factorisation stopped (length n - rank). */
  residualDiagonal: Float64Array;
}

const PANEL = 32;

/**
 * Rank-revealing Cholesky with complete (diagonal) pivoting of a symmetric positive
 * semi-definite matrix, as LAPACK dpstrf: stops when the largest remaining pivot is
 * <= tol (default n * eps * max diag), so A[perm, perm] = L L^T + (residual <= tol).
 * Reads only the lower triangle of `a`; `a` is not modified.
 */
export function pivotedCholesky(a: Float64Array, n: number, tol?: number): PivotedCholesky {
  if (a.length !== n * n) throw new Error(`pivotedCholesky: expected ${n}x${n} = ${n * n} values, got ${a.length}`);
  const L = new Float64Array(a); // factorised in place, lower triangle
  const perm = new Int32Array(n);
  const w = new Float64Array(n); // current Schur-complement diagonal
  let maxDiag = 0;
  for (let i = 0; i < n; i++) {
    perm[i] = i;
    w[i] = L[i * n + i];
    if (w[i] > maxDiag) maxDiag = w[i];
  }
  const stop = tol ?? n * EPS * maxDiag;
  let rank = n;
  factor: for (let j0 = 0; j0 < n; j0 += PANEL) {
    const j1 = Math.min(n, j0 + PANEL);
    for (let j = j0; j < j1; j++) {
      let p = j;
      for (let i = j + 1; i < n; i++) if (w[i] > w[p]) p = i;
      if (!(w[p] > stop) || maxDiag <= 0) {
        rank = j;
        break factor;
      }
      if (p !== j) {
        swapSymmetric(L, n, j, p);
        const t = w[j]; w[j] = w[p]; w[p] = t;
        const q = perm[j]; perm[j] = perm[p]; perm[p] = q;
      }
      const ljj = Math.sqrt(w[j]);
      const rj = j * n;
      L[rj + j] = ljj;
      // Column j from the trailing matrix as of the panel start, minus this panel's columns.
      for (let i = j + 1; i < n; i++) {
        const ri = i * n;
        let s = L[ri + j];
        for (let k = j0; k < j; k++) s -= L[ri + k] * L[rj + k];
        const lij = s / ljj;
        L[ri + j] = lij;
        w[i] -= lij * lij;
      }
    }
    if (j1 < n) {
      // Trailing update A22 -= L21 L21^T (lower triangle), the O(n^3) part.
      const m = n - j1;
      gemmNT(m, m, j1 - j0, -1, L, j1 * n + j0, n, L, j1 * n + j0, n, L, j1 * n + j1, n, { lowerOnly: true });
      for (let i = j1; i < n; i++) w[i] = L[i * n + i];
    }
  }
  // Zero what is not the factor, so L can be used as a plain matrix.
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = Math.min(i + 1, rank); k < n; k++) L[ri + k] = 0;
  }
  return { L, perm, rank, residualDiagonal: w.slice(rank) };
}

/** Swaps indices j < p of a symmetric matrix held in its lower triangle (rows and columns). */
function swapSymmetric(a: Float64Array, n: number, j: number, p: number): void {
  const rj = j * n, rp = p * n;
  let t: number;
  for (let k = 0; k < j; k++) { t = a[rj + k]; a[rj + k] = a[rp + k]; a[rp + k] = t; }
  t = a[rj + j]; a[rj + j] = a[rp + p]; a[rp + p] = t;
  for (let k = j + 1; k < p; k++) { t = a[k * n + j]; a[k * n + j] = a[rp + k]; a[rp + k] = t; }
  for (let k = p + 1; k < n; k++) { t = a[k * n + j]; a[k * n + j] = a[k * n + p]; a[k * n + p] = t; }
}

// ---- symmetric eigenvalues -----------------------------------------------------------

/**
 * Householder reduction of a symmetric matrix to tridiagonal form T = Q^T A Q (eigenvalues
 * only, as EISPACK tred1). Reads and destroys the lower triangle of `a` (n x n row-major).
 * Returns the diagonal `d` and sub-diagonal `e` (e[i] couples i-1 and i; e[0] = 0).
 * Each step's rank-2 update is applied lazily, fused with the next step's matrix-vector
 * product, so every step streams the remaining triangle once (memory traffic, not
 * arithmetic, is what limits this step).
 */
export function tridiagonalize(a: Float64Array, n: number): { d: Float64Array; e: Float64Array } {
  const d = new Float64Array(n), e = new Float64Array(n);
  const u = new Float64Array(n), p = new Float64Array(n);
  // The pending update A -= pu pq^T + pq pu^T (zero vectors when there is none).
  const pu = new Float64Array(n), pq = new Float64Array(n);
  for (let i = n - 1; i >= 1; i--) {
    const ri = i * n;
    updateRow(a, ri, i, pu, pq);
    d[i] = a[ri + i];
    const l = i - 1;
    let scale = 0;
    for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k]);
    if (l === 0 || scale === 0) {
      // Nothing to annihilate: flush the pending update onto rows 0..l.
      e[i] = a[ri + l];
      for (let j = 0; j <= l; j++) updateRow(a, j * n, j, pu, pq);
      pu.fill(0);
      pq.fill(0);
      continue;
    }
    let h = 0;
    for (let k = 0; k <= l; k++) {
      const v = a[ri + k] / scale;
      u[k] = v;
      h += v * v;
    }
    const f = u[l];
    const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
    e[i] = scale * g;
    h -= f * g; // = |u|^2 / 2
    u[l] = f - g;
    p.fill(0, 0, l + 1);
    updateAndMultiply(a, n, l + 1, pu, pq, u, p);
    let up = 0;
    for (let k = 0; k <= l; k++) {
      p[k] /= h;
      up += u[k] * p[k];
    }
    const hh = up / (2 * h);
    for (let k = 0; k <= l; k++) {
      pu[k] = u[k];
      pq[k] = p[k] - hh * u[k];
    }
    pu.fill(0, l + 1);
    pq.fill(0, l + 1);
  }
  if (n > 0) d[0] = a[0] - 2 * pu[0] * pq[0];
  return { d, e };
}

function updateRow(a: Float64Array, rj: number, j: number, pu: Float64Array, pq: Float64Array): void {
  const puj = pu[j], pqj = pq[j];
  for (let k = 0; k <= j; k++) a[rj + k] -= puj * pq[k] + pqj * pu[k];
}

/**
 * On the leading m x m lower triangle of `a`: A -= pu pq^T + pq pu^T, then p += A u
 * (using symmetry: row j gives p[j] by a dot product and p[k<j] by an axpy). Rows go four
 * at a time so that the vectors are loaded once per four matrix entries and the four dot
 * products form independent dependency chains.
 */
function updateAndMultiply(
  a: Float64Array, n: number, m: number,
  pu: Float64Array, pq: Float64Array, u: Float64Array, p: Float64Array,
): void {
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const r0 = j * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
    const u0 = u[j], u1 = u[j + 1], u2 = u[j + 2], u3 = u[j + 3];
    const x0 = pu[j], y0 = pq[j], x1 = pu[j + 1], y1 = pq[j + 1];
    const x2 = pu[j + 2], y2 = pq[j + 2], x3 = pu[j + 3], y3 = pq[j + 3];
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = 0; k < j; k++) {
      const qk = pq[k], wk = pu[k], uk = u[k];
      const v0 = a[r0 + k] - (x0 * qk + y0 * wk);
      const v1 = a[r1 + k] - (x1 * qk + y1 * wk);
      const v2 = a[r2 + k] - (x2 * qk + y2 * wk);
      const v3 = a[r3 + k] - (x3 * qk + y3 * wk);
      a[r0 + k] = v0; a[r1 + k] = v1; a[r2 + k] = v2; a[r3 + k] = v3;
      s0 += v0 * uk; s1 += v1 * uk; s2 += v2 * uk; s3 += v3 * uk;
      p[k] += (v0 * u0 + v1 * u1) + (v2 * u2 + v3 * u3);
    }
    p[j] += s0; p[j + 1] += s1; p[j + 2] += s2; p[j + 3] += s3;
    // The 4x4 triangle on and below the diagonal of this row group.
    for (let r = j; r < j + 4; r++) updateAndMultiplyRow(a, r * n, r, j, pu, pq, u, p);
  }
  for (; j < m; j++) updateAndMultiplyRow(a, j * n, j, 0, pu, pq, u, p);
}

/** Row r of the fused update-and-multiply, for columns k0..r. */
function updateAndMultiplyRow(
  a: Float64Array, rr: number, r: number, k0: number,
  pu: Float64Array, pq: Float64Array, u: Float64Array, p: Float64Array,
): void {
  const x = pu[r], y = pq[r], ur = u[r];
  let s = 0;
  for (let k = k0; k < r; k++) {
    const v = a[rr + k] - (x * pq[k] + y * pu[k]);
    a[rr + k] = v;
    s += v * u[k];
    p[k] += v * ur;
  }
  const v = a[rr + r] - 2 * x * y;
  a[rr + r] = v;
  p[r] += s + v * ur;
}

/**
 * Eigenvalues of a symmetric tridiagonal matrix (diagonal d, sub-diagonal e with e[0]
 * unused) by the implicit QL method with Wilkinson shifts (EISPACK tql1). Returns them
 * sorted ascending; d and e are not modified.
 */
export function tridiagonalEigenvalues(dIn: Float64Array, eIn: Float64Array): Float64Array {
  const n = dIn.length;
  const d = Float64Array.from(dIn);
  const e = new Float64Array(n);
  for (let i = 1; i < n; i++) e[i - 1] = eIn[i];
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= EPS * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error('tridiagonalEigenvalues: QL iteration did not converge');
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // Underflow: deflate and restart this eigenvalue.
          d[i + 1] -= p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (r === 0 && i >= l) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d.sort();
}

/** Eigenvalues (ascending) of a symmetric n x n matrix given by its lower triangle; `a` is destroyed. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new Error(`symmetricEigenvalues: expected ${n}x${n} = ${n * n} values, got ${a.length}`);
  const { d, e } = tridiagonalize(a, n);
  return tridiagonalEigenvalues(d, e);
}

// ---- tr sqrtm(S1 S2) -----------------------------------------------------------------

export interface TraceSqrtProduct {
  /** sum_i sqrt(max(lambda_i, 0)) over the eigenvalues of S1 S2: Re tr sqrtm(S1 S2). */
  trace: number;
  /** sum sqrt(-lambda) over negative eigenvalues (0 if none): Im tr sqrtm(S1 S2). */
  imaginary: number;
  /** Numerical rank of S1 found by the pivoted Cholesky. */
  rank1: number;
  /** Eigenvalues of S1 S2 (ascending, length rank1). */
  eigenvalues: Float64Array;
  /** Diagonal of the part of S1 the pivoted Cholesky left out (all <= its tolerance). */
  residualDiagonal: Float64Array;
}

/**
 * tr sqrtm(S1 S2) for symmetric positive semi-definite n x n matrices, through the
 * eigenvalues of B = L^T S2 L with S1[P, P] = L L^T (pivoted Cholesky). B is symmetric,
 * so its eigenvalues are real; rounding can leave tiny negative ones, whose square roots
 * would be imaginary (and dropped by taking the real part, as the reference does).
 */
export function traceSqrtProduct(s1: Float64Array, s2: Float64Array, n: number): TraceSqrtProduct {
  const { L, perm, rank: r, residualDiagonal } = pivotedCholesky(s1, n);
  if (r === 0) return sqrtTrace(new Float64Array(0), residualDiagonal);
  // Lt = L^T (r x n, row c zero before column c); S2p = S2[P, P].
  const Lt = new Float64Array(r * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let c = 0, cEnd = Math.min(i + 1, r); c < cEnd; c++) Lt[c * n + i] = L[ri + c];
  }
  const s2p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const src = perm[i] * n, dst = i * n;
    for (let k = 0; k < n; k++) s2p[dst + k] = s2[src + perm[k]];
  }
  // W = Lt S2p (S2p symmetric, so its rows serve as columns); B = W Lt^T, lower triangle.
  const W = new Float64Array(r * n);
  gemmNT(r, n, n, 1, Lt, 0, n, s2p, 0, n, W, 0, n, { aTrapezoid: true });
  const B = new Float64Array(r * r);
  gemmNT(r, r, n, 1, W, 0, n, Lt, 0, n, B, 0, r, { lowerOnly: true, bTrapezoid: true });
  return sqrtTrace(symmetricEigenvalues(B, r), residualDiagonal);
}

/**
 * The TraceSqrtProduct of the eigenvalues of L^T S2 L (ascending; one per kept pivot of
 * S1) and the diagonal the factorisation left out: shared by this file and LAPACK's path.
 */
export function sqrtTrace(lambda: Float64Array, residualDiagonal: Float64Array): TraceSqrtProduct {
  let trace = 0, imaginary = 0;
  for (let i = 0; i < lambda.length; i++) {
    const v = lambda[i];
    if (v >= 0) trace += Math.sqrt(v);
    else if (v < 0) imaginary += Math.sqrt(-v);
  }
  // NaN eigenvalues (non-finite input) fall through both branches: make them visible.
  if (lambda.some((v) => Number.isNaN(v))) trace = NaN;
  return { trace, imaginary, rank1: lambda.length, eigenvalues: lambda, residualDiagonal };
}
