// The paper's figures as plotly specs ({ data, layout }, plain JSON in plotly.js's
// schema), made from rows of the results registry. Pure functions: no files, no
// browser. lib/figures/html.ts turns a spec into a page, lib/cli/figures.ts runs them all.
//
// Rows are chosen the same way for every figure: the figure's study, rows with a FID,
// one experiment (the one named, else the most recent), one feature network, and the
// newest row wherever a cell was evaluated twice with the same settings.
import type { ResultRow } from '../results/registry';
import { familyPatchSizes, parseModelName } from '../model/config';
import { bootstrapLogPearson, onScale, seedSpread, stdRatio, STD_RATIO_GATE } from './resolution';
import { Correlation, logspace, pearson, powerLawBand, powerLawFit, spearman, Band } from './stats';

export type PlotlyTrace = Record<string, unknown>;

export interface FigureSpec {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
}

export interface FigureOptions {
  /**
   * Feature network of the FIDs to plot ('default' or 'inception'): selects those rows
   * and names the axis ("FID (default features)" / "FID-Inception"). Without it, the
   * rows must all use one network.
   */
  featureNet?: string;
  /** Experiment to plot when several have rows for the study (default: the most recent). */
  experiment?: string;
  /**
   * The figure's title: the finding as measured (lib/notebook/findings figureHeadline).
   * Without it the title names the figure's quantities, never the paper's claim.
   */
  headline?: string;
  /** Cell id -> final samples' std over the data's, for rows without a sample_std_ratio (older results). */
  sampleScale?: Record<string, number>;
}

/** The results lack the rows a figure needs (a study not run yet): the figure is skipped, not broken. */
export class MissingDataError extends Error {
  constructor(readonly figure: string, readonly study: string, message: string) {
    super(message);
    this.name = 'MissingDataError';
  }
}

// ---- naming and formatting -------------------------------------------------------------

export const SIZE_ORDER = ['S', 'B', 'L', 'XL'] as const;
// Largest patch first (fewest tokens): DiT 8, 4, 2; mini 4, 2, 1.
export const PATCH_ORDER = [8, 4, 2, 1] as const;
/** Paper order of Fig. 5's legend. */
export const VARIANT_ORDER = ['in-context', 'cross-attention', 'adaln', 'adaln-zero'] as const;
const VARIANT_LABEL: Record<string, string> = {
  'in-context': 'In-Context',
  'cross-attention': 'Cross-Attention',
  adaln: 'adaLN',
  'adaln-zero': 'adaLN-Zero',
};
const VARIANT_COLOR: Record<string, string> = {
  'in-context': '#1f77b4',
  'cross-attention': '#ff7f0e',
  adaln: '#2ca02c',
  'adaln-zero': '#d62728',
};
export const SIZE_COLOR: Record<string, string> = { S: '#9ecae1', B: '#4292c6', L: '#ef6548', XL: '#b30000' };
// Colour, dash and symbol follow the patch's rank in its family (largest patch first),
// so the DiT family (8, 4, 2) and the mini family (4, 2, 1) draw alike.
const PATCH_STYLE = [
  { color: '#a1d99b', dash: 'dot', symbol: 'circle' },
  { color: '#41ab5d', dash: 'dash', symbol: 'square' },
  { color: '#00441b', dash: 'solid', symbol: 'diamond' },
];
export function patchStyle(model: string, patch: number | null): (typeof PATCH_STYLE)[number] {
  const fam = parseModelName(model)?.family;
  const list: readonly number[] = fam === 'DiT' || fam === 'mini' ? familyPatchSizes(fam) : [8, 4, 2];
  const i = patch === null ? -1 : list.indexOf(patch);
  return PATCH_STYLE[i < 0 ? PATCH_STYLE.length - 1 : Math.min(i, PATCH_STYLE.length - 1)];
}
const FALLBACK_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** "FID (default features)", "FID-Inception": the kit's CNN FIDs are not comparable with Inception ones. */
export function fidAxisTitle(featureNet: string | null | undefined): string {
  if (!featureNet) return 'FID';
  if (featureNet === 'inception') return 'FID-Inception';
  return `FID (${featureNet} features)`;
}

/**
 * The FID axis's title: fidAxisTitle when it fits beside the plot, else a short one that
 * points to the subtitle (which names the features in full): a long vertical title runs
 * over the figure's title.
 */
export function fidAxis(featureNet: string | null | undefined, extra = ''): string {
  const full = fidAxisTitle(featureNet);
  return full.length + extra.length <= 34 ? `${full}${extra}` : `FID${extra} (features: see the subtitle)`;
}

/** Gflops as the paper prints them (118.6), with enough digits for the mini family (0.0829). */
export function formatGflops(g: number): string {
  if (g >= 10) return g.toFixed(1);
  if (g >= 1) return g.toFixed(2);
  return g.toPrecision(3);
}

export function variantLabel(v: string): string {
  return VARIANT_LABEL[v] ?? v;
}


// ---- row access -------------------------------------------------------------------------

