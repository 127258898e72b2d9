// The calibration ladder as a figure (lib/experiments/calibration.ts): the experiment's
// FID of each rung (inputs of known quality: real images, degraded images, collapsed
// classes, mis-scaled and random latents), log y, with error bars from the bootstrap
// standard error, grouped by kind in CALIBRATION_LADDER order; and ladderChecks' verdicts
// (does the FID order the ladder as it must?) as table rows.
import { CALIBRATION_LADDER, CALIBRATION_STUDY, LadderCheck, ladderChecks } from '../experiments/calibration';
import type { ResultRow } from '../results/registry';
import { FigureOptions, FigureSpec, MissingDataError, PlotlyTrace, axis, baseLayout, fidAxis, fidAxisTitle, selectRows } from './specs';

const num = (r: ResultRow, c: keyof ResultRow): number | null => {
  const v = r[c];
  if (v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

const KIND_COLOR: Record<string, string> = {
  floor: '#222222', noise: '#1f77b4', blur: '#17becf', 'contrast-down': '#9467bd', 'contrast-up': '#e377c2', greyscale: '#7f7f7f',
  channels: '#8c564b', classes: '#2ca02c', background: '#bcbd22', 'latent-scale-down': '#ff7f0e', 'latent-scale': '#d62728', gaussian: '#7b0000',
  other: '#aaaaaa',
};

export interface LadderPoint {
  rung: string;
  kind: string;
  level: number | null;
  fid: number;
  fidSe: number | null;
}

export interface LadderSpec extends FigureSpec {
  /** The rungs drawn (ladder order; rungs outside the ladder last, as kind 'other'). */
  points: LadderPoint[];
  /** ladderChecks on the same rows. */
  checks: LadderCheck[];
  experiment: string;
  featureNet: string | null;
}

/** Half-width of the error bars in standard errors (a 95% normal interval). */
export const LADDER_ERROR_Z = 1.96;

/**
 * The experiment's calibration FIDs, one point per rung present (newest row per rung, one
 * experiment and feature network as the other figures choose them), log y, error bars
 * +-1.96 fid_se, one trace per kind in ladder order; `checks` holds ladderChecks of the
 * same rows. Throws MissingDataError when the experiment has no calibration rows.
 */
export function figCalibrationLadder(rows: readonly ResultRow[], opts: FigureOptions = {}): LadderSpec {
  const figure = 'Calibration ladder';
  const sel = selectRows(rows, CALIBRATION_STUDY, figure, opts);
  const byCell = new Map<string, ResultRow>();
  for (const r of sel.rows) byCell.set(String(r.cell ?? r.model ?? ''), r);
  const points: LadderPoint[] = [];
  for (const rung of CALIBRATION_LADDER) {
    const r = byCell.get(rung.rung);
    if (r) points.push({ rung: rung.rung, kind: rung.kind, level: rung.level, fid: num(r, 'fid')!, fidSe: num(r, 'fid_se') });
  }
  const known = new Set(CALIBRATION_LADDER.map((r) => r.rung));
  for (const [cell, r] of [...byCell.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (!known.has(cell)) points.push({ rung: cell, kind: 'other', level: null, fid: num(r, 'fid')!, fidSe: num(r, 'fid_se') });
  }
  const drawn = points.filter((p) => p.fid > 0);
  const dropped = points.filter((p) => !(p.fid > 0));
  const kinds = [...new Set(drawn.map((p) => p.kind))];
  const data: PlotlyTrace[] = kinds.map((kind) => {
    const ps = drawn.filter((p) => p.kind === kind);
    return {
      type: 'scatter', mode: 'markers', name: kind, x: ps.map((p) => p.rung), y: ps.map((p) => p.fid),
      error_y: { type: 'data', array: ps.map((p) => (p.fidSe !== null ? LADDER_ERROR_Z * p.fidSe : 0)), visible: true, thickness: 1.5, width: 4, color: KIND_COLOR[kind] ?? '#555' },
      text: ps.map((p) => `${p.rung} (${p.kind}${p.level !== null ? `, level ${p.level}` : ''})<br>FID ${p.fid.toFixed(2)}${p.fidSe !== null ? ` ± ${(LADDER_ERROR_Z * p.fidSe).toFixed(2)} (1.96 se)` : ', no se'}`),
      hoverinfo: 'text', marker: { size: 10, color: KIND_COLOR[kind] ?? '#555', line: { color: '#222', width: 1 } },
    };
  });
  const checks = ladderChecks(sel.rows
    .slice()
    .sort((a, b) => String(a.timestamp ?? '').localeCompare(String(b.timestamp ?? '')))
    .map((r) => ({ cell: String(r.cell ?? r.model ?? ''), fid: num(r, 'fid'), fid_se: num(r, 'fid_se') })));
  const passed = checks.filter((c) => c.pass).length;
  const ns = [...new Set(sel.rows.map((r) => num(r, 'num_samples')).filter((v): v is number => v !== null))];
  const sub = [
    `experiment ${sel.experiment}`, ns.length ? `${ns.join('/')} samples per FID` : '', fidAxisTitle(sel.featureNet),
    `error bars ±${LADDER_ERROR_Z} bootstrap se`, dropped.length ? `not drawn (FID <= 0 on a log axis): ${dropped.map((p) => p.rung).join(', ')}` : '',
  ].filter(Boolean).join(' · ');
  const title = `Calibration ladder: ${drawn.length} rungs; ${passed} of ${checks.length} ordering checks pass`;
  const layout = baseLayout(title, sub, 1100, 560);
  layout.margin = { ...(layout.margin as object), l: 70, r: 170, b: 130 };
  layout.xaxis = axis('rung (grouped by kind, each kind in increasing degradation)', { type: 'category', categoryorder: 'array', categoryarray: drawn.map((p) => p.rung), tickangle: -45 });
  layout.yaxis = axis(fidAxis(sel.featureNet, ', log scale'), { type: 'log' });
  layout.legend = { title: { text: 'kind' }, x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' };
  if (!drawn.length) throw new MissingDataError(figure, CALIBRATION_STUDY, `${figure}: experiment '${sel.experiment}' has no calibration row with a positive FID`);
  return { data, layout, points, checks, experiment: sel.experiment, featureNet: sel.featureNet };
}

/** ladderChecks as table rows: check, PASS/FAIL, the numbers. */
export function ladderTable(checks: readonly LadderCheck[]): Array<{ check: string; result: string; detail: string }> {
  return checks.map((c) => ({ check: c.check, result: c.pass ? 'pass' : 'FAIL', detail: c.detail }));
}

/** One sentence: how many checks pass and which fail. */
export function ladderSummary(checks: readonly LadderCheck[]): string {
  const failed = checks.filter((c) => !c.pass);
  return failed.length
    ? `${checks.length - failed.length} of ${checks.length} calibration checks pass; failing: ${failed.map((c) => `${c.check} (${c.detail})`).join('; ')}`
    : `all ${checks.length} calibration checks pass: this experiment's FID orders every rung of the ladder as it must`;
}
