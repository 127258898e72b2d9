// Plotly specs as HTML: standalone pages (results/figures/*.html) and notebook outputs
// (tslab's display.html). Pages load plotly.js-dist with a relative <script src>, so a
// committed page stays a few KB and works in any checkout after `npm install`.
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import { repoRoot, writeFileAtomic } from '../util/paths';
import type { FigureSpec } from './specs';

/** Absolute path of plotly.js-dist's browser bundle. */
export function plotlyPath(): string {
  try {
    return require.resolve('plotly.js-dist/plotly.js');
  } catch {
    return path.join(repoRoot(), 'node_modules', 'plotly.js-dist', 'plotly.js');
  }
}

/** The <script src> that reaches plotly.js from a page written at outFile (relative, '/' separators). */
export function plotlySrcFor(outFile: string, plotlyFile = plotlyPath()): string {
  const rel = path.relative(path.dirname(path.resolve(outFile)), plotlyFile);
  return rel.split(path.sep).join('/');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON that is safe inside a <script> element: '<' only occurs in strings, where \u003c means the same. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export interface FigureHtmlOptions {
  /** The page title. */
  title: string;
  /** <script src> of plotly.js; default: the relative path from outFile to node_modules/plotly.js-dist/plotly.js. */
  plotlySrc?: string;
  /** Where the page will be written (needed for the default plotlySrc). */
  outFile?: string;
}

/**
 * A standalone page that renders the spec into div#figure. The spec is kept verbatim in
 * <script type="application/json" id="figure-spec">. Once plotly has drawn, the body gets
 * data-rendered="true"; with the URL fragment #static the plot is drawn without the
 * mode bar and interactions (for screenshots).
 */
export function figureHtml(spec: FigureSpec, opts: FigureHtmlOptions): string {
  let src = opts.plotlySrc;
  if (src === undefined) {
    if (!opts.outFile) throw new Error('figureHtml: give plotlySrc, or outFile so the relative path to plotly.js can be computed');
    src = plotlySrcFor(opts.outFile);
  }
  const payload = { data: spec.data, layout: spec.layout };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(opts.title)}</title>
<style>body { margin: 0; background: #fff; font-family: 'DejaVu Sans', Arial, sans-serif; } #figure-error { padding: 1em; color: #b00; }</style>
<script src="${escapeHtml(src)}"></script>
</head>
<body>
<div id="figure"></div>
<script type="application/json" id="figure-spec">${scriptJson(payload)}</script>
<script>
(function () {
  var el = document.getElementById('figure');
  if (typeof Plotly === 'undefined') {
    el.innerHTML = '<p id="figure-error">plotly.js did not load from <code>' + ${scriptJson(escapeHtml(src))} + '</code>: run <code>npm install</code> in the dit-kit checkout.</p>';
    return;
  }
  var spec = JSON.parse(document.getElementById('figure-spec').textContent);
  var config = { displaylogo: false, responsive: false, staticPlot: location.hash === '#static' };
  Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
    document.body.setAttribute('data-rendered', 'true');
  });
})();
</script>
</body>
</html>
`;
}

/** Writes figureHtml(spec) to file (atomically), with the plotly path relative to that file. */
export function writeFigureHtml(file: string, spec: FigureSpec, title: string): void {
  writeFileAtomic(file, figureHtml(spec, { title, outFile: file }));
}

// ---- notebooks --------------------------------------------------------------------------

let libraryEmbedded = false;

/** Makes the next notebookPlot embed plotly.js again (e.g. after clearing the output that held it). */
export function resetNotebookPlot(): void {
  libraryEmbedded = false;
}

/**
 * plotly.js inline, evaluated with AMD/CommonJS hidden: Jupyter's classic notebook has
 * require.js, whose `define` would capture the UMD bundle instead of window.Plotly.
 * Evaluated once per page even if embedded twice.
 */
function inlineLibrary(): string {
  const file = plotlyPath();
  if (!fs.existsSync(file)) throw new Error(`notebookPlot: plotly.js not found at ${file}: run npm install`);
  const src = fs.readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
  return `<script>if (!window.Plotly) (function (define, module, exports) {\n${src}\n}).call(window, undefined, undefined, undefined);</script>\n`;
}

export interface NotebookPlotOptions {
  /** Embed plotly.js in this output (default: only in the first output of the process). */
  embedLibrary?: boolean;
}

/**
 * HTML for tslab's display.html: the first call in a process also carries plotly.js
 * (about 11 MB, unminified), every call draws into a fresh div with a unique id, so re-running a
 * cell never draws into a stale output. The drawing script waits briefly for plotly.js
 * (outputs may run out of order) and says what to do when it is missing from the page.
 */
export function notebookPlot(spec: FigureSpec, opts: NotebookPlotOptions = {}): string {
  const embed = opts.embedLibrary ?? !libraryEmbedded;
  const lib = embed ? inlineLibrary() : '';
  if (embed) libraryEmbedded = true;
  const id = `dit-figure-${randomUUID()}`;
  // Sized to the page: the figure's width is a maximum, plotly fills the cell (responsive),
  // and the legends keep the margins the spec reserves for them.
  const maxW = typeof spec.layout.width === 'number' ? `max-width:${spec.layout.width}px;` : '';
  const h = typeof spec.layout.height === 'number' ? `${spec.layout.height}px` : '480px';
  const { width: _w, ...layout } = spec.layout;
  return `${lib}<div id="${id}" class="dit-figure" style="width:100%;${maxW}height:${h}"></div>
<script>
(function () {
  var spec = ${scriptJson({ data: spec.data, layout: { ...layout, autosize: true } })};
  var tries = 0;
  function draw() {
    var el = document.getElementById(${JSON.stringify(id)});
    if (!el) return;
    if (window.Plotly && window.Plotly.newPlot) {
      window.Plotly.newPlot(el, spec.data, spec.layout, { displaylogo: false, responsive: true });
      return;
    }
    if (++tries > 200) {
      el.innerHTML = '<pre>plotly.js is not loaded in this page (the output that embedded it was cleared or not re-run).\\n' +
        'Run resetNotebookPlot() from lib/figures/html, then re-run this cell.</pre>';
      return;
    }
    setTimeout(draw, 50);
  }
  draw();
})();
</script>`;
}