function num(r: ResultRow, c: keyof ResultRow): number | null {
  const v = r[c];
  if (v === null || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

function str(r: ResultRow, c: keyof ResultRow): string {
  const v = r[c];
  return v === null ? '' : String(v);
}

/** A trained (model, variant) cell and its evaluations. */
export interface Cell {
  model: string;
  variant: string;
  size: string | null;
  patch: number | null;
  gflops: number | null;
  rows: ResultRow[];
}

function cellKey(r: ResultRow): string {
  return `${str(r, 'model')}|${str(r, 'variant')}`;
}

/** Sampling settings of an evaluation: rows that differ only in these belong to different curves. */
function settingKey(r: ResultRow): string {
  return [str(r, 'sampler'), str(r, 'sampling_steps'), str(r, 'cfg_scale'), str(r, 'guidance_channels')].join('|');
}

function compareCells(a: Cell, b: Cell): number {
  const rank = (list: readonly (string | number)[], v: string | number | null) => (v === null || !list.includes(v) ? list.length : list.indexOf(v));
  return (
    rank(SIZE_ORDER, a.size) - rank(SIZE_ORDER, b.size) ||
    rank(PATCH_ORDER, a.patch) - rank(PATCH_ORDER, b.patch) ||
    rank(VARIANT_ORDER, a.variant) - rank(VARIANT_ORDER, b.variant) ||
    a.model.localeCompare(b.model) ||
    a.variant.localeCompare(b.variant)
  );
}

function groupCells(rows: ResultRow[]): Cell[] {
  const cells = new Map<string, Cell>();
  for (const r of rows) {
    const k = cellKey(r);
    let c = cells.get(k);
    if (!c) {
      const model = str(r, 'model');
      const parsed = parseModelName(model);
      c = { model, variant: str(r, 'variant'), size: parsed?.size ?? null, patch: num(r, 'patch_size') ?? parsed?.patch ?? null, gflops: null, rows: [] };
      cells.set(k, c);
    }
    c.gflops ??= num(r, 'gflops');
    c.rows.push(r);
  }
  return [...cells.values()].sort(compareCells);
}

export interface Selection {
  /** The rows the figure plots (one study, experiment and feature network, deduplicated). */
  rows: ResultRow[];
  experiment: string;
  featureNet: string | null;
  /** Experiments with rows for the study that were not chosen. */
  otherExperiments: string[];
}

/**
 * The rows of one study that a figure plots. Throws MissingDataError when there are
 * none, and a plain Error when the choice is ambiguous (several feature networks).
 */
export function selectRows(rows: readonly ResultRow[], study: string, figure: string, opts: FigureOptions = {}): Selection {
  let sel = rows.filter((r) => r.study === study && num(r, 'fid') !== null);
  if (!sel.length) {
    throw new MissingDataError(figure, study, `${figure}: no results with study '${study}' and a FID yet (run an experiment that has a '${study}' study)`);
  }
  // One experiment: the one asked for, else the one evaluated last.
  const latest = new Map<string, string>();
  for (const r of sel) {
    const e = str(r, 'experiment');
    const t = str(r, 'timestamp');
    if (!latest.has(e) || t > latest.get(e)!) latest.set(e, t);
  }
  let experiment: string;
  if (opts.experiment !== undefined) {
    if (!latest.has(opts.experiment)) {
      throw new MissingDataError(figure, study, `${figure}: experiment '${opts.experiment}' has no results with study '${study}' (experiments that do: ${[...latest.keys()].join(', ')})`);
    }
    experiment = opts.experiment;
  } else {
    experiment = [...latest.entries()].sort((a, b) => (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : a[0].localeCompare(b[0])))[0][0];
  }
  sel = sel.filter((r) => str(r, 'experiment') === experiment);
  // One feature network: FIDs of different networks are different units.
  const nets = [...new Set(sel.map((r) => str(r, 'feature_net')))].sort();
  let featureNet: string | null;
  if (opts.featureNet !== undefined) {
    sel = sel.filter((r) => str(r, 'feature_net') === opts.featureNet);
    if (!sel.length) {
      throw new MissingDataError(figure, study, `${figure}: no '${study}' results with feature_net '${opts.featureNet}' in experiment '${experiment}' (it has: ${nets.map((n) => n || '(empty)').join(', ')})`);
    }
    featureNet = opts.featureNet;
  } else if (nets.length > 1) {
    throw new Error(`${figure}: the '${study}' results of experiment '${experiment}' mix feature networks (${nets.map((n) => n || '(empty)').join(', ')}); choose one (featureNet, or --feature-net)`);
  } else featureNet = nets[0] || null;
  // Newest row per (cell, step, settings): a re-evaluation replaces the old one.
  const newest = new Map<string, ResultRow>();
  for (const r of sel) {
    const k = `${cellKey(r)}|${str(r, 'train_step')}|${settingKey(r)}`;
    const old = newest.get(k);
    if (!old || str(r, 'timestamp') >= str(old, 'timestamp')) newest.set(k, r);
  }
  return { rows: [...newest.values()], experiment, featureNet, otherExperiments: [...latest.keys()].filter((e) => e !== experiment).sort() };
}

/**
 * A cell's training curve: the evaluations at one sampling setting over training steps.
 * Where a cell also has extra evaluations (other step counts or guidance scales, done at
 * the final checkpoint only), the setting evaluated at the most training steps is the
 * curve; ties go to the lowest guidance scale, then to the most sampling steps.
 */
export function trainingCurve(cell: Cell): ResultRow[] {
  const bySetting = new Map<string, ResultRow[]>();
  for (const r of cell.rows) {
    if (num(r, 'train_step') === null) continue;
    const k = settingKey(r);
    bySetting.set(k, [...(bySetting.get(k) ?? []), r]);
  }
  const scored = [...bySetting.values()].map((rs) => ({
    rs,
    steps: new Set(rs.map((r) => num(r, 'train_step'))).size,
    cfg: num(rs[0], 'cfg_scale') ?? 1,
    sampling: num(rs[0], 'sampling_steps') ?? 0,
  }));
  scored.sort((a, b) => b.steps - a.steps || a.cfg - b.cfg || b.sampling - a.sampling);
  if (!scored.length) return [];
  return [...scored[0].rs].sort((a, b) => num(a, 'train_step')! - num(b, 'train_step')!);
}

/**
 * The study's last evaluated training step: a cell whose curve ends earlier has not
 * finished training (a run in progress), and final-step comparisons leave it out.
 */
export function studyLastStep(rows: readonly ResultRow[]): number | null {
  let last: number | null = null;
  for (const r of rows) {
    const t = num(r, 'train_step');
    if (t !== null && (last === null || t > last)) last = t;
  }
  return last;
}

/** The last evaluated training step of a curve (Fig. 8: the final FID of each cell). */
export function finalPoint(curve: ResultRow[]): ResultRow | null {
  return curve.length ? curve[curve.length - 1] : null;
}

// ---- layout pieces ----------------------------------------------------------------------

function subtitle(sel: Selection, rows: ResultRow[]): string {
  const parts = [`experiment ${sel.experiment || '(unnamed)'}`];
  const ns = [...new Set(rows.map((r) => num(r, 'num_samples')).filter((v): v is number => v !== null))];
  if (ns.length === 1) parts.push(`${ns[0].toLocaleString('en-US')} samples per FID`);
  const samplers = [...new Set(rows.map((r) => `${str(r, 'sampler')}-${str(r, 'sampling_steps')}${num(r, 'cfg_scale') !== null && num(r, 'cfg_scale') !== 1 ? `, cfg ${num(r, 'cfg_scale')}` : ''}`))];
  if (samplers.length === 1 && str(rows[0], 'sampler')) parts.push(samplers[0]);
  parts.push(fidAxisTitle(sel.featureNet));
  return parts.join(' · ');
}

/** Breaks text at word boundaries into lines of at most `chars` characters (Plotly titles do not wrap). */
export function wrapWords(text: string, chars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + w.length + 1 > chars) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  lines.push(line);
  return lines;
}

/**
 * A figure's title and subtitle wrapped to its width: the title at about 9.5 px per
 * character (17 px font), the subtitle at about 7 px (its smaller font).
 */
export function fitTitle(title: string, sub: string, width: number): string {
  const head = wrapWords(title.split('<br>').join(' '), Math.max(40, Math.floor((width - 40) / 9.5)));
  const subs = wrapWords(sub, Math.max(50, Math.floor((width - 40) / 7)));
  return [...head, ...subs.map((l) => `<sup>${l}</sup>`)].join('<br>');
}

/** The top margin that holds a title of this many lines (the subtitle included). */
export function titleMargin(text: string): number {
  return 44 + 23 * text.split('<br>').length;
}

/** A figure's layout; specs that set their own margins keep its top one (titleMargin). */
export function baseLayout(title: string, sub: string, width: number, height: number, headline?: string): Record<string, unknown> {
  const text = fitTitle(headline ?? title, sub, width);
  return {
    // Hung from the top of the page, so that a longer title grows into the margin made for it.
    title: { text, x: 0.02, xanchor: 'left', yref: 'container', y: 1, yanchor: 'top', pad: { t: 30 } },
    width,
    height,
    font: { family: 'DejaVu Sans, Arial, sans-serif', size: 13 },
    paper_bgcolor: '#ffffff',
    plot_bgcolor: '#ffffff',
    hovermode: 'closest',
    margin: { l: 70, r: 30, t: titleMargin(text), b: 60 },
  };
}

export function axis(title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { title: { text: title }, showline: true, linecolor: '#444', mirror: true, ticks: 'outside', gridcolor: '#e5e5e5', zeroline: false, ...extra };
}

function sizeLabel(cell: Cell): string {
  const p = parseModelName(cell.model);
  return p ? `${p.family}-${p.size}` : cell.model;
}

function hoverText(r: ResultRow): string {
  const g = num(r, 'gflops');
  return [
    `${str(r, 'model')} ${variantLabel(str(r, 'variant'))}`,
    g !== null ? `${formatGflops(g)} Gflops` : '',
    `step ${str(r, 'train_step')}`,
    `FID ${num(r, 'fid')!.toFixed(2)}`,
  ].filter(Boolean).join('<br>');
}

/** The cell's final samples' std over the data's when outside the gate (figures/resolution), else null. */
export function offScale(cell: Cell, opts: FigureOptions = {}): number | null {
  const r = finalPoint(trainingCurve(cell));
  const v = r ? stdRatio(r, opts.sampleScale) : null;
  return onScale(v) === false ? v : null;
}

/** ' (off-scale 3.20x)' for a flagged cell, else ''. */
function offTag(cell: Cell, opts: FigureOptions): string {
  const v = offScale(cell, opts);
  return v === null ? '' : ` (off-scale ${v.toFixed(2)}x)`;
}

// ---- Fig. 5 -----------------------------------------------------------------------------

/** Fig. 5: FID over training steps for the four conditioning designs; the legend carries each one's Gflops. */
export function fig5Conditioning(rows: readonly ResultRow[], opts: FigureOptions = {}): FigureSpec {
  const sel = selectRows(rows, 'conditioning', 'Fig. 5 (conditioning)', opts);
  const cells = groupCells(sel.rows);
  const models = new Set(cells.map((c) => c.model));
  const data: PlotlyTrace[] = [];
  const plotted: ResultRow[] = [];
  cells.forEach((cell, i) => {
    const curve = trainingCurve(cell);
    if (!curve.length) return;
    plotted.push(...curve);
    const g = cell.gflops !== null ? ` (${formatGflops(cell.gflops)} Gflops)` : '';
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: `${cell.model} ${variantLabel(cell.variant)}${g}${offTag(cell, opts)}`,
      x: curve.map((r) => num(r, 'train_step')),
      y: curve.map((r) => num(r, 'fid')),
      text: curve.map(hoverText),
      hoverinfo: 'text',
      line: { color: models.size === 1 ? VARIANT_COLOR[cell.variant] ?? FALLBACK_COLORS[i % 10] : FALLBACK_COLORS[i % 10], width: 2.5 },
      marker: { size: 6 },
    });
  });
  const layout = baseLayout(`Fig. 5: conditioning strategies (${[...models].join(', ')})`, subtitle(sel, plotted), 1040, 520, opts.headline);
  layout.xaxis = axis('Training Steps');
  layout.yaxis = axis(fidAxis(sel.featureNet));
  // Right of the plot: inside it, the legend hid the lines' last points.
  layout.legend = { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' };
  layout.margin = { ...(layout.margin as object), l: 70, r: 260, b: 60 };
  return { data, layout };
}

