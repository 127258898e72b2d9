// How `npm run bench` measures: wall and process-CPU seconds of a call, the median of
// repeats with its min-max spread, ratios of interleaved repeats, and the load average.
import * as os from 'os';
import { median } from '../lib/figures/stats';

/** Seconds of one call (or per call, averaged over consecutive calls). */
export interface Timing {
  wall_s: number;
  /** Process CPU seconds, user + system, all threads: steadier than wall time on shared cores. */
  cpu_s: number;
}

/** A figure: the median of repeats, with the smallest and largest repeat. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Mean seconds per call of `calls` consecutive calls of f. */
export function timeCalls(f: () => void, calls = 1): Timing {
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) f();
  const c = process.cpuUsage(c0);
  return { wall_s: Number(process.hrtime.bigint() - t0) / 1e9 / calls, cpu_s: (c.user + c.system) / 1e6 / calls };
}

/** The value of f and the seconds it took (f may be async; the bench awaits nothing else meanwhile). */
export async function timed<T>(f: () => T | Promise<T>): Promise<[T, Timing]> {
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const v = await f();
  const c = process.cpuUsage(c0);
  return [v, { wall_s: Number(process.hrtime.bigint() - t0) / 1e9, cpu_s: (c.user + c.system) / 1e6 }];
}

export const addTimings = (a: Timing, b: Timing): Timing => ({ wall_s: a.wall_s + b.wall_s, cpu_s: a.cpu_s + b.cpu_s });

/** Both clocks of a list of repeats. */
export interface Sides {
  wall_s: Spread;
  cpu_s: Spread;
}

export function sides(ts: readonly Timing[]): Sides {
  return { wall_s: spread(ts.map((t) => t.wall_s)), cpu_s: spread(ts.map((t) => t.cpu_s)) };
}

/**
 * kit / reference: the ratio of the medians, and the spread of the ratios of the repeats
 * taken side by side (kit repeat i next to reference repeat i), by CPU and by wall time.
 */
export interface Ratio {
  cpu: number;
  wall: number;
  paired_cpu: Spread;
  paired_wall: Spread;
}

export function ratio(kit: readonly Timing[], ref: readonly Timing[]): Ratio {
  if (kit.length !== ref.length || !kit.length) throw new Error('ratio: needs as many kit repeats as reference repeats');
  const k = sides(kit), r = sides(ref);
  return {
    cpu: k.cpu_s.median / r.cpu_s.median,
    wall: k.wall_s.median / r.wall_s.median,
    paired_cpu: spread(kit.map((t, i) => t.cpu_s / ref[i].cpu_s)),
    paired_wall: spread(kit.map((t, i) => t.wall_s / ref[i].wall_s)),
  };
}

/** 1-, 5- and 15-minute load averages, two decimals. */
export function loadAverage(): number[] {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

const f = (x: number, d: number) => x.toFixed(d);
/** '0.291 s (0.285-0.302)' */
export const fmtSpread = (s: Spread, d = 3, unit = ' s') => `${f(s.median, d)}${unit} (${f(s.min, d)}-${f(s.max, d)})`;
/** '0.92 (0.88-0.97)' */
export const fmtRatio = (r: number, paired: Spread) => `${f(r, 2)} (${f(paired.min, 2)}-${f(paired.max, 2)})`;
