// Timestep respacing (improved DDPM sec. 4 / ADM respace.py): keep a subset S of the
// original steps and rebuild betas so that the kept alphas_cumprod are unchanged:
// beta'_i = 1 - abar_{S_i} / abar_{S_{i-1}}.

/**
 * space_timesteps: the original timesteps to keep, sorted ascending.
 * - "250" or [250]: one section, 250 steps spread over all of it.
 * - "10,15,20": the original steps cut into 3 equal sections (the first
 *   `numTimesteps % 3` one step longer), 10, 15 and 20 steps taken from them,
 *   each section strided fractionally and rounded (Python round: half to even).
 * - "ddim50": the DDIM paper's fixed integer stride; an error if no integer stride
 *   gives exactly 50 steps.
 */
export function spaceTimesteps(numTimesteps: number, sectionCounts: string | number[]): number[] {
  if (!Number.isInteger(numTimesteps) || numTimesteps < 1) {
    throw new Error(`spaceTimesteps: numTimesteps must be a positive integer, got ${numTimesteps}`);
  }
  let counts: number[];
  if (typeof sectionCounts === 'string') {
    const spec = sectionCounts.trim();
    if (spec.startsWith('ddim')) {
      const desired = parseCount(spec.slice(4), spec);
      for (let stride = 1; stride < numTimesteps; stride++) {
        if (Math.ceil(numTimesteps / stride) === desired) return range(0, numTimesteps, stride);
      }
      // ADM also accepts nothing else here (its message names the wrong number).
      throw new Error(`timestep respacing '${spec}': cannot create exactly ${desired} steps from ${numTimesteps} with an integer stride`);
    }
    if (spec === '') throw new Error('timestep respacing: empty spec (use e.g. "250", "10,15,20" or "ddim50")');
    counts = spec.split(',').map((s) => parseCount(s, spec));
  } else {
    counts = sectionCounts.map((c) => {
      if (!Number.isInteger(c) || c < 0) throw new Error(`timestep respacing: section counts must be non-negative integers, got ${c}`);
      return c;
    });
    if (counts.length === 0) throw new Error('timestep respacing: no section counts given');
  }
  const sizePer = Math.floor(numTimesteps / counts.length);
  const extra = numTimesteps % counts.length;
  let startIdx = 0;
  const steps = new Set<number>();
  counts.forEach((count, i) => {
    const size = sizePer + (i < extra ? 1 : 0);
    if (size < count) {
      throw new Error(
        `timestep respacing: cannot divide section ${i} of ${size} steps into ${count} (${counts.length} sections over ${numTimesteps} steps)`,
      );
    }
    const fracStride = count <= 1 ? 1 : (size - 1) / (count - 1);
    let cur = 0;
    for (let k = 0; k < count; k++) {
      steps.add(startIdx + roundHalfEven(cur));
      cur += fracStride;
    }
    startIdx += size;
  });
  return [...steps].sort((a, b) => a - b);
}

/** SpacedDiffusion's new betas and the map from respaced index to original timestep. */
export function respaceBetas(
  alphasCumprod: ArrayLike<number>,
  useTimesteps: Iterable<number>,
): { betas: Float64Array; timestepMap: Int32Array } {
  const keep = new Set(useTimesteps);
  for (const t of keep) {
    if (!Number.isInteger(t) || t < 0 || t >= alphasCumprod.length) {
      throw new Error(`respaced timestep ${t} is outside [0, ${alphasCumprod.length})`);
    }
  }
  const betas: number[] = [];
  const map: number[] = [];
  let lastAlphaCumprod = 1;
  for (let i = 0; i < alphasCumprod.length; i++) {
    if (!keep.has(i)) continue;
    betas.push(1 - alphasCumprod[i] / lastAlphaCumprod);
    lastAlphaCumprod = alphasCumprod[i];
    map.push(i);
  }
  if (map.length === 0) throw new Error('timestep respacing keeps no timesteps');
  return { betas: Float64Array.from(betas), timestepMap: Int32Array.from(map) };
}

function parseCount(s: string, spec: string): number {
  const t = s.trim();
  if (!/^\d+$/.test(t)) throw new Error(`timestep respacing '${spec}': '${t}' is not a step count`);
  return Number(t);
}

function range(start: number, stop: number, step: number): number[] {
  const out: number[] = [];
  for (let i = start; i < stop; i += step) out.push(i);
  return out;
}

/** Python 3 round(): ties go to the even integer. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