// ---- Fig. 6 -----------------------------------------------------------------------------

/**
 * Fig. 6: FID over training steps for the 12 models, as the paper's two rows of panels.
 * Top: one panel per patch size, a line per model size (scaling the transformer).
 * Bottom: one panel per model size, a line per patch size (scaling the tokens).
 * All panels share both axes, so heights compare across panels.
 */
export function fig6Scaling(rows: readonly ResultRow[], opts: FigureOptions = {}): FigureSpec {
  const sel = selectRows(rows, 'scaling', 'Fig. 6 (scaling)', opts);
  const cells = groupCells(sel.rows).filter((c) => c.size !== null && c.patch !== null);
  if (!cells.length) {
    throw new MissingDataError('Fig. 6 (scaling)', 'scaling', `Fig. 6 (scaling): no 'scaling' results for models named like mini-S/4 ... DiT-XL/2`);
  }
  const curves = new Map(cells.map((c) => [c, trainingCurve(c)]));
  const patches = PATCH_ORDER.filter((p) => cells.some((c) => c.patch === p));
  const sizes = SIZE_ORDER.filter((s) => cells.some((c) => c.size === s));
  const family = parseModelName(cells[0].model)?.family ?? 'DiT';
  const data: PlotlyTrace[] = [];
  const layout = baseLayout('Fig. 6: scaling the DiT model (top: patch size fixed; bottom: model size fixed)', subtitle(sel, [...curves.values()].flat()), 1400, 820, opts.headline);
  // 10 more at the top for the panel titles.
  layout.margin = { l: 70, r: 150, t: (layout.margin as { t: number }).t + 10, b: 100 };
  const annotations: Record<string, unknown>[] = [];
  const gap = 0.04;
  const rowsY = [[0.56, 1], [0, 0.44]];
  let axisIndex = 0;
  const panel = (rowIdx: number, col: number, ncol: number, title: string, lines: Cell[], byPatch: boolean) => {
    axisIndex++;
    const suffix = axisIndex === 1 ? '' : String(axisIndex);
    const w = (1 - gap * (ncol - 1)) / ncol;
    const x0 = col * (w + gap);
    const [y0, y1] = rowsY[rowIdx];
    layout[`xaxis${suffix}`] = axis(rowIdx === 1 ? 'Training Steps' : '', { domain: [x0, x0 + w], anchor: `y${suffix}`, ...(axisIndex > 1 ? { matches: 'x' } : {}) });
    layout[`yaxis${suffix}`] = axis(col === 0 ? fidAxis(sel.featureNet) : '', { domain: [y0, y1], anchor: `x${suffix}`, ...(axisIndex > 1 ? { matches: 'y' } : {}) });
    annotations.push({ text: `<b>${title}</b>`, xref: 'paper', yref: 'paper', x: x0 + w / 2, y: y1, xanchor: 'center', yanchor: 'bottom', showarrow: false, font: { size: 14 } });
    for (const cell of lines) {
      const curve = curves.get(cell)!;
      if (!curve.length) continue;
      const key = byPatch ? `p${cell.patch}` : `size ${cell.size}`;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: byPatch ? `patch size ${cell.patch}` : `${family}-${cell.size}`,
        legendgroup: key,
        legend: byPatch ? 'legend2' : 'legend',
        // One legend entry per group, from the first panel that draws it.
        showlegend: !data.some((t) => t.legendgroup === key),
        xaxis: `x${suffix}`,
        yaxis: `y${suffix}`,
        x: curve.map((r) => num(r, 'train_step')),
        y: curve.map((r) => num(r, 'fid')),
        text: curve.map(hoverText),
        hoverinfo: 'text',
        line: { color: byPatch ? patchStyle(cell.model, cell.patch).color : SIZE_COLOR[cell.size!], width: 2.5, dash: offScale(cell, opts) ? 'dot' : 'solid' },
        marker: { size: 5 },
      });
    }
  };
  patches.forEach((p, i) => panel(0, i, Math.max(patches.length, 3), `Patch size ${p}`, cells.filter((c) => c.patch === p), false));
  sizes.forEach((s, i) => panel(1, i, Math.max(sizes.length, 4), `${family}-${s}`, cells.filter((c) => c.size === s), true));
  // The experiment's FID floor and ceiling in every panel (one legend entry each).
  // The FID axis fits the curves (the panels share it), so that the differences the figure
  // is about are not squeezed by a far reference line; lines outside it say so in the legend.
  const fids = [...curves.values()].flat().map((r) => num(r, 'fid')).filter((v): v is number => v !== null);
  const pad = 0.06 * (Math.max(...fids) - Math.min(...fids) || 1);
  const range: [number, number] = [Math.min(...fids) - pad, Math.max(...fids) + pad];
  (layout.yaxis as Record<string, unknown>).range = range;
  const cal = calibrationFids(rows, sel).map((c) => (c.fid < range[0] || c.fid > range[1] ? { ...c, label: `${c.label} (off the axis)` } : c));
  const steps = [...curves.values()].flat().map((r) => num(r, 'train_step')!);
  for (let k = 1; k <= axisIndex && cal.length; k++) {
    const suffix = k === 1 ? '' : String(k);
    for (const t of calibrationTraces(cal, Math.min(...steps), Math.max(...steps), { xaxis: `x${suffix}`, yaxis: `y${suffix}`, showlegend: k === 1 })) {
      data.push({ ...t, legend: 'legend3' });
    }
  }
  const flagged = cells.filter((c) => offScale(c, opts) !== null);
  if (flagged.length) {
    annotations.push({ text: `dotted: samples off the data's scale (std ratio outside ${STD_RATIO_GATE.join('-')}x): ${flagged.map((c) => `${c.model}${offTag(c, opts)}`).join(', ')}`,
      xref: 'paper', yref: 'paper', x: 0, y: -0.2, xanchor: 'left', yanchor: 'top', showarrow: false, font: { size: 12, color: '#c00' } });
  }
  layout.annotations = annotations;
  layout.legend = { title: { text: 'model size' }, x: 1.01, xanchor: 'left', y: 1, yanchor: 'top' };
  layout.legend2 = { title: { text: 'patch size' }, x: 1.01, xanchor: 'left', y: 0.44, yanchor: 'top' };
  if (cal.length) layout.legend3 = { title: { text: 'FID of (same evaluation)' }, orientation: 'h', x: 0, xanchor: 'left', y: -0.12, yanchor: 'top' };
  return { data, layout };
}


