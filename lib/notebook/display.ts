// Rich outputs for tslab notebooks: plotly figures (notebookPlot) and PNGs as inline
// <img> elements with base64 data. Outside a notebook kernel (node, tests) they say
// what they would have shown instead of failing.
import * as fs from 'fs';
import type { DataFrame } from 'danfojs-node';
import { FigureOptions, FigureSpec, MissingDataError } from '../figures/specs';
import { notebookPlot } from '../figures/html';
import { STD_RATIO_GATE } from '../figures/resolution';
import type { ResultRow } from '../results/registry';
import { NotebookResults, rel, sampleScaleOf } from './results';
import { measuredHeadline } from './findings';

/** tslab's display, when this process is a tslab kernel executing a cell; else null. */
function tslabDisplay(): { html(s: string): void } | null {
  try {
    // Only look when the kernel has loaded tslab (requiring it elsewhere would load TypeScript).
    const id = require.resolve('tslab/dist/jupyter');
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- only once the kernel has loaded it
    if (!require.cache[id] || !require(id).lastWriteDisplayData) return null;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- as above
    return require('tslab').display;
  } catch {
    return null;
  }
}

/** Displays HTML in the notebook (outside one: prints a one-line note). */
export function showHtml(html: string, what = 'HTML output'): void {
  const d = tslabDisplay();
  if (d) d.html(html);
  else console.log(`[${what}: ${html.length.toLocaleString('en-US')} characters of HTML; shown inline in a notebook]`);
}

/** Draws a plotly spec inline (plotly.js is embedded in the first figure of the kernel). */
export function show(spec: FigureSpec): void {
  const title = (spec.layout.title as { text?: string } | undefined)?.text?.split('<br>')[0] ?? 'figure';
  showHtml(notebookPlot(spec), title);
}

/**
 * Makes and shows one of the paper's figures from result rows. When the rows lack what
 * the figure needs (a study not run, too few models) it says so and returns null
 * instead of failing the notebook.
 */
export function showFigure<S extends FigureSpec>(make: (rows: readonly ResultRow[], opts?: FigureOptions) => S, rows: readonly ResultRow[], opts: FigureOptions = {}): S | null {
  try {
    const spec = make(rows, { headline: measuredHeadline(make, rows, opts), ...opts });
    show(spec);
    return spec;
  } catch (err) {
    if (!(err instanceof MissingDataError)) throw err;
    console.log(`${err.figure} is not drawn: ${err.message}`);
    return null;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface PngOptions {
  caption?: string;
  /** Displayed width in CSS pixels (default: the PNG's own width x zoom). */
  width?: number;
  /** Displayed magnification with crisp pixels (default 3: the kit's images are 32x32). */
  zoom?: number;
}

/** The PNG's pixel width from its IHDR chunk. */
function pngWidth(b: Uint8Array): number {
  return (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
}

/** An <img> element holding the PNG (a file or its bytes) as base64 data, with an optional caption. */
export function pngHtml(png: string | Uint8Array, o: PngOptions = {}): string {
  const bytes = typeof png === 'string' ? fs.readFileSync(png) : Buffer.from(png);
  const width = o.width ?? pngWidth(bytes) * (o.zoom ?? 3);
  const img = `<img src="data:image/png;base64,${bytes.toString('base64')}" style="width:${width}px;image-rendering:pixelated" alt="${escapeHtml(o.caption ?? 'image')}">`;
  return `<figure style="margin:0">${img}${o.caption ? `<figcaption style="font-size:90%">${escapeHtml(o.caption)}</figcaption>` : ''}</figure>`;
}

/** Shows a PNG inline as <img> with base64 data. A missing file is said, not thrown. */
export function showPng(png: string | Uint8Array | null, o: PngOptions = {}): void {
  if (png === null || (typeof png === 'string' && !fs.existsSync(png))) {
    console.log(`no image to show${typeof png === 'string' ? `: ${rel(png)} does not exist` : ''}`);
    return;
  }
  showHtml(pngHtml(png, o), o.caption ?? (typeof png === 'string' ? rel(png) : 'PNG'));
}

function cellText(v: unknown): string {
  if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '';
  return typeof v === 'number' ? v.toLocaleString('en-US', { maximumSignificantDigits: 6, useGrouping: false }) : String(v);
}

/**
 * A danfojs DataFrame as an HTML table in the notebook (outside one: df.print()).
 * Long frames show their first `maxRows` rows.
 */
export function showTable(df: DataFrame, o: { caption?: string; maxRows?: number } = {}): void {
  const max = o.maxRows ?? 50;
  const d = tslabDisplay();
  if (!d) {
    if (o.caption) console.log(o.caption);
    (df.shape[0] > max ? df.head(max) : df).print();
    return;
  }
  const cols = df.columns as string[];
  const values = (df.values as unknown[][]).slice(0, max);
  const th = (s: string) => `<th style="text-align:right;padding:2px 8px">${escapeHtml(s)}</th>`;
  const td = (v: unknown) => `<td style="text-align:${typeof v === 'number' ? 'right' : 'left'};padding:2px 8px">${escapeHtml(cellText(v))}</td>`;
  const more = df.shape[0] > max ? `<p style="font-size:85%">... ${df.shape[0] - max} more rows</p>` : '';
  const cap = o.caption ? `<caption style="text-align:left;font-weight:bold;padding:4px 0">${escapeHtml(o.caption)}</caption>` : '';
  d.html(`<table style="border-collapse:collapse;font-size:90%">${cap}<thead><tr>${th('')}${cols.map(th).join('')}</tr></thead>` +
    `<tbody>${values.map((row, i) => `<tr style="border-top:1px solid #ddd">${td(i)}${row.map(td).join('')}</tr>`).join('')}</tbody></table>${more}`);
}

/** Shows the Fig. 7 sample grid of a notebook's results (or says why there is none). */
export function showSampleGrid(r: NotebookResults): boolean {
  if (!r.fig7) {
    console.log(`no Fig. 7 sample grid for experiment ${r.experiment}: it is written by runExperiment ` +
      `(results/figures/${r.experiment}-fig7-samples.png); run with DIT_NOTEBOOK_MODE=${r.mode === 'committed' ? r.experiment : r.mode} to make it`);
    return false;
  }
  const models = r.config?.studies.find((s) => s.name === 'scaling')?.models ?? [];
  showPng(r.fig7, {
    caption: `Fig. 7 (${r.experiment}): one row per model${models.length ? ` (${models.join(', ')}, top to bottom, those with a checkpoint)` : ''}, one column per class; every model starts from the same noise and labels`,
  });
  // Its numeric companion (written beside the PNG): how far each model's samples are from the data's scale.
  const ratios = sampleScaleOf(r.fig7);
  if (ratios) {
    const [lo, hi] = STD_RATIO_GATE;
    console.log(`samples' std over the data's (on-scale: ${lo}-${hi}x): ` +
      Object.entries(ratios).map(([c, v]) => `${c} ${v.toFixed(2)}${v < lo || v > hi ? ' (off)' : ''}`).join(', '));
  }
  return true;
}