// ---- FID's scale: the experiment's calibration rows ------------------------------------

const CALIBRATION_LABEL: Record<string, string> = {
  'real-images': 'held-out real images',
  autoencoder: 'real images through the autoencoder',
  'gaussian-latents': 'N(0, I) latents decoded (a model that learned nothing)',
};
const CALIBRATION_DASH: Record<string, string> = { 'real-images': 'dot', autoencoder: 'dashdot', 'gaussian-latents': 'longdash' };

/**
 * The experiment's calibration FIDs (lib/experiments/calibration) for the figure's
 * experiment and feature network, newest per input: the floor and the ceiling that the
 * same evaluation gives inputs of known quality.
 */
export function calibrationFids(rows: readonly ResultRow[], sel: Pick<Selection, 'experiment' | 'featureNet'>): Array<{ cell: string; label: string; fid: number }> {
  const newest = new Map<string, ResultRow>();
  for (const r of rows) {
    if (r.study !== 'calibration' || str(r, 'experiment') !== sel.experiment || num(r, 'fid') === null) continue;
    if ((str(r, 'feature_net') || null) !== sel.featureNet) continue;
    const k = str(r, 'cell');
    if (!newest.has(k) || str(r, 'timestamp') > str(newest.get(k)!, 'timestamp')) newest.set(k, r);
  }
  return Object.keys(CALIBRATION_LABEL)
    .filter((k) => newest.has(k))
    .map((k) => ({ cell: k, label: CALIBRATION_LABEL[k], fid: num(newest.get(k)!, 'fid')! }));
}

/** Horizontal reference lines (as traces, so log axes need no special care) from x0 to x1 on the given axes. */
function calibrationTraces(
  cal: ReturnType<typeof calibrationFids>, x0: number, x1: number, axes: { xaxis?: string; yaxis?: string; showlegend?: boolean } = {},
): PlotlyTrace[] {
  return cal.map((c) => ({
    type: 'scatter', mode: 'lines', x: [x0, x1], y: [c.fid, c.fid],
    name: `${c.label}: FID ${c.fid.toFixed(1)}`, legendgroup: `calibration-${c.cell}`, showlegend: axes.showlegend ?? true,
    line: { color: '#999', dash: CALIBRATION_DASH[c.cell], width: 1.2 }, hoverinfo: 'name',
    ...(axes.xaxis ? { xaxis: axes.xaxis, yaxis: axes.yaxis } : {}),
  }));
}

// ---- Fig. 8 -----------------------------------------------------------------------------

export interface GflopsFidStats {
  /** The points the statistics use: one per on-scale cell, its last evaluated training step. */
  points: Array<{ model: string; variant: string; gflops: number; fid: number; fidSe: number | null; trainStep: number; stdRatio: number | null }>;
  /** Cells left out of the fit: samples off the data's scale (figures/resolution STD_RATIO_GATE). */
  excluded: Array<{ model: string; variant: string; gflops: number; fid: number; stdRatio: number }>;
  /** Bootstrap 95% interval of the log-log Pearson r (models resampled, FIDs perturbed by their se and the seed spread). */
  pearsonCi: [number, number];
  /** Between-seed spread of FID used for the interval (0 without replicates). */
  seSeed: number;
  /** Models not yet evaluated at the study's last step (a run in progress): not drawn, not fitted. */
  unfinished: string[];
  /** Correlation of log10 Gflops with log10 FID (the figure's axes), and of the plain values. */
  log: { pearson: Correlation; spearman: Correlation };
  plain: { pearson: Correlation; spearman: Correlation };
  /** FID = a * Gflops^b, least squares on log10 values, with the 95% band of the mean prediction. */
  powerLaw: { a: number; b: number; bStderr: number; log10aStderr: number; r2: number; level: number; band: Band };
}

export interface Fig8Spec extends FigureSpec {
  stats: GflopsFidStats;
}

function fmtP(p: number): string {
  return p < 1e-3 ? p.toExponential(1) : p.toFixed(3);
}

/**
 * Fig. 8: final FID of each model (its last evaluated training step) against its
 * forward Gflops on log-log axes, with the correlations and a power-law fit
 * FID = a * Gflops^b with its 95% confidence band. The statistics come back in `stats`.
 */
export function fig8GflopsVsFid(rows: readonly ResultRow[], opts: FigureOptions = {}): Fig8Spec {
  const figure = 'Fig. 8 (Gflops vs FID)';
  const sel = selectRows(rows, 'scaling', figure, opts);
  const cells = groupCells(sel.rows);
  const all: Array<{ cell: Cell; row: ResultRow }> = [];
  const lastStep = studyLastStep(sel.rows);
  const unfinished: string[] = [];
  for (const cell of cells) {
    const row = finalPoint(trainingCurve(cell));
    if (row && num(row, 'train_step') !== lastStep) unfinished.push(cell.model);
    else if (row && cell.gflops !== null && cell.gflops > 0) all.push({ cell, row });
  }
  // Off-scale models are drawn but left out of every statistic.
  const finals = all.filter((f) => onScale(stdRatio(f.row, opts.sampleScale)) !== false);
  const off = all.filter((f) => onScale(stdRatio(f.row, opts.sampleScale)) === false);
  if (finals.length < 3) {
    throw new MissingDataError(figure, 'scaling', `${figure}: needs the final FID of at least 3 on-scale models in study 'scaling' to fit a power law (have ${finals.length}${off.length ? `; ${off.length} off-scale left out` : ''})`);
  }
  const gflops = finals.map((f) => f.cell.gflops!);
  const fid = finals.map((f) => num(f.row, 'fid')!);
  const fidSe = finals.map((f) => num(f.row, 'fid_se'));
  const lg = gflops.map(Math.log10);
  const lf = fid.map(Math.log10);
  const pl = powerLawFit(gflops, fid);
  const lo = Math.min(...all.map((f) => f.cell.gflops!));
  const hi = Math.max(...all.map((f) => f.cell.gflops!));
  // The fitted line spans the data and a little beyond, as far as the band stays readable.
  const xs = logspace(lo / 1.5, hi * 1.5, 60);
  const band = powerLawBand(pl, xs, 0.95);
  const seSeed = seedSpread(rows, sel.experiment, sel.featureNet).se;
  const stats: GflopsFidStats = {
    points: finals.map((f, i) => ({ model: f.cell.model, variant: f.cell.variant, gflops: gflops[i], fid: fid[i], fidSe: fidSe[i], trainStep: num(f.row, 'train_step')!, stdRatio: stdRatio(f.row, opts.sampleScale) })),
    excluded: off.map((f) => ({ model: f.cell.model, variant: f.cell.variant, gflops: f.cell.gflops!, fid: num(f.row, 'fid')!, stdRatio: stdRatio(f.row, opts.sampleScale)! })),
    pearsonCi: bootstrapLogPearson(gflops, fid, fidSe, seSeed),
    seSeed,
    unfinished,
    log: { pearson: pearson(lg, lf), spearman: spearman(lg, lf) },
    plain: { pearson: pearson(gflops, fid), spearman: spearman(gflops, fid) },
    powerLaw: { a: pl.a, b: pl.b, bStderr: pl.bStderr, log10aStderr: pl.log10aStderr, r2: pl.logFit.r ** 2, level: 0.95, band },
  };
  const variants = new Set(finals.map((f) => f.cell.variant));
  const data: PlotlyTrace[] = [
    { type: 'scatter', mode: 'lines', x: band.x, y: band.lower, line: { width: 0 }, hoverinfo: 'skip', showlegend: false, name: '95% band (lower)' },
    { type: 'scatter', mode: 'lines', x: band.x, y: band.upper, fill: 'tonexty', fillcolor: 'rgba(120,120,120,0.18)', line: { width: 0 }, hoverinfo: 'skip', name: '95% confidence band' },
    { type: 'scatter', mode: 'lines', x: band.x, y: band.y, line: { color: '#555', dash: 'dash', width: 1.5 }, name: `fit: FID = ${pl.a.toPrecision(3)} · Gflops^${pl.b.toFixed(3)}`, hoverinfo: 'skip' },
  ];
  const bySize = new Map<string, number[]>();
  finals.forEach((f, i) => {
    const k = f.cell.size ?? f.cell.model;
    bySize.set(k, [...(bySize.get(k) ?? []), i]);
  });
  let c = 0;
  for (const [size, idx] of bySize) {
    const first = finals[idx[0]].cell;
    data.push({
      type: 'scatter',
      mode: 'markers+text',
      name: first.size ? sizeLabel(first) : first.model,
      x: idx.map((i) => gflops[i]),
      y: idx.map((i) => fid[i]),
      text: idx.map((i) => {
        const p = parseModelName(finals[i].cell.model);
        const short = p ? `${p.size}/${p.patch}` : finals[i].cell.model;
        return variants.size > 1 ? `${short} ${variantLabel(finals[i].cell.variant)}` : short;
      }),
      textposition: 'top right',
      hovertext: idx.map((i) => hoverText(finals[i].row)),
      hoverinfo: 'text',
      marker: {
        size: 11,
        color: SIZE_COLOR[size] ?? FALLBACK_COLORS[c++ % 10],
        symbol: idx.map((i) => patchStyle(finals[i].cell.model, finals[i].cell.patch).symbol),
        line: { color: '#222', width: 1 },
      },
    });
  }
  if (off.length) {
    data.push({
      type: 'scatter', mode: 'markers+text', name: `off the data's scale (std ratio outside ${STD_RATIO_GATE.join('-')}x): left out of the fit`,
      x: off.map((f) => f.cell.gflops!), y: off.map((f) => num(f.row, 'fid')!),
      text: off.map((f) => `${f.cell.model} ${stdRatio(f.row, opts.sampleScale)!.toFixed(2)}x`), textposition: 'bottom right',
      hovertext: off.map((f) => hoverText(f.row)), hoverinfo: 'text',
      marker: { size: 11, color: 'rgba(0,0,0,0)', symbol: 'x-open', line: { color: '#c00', width: 2 } },
    });
  }
  data.push(...calibrationTraces(calibrationFids(rows, sel), lo / 1.5, hi * 1.5));
  const s = stats;
  const note = [
    `log Gflops vs log FID: Pearson r = ${s.log.pearson.r.toFixed(3)} (bootstrap 95% CI ${s.pearsonCi[0].toFixed(3)} .. ${s.pearsonCi[1].toFixed(3)}; p ${fmtP(s.log.pearson.p)}), Spearman ρ = ${s.log.spearman.r.toFixed(3)} (p ${fmtP(s.log.spearman.p)})`,
    `plain values: Pearson r = ${s.plain.pearson.r.toFixed(3)} (p ${fmtP(s.plain.pearson.p)}), Spearman ρ = ${s.plain.spearman.r.toFixed(3)}`,
    `FID = ${pl.a.toPrecision(3)} · Gflops^(${pl.b.toFixed(3)} ± ${pl.bStderr.toFixed(3)}), R² = ${s.powerLaw.r2.toFixed(3)}, n = ${finals.length} on-scale models at step ${lastStep}${off.length ? ` (${off.length} off-scale left out)` : ''}${unfinished.length ? `; not yet at step ${lastStep}: ${unfinished.join(', ')}` : ''}; band: 95% CI of the mean`,
  ].join('<br>');
  const layout = baseLayout('Fig. 8: transformer Gflops vs FID', subtitle(sel, finals.map((f) => f.row)), 1200, 640, opts.headline);
  // The legend sits right of the plot: it is long (fit, band, sizes, calibration lines) and must not hide points.
  layout.margin = { ...(layout.margin as object), l: 70, r: 330, b: 150 };
  layout.xaxis = axis('Transformer Gflops (forward pass, one sample)', { type: 'log' });
  layout.yaxis = axis(fidAxis(sel.featureNet, ', log scale'), { type: 'log' });
  // traceorder: plotly reverses legends that hold a 'tonexty' fill unless told otherwise.
  layout.legend = { traceorder: 'normal', x: 1.02, xanchor: 'left', y: 1, yanchor: 'top', bgcolor: 'rgba(255,255,255,0.85)', bordercolor: '#ccc', borderwidth: 1 };
  layout.annotations = [{ text: note, xref: 'paper', yref: 'paper', x: 0, y: -0.2, xanchor: 'left', yanchor: 'top', align: 'left', showarrow: false, font: { size: 12 } }];
  return { data, layout, stats };
}

// ---- Fig. 9 -----------------------------------------------------------------------------

/** Training compute of a row: the train_gflops column, else Gflops x batch x steps x 3 (paper Fig. 9). */
export function trainGflops(r: ResultRow): number | null {
  const t = num(r, 'train_gflops');
  if (t !== null) return t;
  const g = num(r, 'gflops');
  const b = num(r, 'batch_size');
  const s = num(r, 'train_step');
  return g !== null && b !== null && s !== null ? g * b * s * 3 : null;
}

/** Fig. 9: FID against total training compute (Gflops x batch x steps x 3), log x, one line per model. */
export function fig9TrainingCompute(rows: readonly ResultRow[], opts: FigureOptions = {}): FigureSpec {
  const sel = selectRows(rows, 'scaling', 'Fig. 9 (training compute)', opts);
  const cells = groupCells(sel.rows);
  const data: PlotlyTrace[] = [];
  const plotted: ResultRow[] = [];
  cells.forEach((cell, i) => {
    const curve = trainingCurve(cell).filter((r) => (trainGflops(r) ?? 0) > 0);
    if (!curve.length) return;
    plotted.push(...curve);
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: cell.model + (new Set(cells.map((c) => c.variant)).size > 1 ? ` ${variantLabel(cell.variant)}` : '') + offTag(cell, opts),
      x: curve.map(trainGflops),
      y: curve.map((r) => num(r, 'fid')),
      text: curve.map(hoverText),
      hoverinfo: 'text',
      line: { color: cell.size ? SIZE_COLOR[cell.size] : FALLBACK_COLORS[i % 10], dash: patchStyle(cell.model, cell.patch).dash, width: 2.5 },
      marker: { size: 5 },
    });
  });
  if (!data.length) throw new MissingDataError('Fig. 9 (training compute)', 'scaling', `Fig. 9 (training compute): no 'scaling' results with training compute (train_gflops, or gflops, batch_size and train_step)`);
  const layout = baseLayout('Fig. 9: FID against training compute', subtitle(sel, plotted), 900, 560, opts.headline);
  layout.xaxis = axis('Training Compute (Gflops)', { type: 'log', exponentformat: 'power' });
  layout.yaxis = axis(fidAxis(sel.featureNet));
  layout.legend = { x: 1.01, xanchor: 'left', y: 1, yanchor: 'top' };
  layout.margin = { ...(layout.margin as object), l: 70, r: 140, b: 60 };
  return { data, layout };
}

// ---- Fig. 10 ----------------------------------------------------------------------------

/** Sampling compute of a row: the sampling_gflops_per_image column, else Gflops x sampling steps (x2 with guidance) (paper Fig. 10). */
export function samplingGflopsPerImage(r: ResultRow): number | null {
  const s = num(r, 'sampling_gflops_per_image');
  if (s !== null) return s;
  const g = num(r, 'gflops');
  const n = num(r, 'sampling_steps');
  const cfg = num(r, 'cfg_scale');
  return g !== null && n !== null ? g * n * (cfg !== null && cfg !== 1 ? 2 : 1) : null;
}

/**
 * Fig. 10: FID of each model's final checkpoint, sampled with several step counts,
 * against sampling compute per image (Gflops x sampling steps), log x. A model
 * evaluated with several guidance scales or samplers gets a line per setting.
 */
export function fig10SamplingCompute(rows: readonly ResultRow[], opts: FigureOptions = {}): FigureSpec {
  const figure = 'Fig. 10 (sampling compute)';
  const sel = selectRows(rows, 'sampling-compute', figure, opts);
  const cells = groupCells(sel.rows);
  const lines: Array<{ cell: Cell; setting: string; rows: ResultRow[] }> = [];
  const studyLast = studyLastStep(sel.rows);
  for (const cell of cells) {
    const last = Math.max(...cell.rows.map((r) => num(r, 'train_step') ?? -Infinity));
    if (last !== studyLast) continue; // not finished: its final checkpoint is not the study's
    const final = cell.rows.filter((r) => num(r, 'train_step') === last && (samplingGflopsPerImage(r) ?? 0) > 0);
    // Lines: one per guidance scale and sampler; points: the sampling step counts.
    const bySetting = new Map<string, ResultRow[]>();
    for (const r of final) {
      const k = `${str(r, 'sampler')}|${str(r, 'cfg_scale')}|${str(r, 'guidance_channels')}`;
      bySetting.set(k, [...(bySetting.get(k) ?? []), r]);
    }
    for (const [setting, rs] of bySetting) lines.push({ cell, setting, rows: rs.sort((a, b) => samplingGflopsPerImage(a)! - samplingGflopsPerImage(b)!) });
  }
  if (!lines.length) throw new MissingDataError(figure, 'sampling-compute', `${figure}: no 'sampling-compute' results with sampling compute (sampling_gflops_per_image, or gflops and sampling_steps)`);
  const settings = new Set(lines.map((l) => l.setting));
  const variants = new Set(cells.map((c) => c.variant));
  const data: PlotlyTrace[] = lines.map(({ cell, rows: rs }, i) => {
    const cfg = num(rs[0], 'cfg_scale');
    const extra = [variants.size > 1 ? variantLabel(cell.variant) : '', settings.size > 1 ? `${str(rs[0], 'sampler')}${cfg !== null ? `, cfg ${cfg}` : ''}` : ''].filter(Boolean).join(', ');
    return {
      type: 'scatter',
      mode: 'lines+markers+text',
      name: (extra ? `${cell.model} (${extra})` : cell.model) + offTag(cell, opts),
      x: rs.map(samplingGflopsPerImage),
      y: rs.map((r) => num(r, 'fid')),
      text: rs.map((r) => String(num(r, 'sampling_steps') ?? '')),
      textposition: 'top center',
      textfont: { size: 10 },
      hovertext: rs.map((r) => `${hoverText(r)}<br>${str(r, 'sampling_steps')} sampling steps<br>${formatGflops(samplingGflopsPerImage(r)!)} Gflops per image`),
      hoverinfo: 'text',
      // Colour by model size and dash by patch size, as Fig. 9, unless a model has several lines.
      line: {
        color: cell.size && lines.filter((l) => l.cell.model === cell.model).length === 1 ? SIZE_COLOR[cell.size] : FALLBACK_COLORS[i % 10],
        dash: patchStyle(cell.model, cell.patch).dash, width: 2.5,
      },
      marker: { size: 6 },
    };
  });
  const steps = [...new Set(sel.rows.map((r) => num(r, 'train_step')).filter((v): v is number => v !== null))];
  const sub = subtitle(sel, lines.flatMap((l) => l.rows)) + ` · final checkpoint${steps.length ? ` (step ${Math.max(...steps)})` : ''}; labels: sampling steps`;
  const layout = baseLayout('Fig. 10: FID against sampling compute', sub, 900, 560, opts.headline);
  layout.xaxis = axis('Sampling Compute (Gflops per image)', { type: 'log', exponentformat: 'power' });
  layout.yaxis = axis(fidAxis(sel.featureNet));
  layout.legend = { x: 1.01, xanchor: 'left', y: 1, yanchor: 'top' };
  layout.margin = { ...(layout.margin as object), l: 70, r: 160, b: 60 };
  return { data, layout };
}

// ---- the list the CLI and notebooks use ---------------------------------------------------

export interface FigureDef {
  /** Output file stem under results/figures/. */
  file: string;
  title: string;
  study: string;
  make(rows: readonly ResultRow[], opts?: FigureOptions): FigureSpec;
}

export const FIGURES: readonly FigureDef[] = [
  { file: 'fig5-conditioning', title: 'Fig. 5: conditioning strategies', study: 'conditioning', make: fig5Conditioning },
  { file: 'fig6-scaling', title: 'Fig. 6: scaling model and patch size', study: 'scaling', make: fig6Scaling },
  { file: 'fig8-gflops-vs-fid', title: 'Fig. 8: Gflops vs FID', study: 'scaling', make: fig8GflopsVsFid },
  { file: 'fig9-training-compute', title: 'Fig. 9: training compute', study: 'scaling', make: fig9TrainingCompute },
  { file: 'fig10-sampling-compute', title: 'Fig. 10: sampling compute', study: 'sampling-compute', make: fig10SamplingCompute },
];
