import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ditConfig } from '../lib/model/config';
import { gflops as modelGflops } from '../lib/model/gflops';
import { appendResults, RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import {
  baseLayout,
  fidAxisTitle,
  fig10SamplingCompute,
  fig5Conditioning,
  fig6Scaling,
  fig8GflopsVsFid,
  fig9TrainingCompute,
  FigureSpec,
  formatGflops,
  MissingDataError,
  titleMargin,
  wrapWords,
} from '../lib/figures/specs';
import { pearson, spearman } from '../lib/figures/stats';
import { figureHtml, notebookPlot, plotlyPath, plotlySrcFor, resetNotebookPlot, writeFigureHtml } from '../lib/figures/html';
import { chromiumAvailable, ChromiumMissingError, DEFAULT_CHROMIUM, dumpDom, renderPng } from '../lib/figures/render';
import { decodePng } from '../lib/data/png';
import { figuresCommand } from '../lib/cli/figures';
import { repoRoot } from '../lib/util/paths';

// ---- synthetic results: the paper's trends on the mini family ------------------------------

const SIZES = ['S', 'B', 'L', 'XL'];
const PATCHES = [4, 2, 1];
const STEPS = [1000, 2000, 4000];
const BATCH = 32;

function row(r: Partial<ResultRow>): ResultRow {
  const out = {} as ResultRow;
  for (const c of RESULT_COLUMNS) out[c] = null;
  return { ...out, ...r };
}

/** FID falls with Gflops (power law) and with training; cfg > 1 lowers it further. */
function fakeFid(g: number, step: number, samplingSteps = 50, cfg = 1): number {
  return 40 * g ** -0.3 * (1 + 2000 / step) * (1 + 8 / samplingSteps) / cfg;
}

function evalRow(study: string, model: string, variant: string, step: number, extra: Partial<ResultRow> = {}): ResultRow {
  const cfg = ditConfig(model, { variant: variant as never });
  const g = modelGflops(cfg);
  const samplingSteps = (extra.sampling_steps as number | undefined) ?? 50;
  const cfgScale = (extra.cfg_scale as number | undefined) ?? 1;
  return row({
    experiment: 'mini', study, cell: `${model.replace('/', '_')}-${variant}`, model, variant, patch_size: cfg.patchSize,
    gflops: g, params: 1, train_step: step, batch_size: BATCH, train_gflops: g * BATCH * step * 3, seed: 0,
    sampler: 'ddpm', sampling_steps: samplingSteps, cfg_scale: cfgScale, guidance_channels: 'first3', num_samples: 500,
    sampling_gflops_per_image: g * samplingSteps * (cfgScale !== 1 ? 2 : 1), feature_net: 'default',
    fid: fakeFid(g, step, samplingSteps, cfgScale), timestamp: `2025-01-01T00:00:${String(step % 60).padStart(2, '0')}Z`,
    ...extra,
  });
}

function scalingRows(): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const s of SIZES) {
    for (const p of PATCHES) {
      const m = `mini-${s}/${p}`;
      for (const step of STEPS) rows.push(evalRow('scaling', m, 'adaln-zero', step));
      // A guided evaluation of the final checkpoint only: not part of the training curve.
      rows.push(evalRow('scaling', m, 'adaln-zero', 4000, { cfg_scale: 4 }));
    }
  }
  // An older evaluation of the same point, replaced by the newer row above.
  rows.unshift(evalRow('scaling', 'mini-XL/2', 'adaln-zero', 4000, { fid: 999, timestamp: '2024-12-31T00:00:00Z' }));
  return rows;
}

function conditioningRows(): ResultRow[] {
  const bump: Record<string, number> = { 'in-context': 2, 'cross-attention': 1.5, adaln: 1.3, 'adaln-zero': 1 };
  return ['adaln-zero', 'adaln', 'cross-attention', 'in-context'].flatMap((v) =>
    STEPS.map((step) => {
      const r = evalRow('conditioning', 'mini-XL/2', v, step);
      return { ...r, fid: (r.fid as number) * bump[v] };
    }),
  );
}

function samplingRows(): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const m of ['mini-S/2', 'mini-B/2', 'mini-XL/2']) {
    for (const step of STEPS) rows.push(evalRow('sampling-compute', m, 'adaln-zero', step));
    for (const n of [128, 16, 64, 32]) rows.push(evalRow('sampling-compute', m, 'adaln-zero', 4000, { sampling_steps: n }));
  }
  return rows;
}

const ALL = [...scalingRows(), ...conditioningRows(), ...samplingRows()];

const nums = (v: unknown) => v as number[];

// ---- specs ----------------------------------------------------------------------------------

describe('figure specs from results rows', () => {
  test('Fig. 5: one curve per conditioning design in paper order, Gflops in the legend', () => {
    const spec = fig5Conditioning(ALL);
    assert.equal(spec.data.length, 4);
    const names = spec.data.map((t) => String(t.name));
    assert.deepEqual(names.map((n) => n.split(' ')[1]), ['In-Context', 'Cross-Attention', 'adaLN', 'adaLN-Zero']);
    for (const [i, v] of ['in-context', 'cross-attention', 'adaln', 'adaln-zero'].entries()) {
      const g = modelGflops(ditConfig('mini-XL/2', { variant: v as never }));
      assert.ok(names[i].endsWith(`(${formatGflops(g)} Gflops)`), `${names[i]} carries ${formatGflops(g)} Gflops`);
      assert.deepEqual(spec.data[i].x, STEPS);
    }
    // Cross-attention costs more than adaLN-Zero, so their legends differ.
    assert.notEqual(names[1].match(/\((.*) Gflops\)/)![1], names[3].match(/\((.*) Gflops\)/)![1]);
    const ax = spec.layout.yaxis as { title: { text: string } };
    assert.equal(ax.title.text, 'FID (default features)');
    assert.equal((spec.layout.xaxis as { title: { text: string } }).title.text, 'Training Steps');
  });

  test('axis titles follow the feature network', () => {
    assert.equal(fidAxisTitle('default'), 'FID (default features)');
    assert.equal(fidAxisTitle('inception'), 'FID-Inception');
    const inc = conditioningRows().map((r) => ({ ...r, feature_net: 'inception' }));
    const spec = fig5Conditioning(inc, { featureNet: 'inception' });
    assert.equal((spec.layout.yaxis as { title: { text: string } }).title.text, 'FID-Inception');
    // Mixed networks are refused unless one is chosen.
    const mixed = [...conditioningRows(), ...inc];
    assert.throws(() => fig5Conditioning(mixed), /mix feature networks \(default, inception\)/);
    assert.equal(fig5Conditioning(mixed, { featureNet: 'default' }).data.length, 4);
  });

  test('Fig. 6: two rows of panels, lines by model size per patch size and by patch size per model size', () => {
    const spec = fig6Scaling(ALL);
    assert.equal(spec.data.length, 3 * 4 + 4 * 3);
    const top = spec.data.filter((t) => t.legend === 'legend');
    const bottom = spec.data.filter((t) => t.legend === 'legend2');
    assert.equal(top.length, 12);
    assert.equal(bottom.length, 12);
    // Top: panel per patch size (axes x..x3), a line per model size.
    assert.deepEqual(top.filter((t) => t.xaxis === 'x').map((t) => t.name), ['mini-S', 'mini-B', 'mini-L', 'mini-XL']);
    assert.deepEqual(bottom.filter((t) => t.xaxis === 'x4').map((t) => t.name), ['patch size 4', 'patch size 2', 'patch size 1']);
    assert.equal(new Set(spec.data.map((t) => t.xaxis)).size, 7);
    for (let i = 2; i <= 7; i++) assert.ok(spec.layout[`xaxis${i}`] && spec.layout[`yaxis${i}`], `axes ${i}`);
    // One legend entry per group.
    assert.equal(top.filter((t) => t.showlegend).length, 4);
    assert.equal(bottom.filter((t) => t.showlegend).length, 3);
    // The training curve: the unguided evaluations, the newer of two rows for the same point.
    for (const t of spec.data) assert.deepEqual(t.x, STEPS);
    const xl2 = top.find((t) => t.xaxis === 'x2' && t.name === 'mini-XL')!; // the p = 2 panel
    const g = modelGflops(ditConfig('mini-XL/2'));
    assert.ok(Math.abs(nums(xl2.y)[2] - fakeFid(g, 4000)) < 1e-9);
  });

  test('Fig. 8: final FID per model against Gflops, log-log, correlations and power-law band', () => {
    const spec = fig8GflopsVsFid(ALL);
    const xa = spec.layout.xaxis as { type: string };
    const ya = spec.layout.yaxis as { type: string };
    assert.equal(xa.type, 'log');
    assert.equal(ya.type, 'log');
    const s = spec.stats;
    assert.equal(s.points.length, 12);
    for (const p of s.points) {
      assert.equal(p.trainStep, 4000, `${p.model}: the last training step`);
      assert.ok(Math.abs(p.fid - fakeFid(p.gflops, 4000)) < 1e-9, `${p.model}: the unguided FID of the newest row`);
    }
    const points = spec.data.filter((t) => t.mode === 'markers+text');
    assert.equal(points.reduce((n, t) => n + nums(t.x).length, 0), 12);
    const lg = s.points.map((p) => Math.log10(p.gflops));
    const lf = s.points.map((p) => Math.log10(p.fid));
    assert.equal(s.log.pearson.r, pearson(lg, lf).r);
    assert.equal(s.log.spearman.r, spearman(lg, lf).r);
    assert.equal(s.plain.pearson.r, pearson(s.points.map((p) => p.gflops), s.points.map((p) => p.fid)).r);
    // Synthetic FID = 40 * 1.5 * 1.16 * Gflops^-0.3 at step 4000 (50 sampling steps): an exact power law.
    assert.ok(Math.abs(s.powerLaw.b - -0.3) < 1e-9, `b = ${s.powerLaw.b}`);
    assert.ok(Math.abs(s.powerLaw.a - 40 * 1.5 * 1.16) < 1e-6, `a = ${s.powerLaw.a}`);
    assert.ok(s.log.pearson.r < -0.999 && s.log.spearman.r < -1 + 1e-12);
    // Band traces: lower, then upper filled to it, then the fitted line.
    const [lower, upper, fit] = spec.data;
    assert.equal(upper.fill, 'tonexty');
    assert.equal(nums(lower.x).length, s.powerLaw.band.x.length);
    assert.match(String(fit.name), /FID = 69\.6 · Gflops\^-0\.300/);
    assert.ok(nums(upper.y).every((v, i) => v >= nums(lower.y)[i]));
    assert.match(JSON.stringify(spec.layout.annotations), /Pearson r = -1\.000/);
  });

  test("the experiment's calibration FIDs are drawn as reference lines in Figs. 6 and 8", () => {
    const cal = (cell: string, fid: number, extra: Partial<ResultRow> = {}) =>
      row({ experiment: 'mini', study: 'calibration', cell, model: cell, feature_net: 'default', fid, timestamp: '2025-01-02T00:00:00Z', ...extra });
    const rows = [
      ...ALL,
      cal('real-images', 0.7),
      cal('gaussian-latents', 87.8),
      cal('gaussian-latents', 50, { timestamp: '2024-01-01T00:00:00Z' }), // older: replaced
      cal('autoencoder', 3, { experiment: 'other' }), // another experiment: not this figure's
      cal('autoencoder', 4, { feature_net: 'inception' }), // another feature network
    ];
    const spec = fig8GflopsVsFid(rows);
    const lines = spec.data.filter((t) => String(t.legendgroup ?? '').startsWith('calibration-'));
    assert.deepEqual(lines.map((t) => nums(t.y)), [[0.7, 0.7], [87.8, 87.8]]);
    assert.match(String(lines[1].name), /N\(0, I\) latents decoded.*FID 87\.8/);
    // Fig. 6: one line per calibration input in each of its 7 panels, one legend entry each.
    const f6 = fig6Scaling(rows).data.filter((t) => String(t.legendgroup ?? '').startsWith('calibration-'));
    assert.equal(f6.length, 2 * 7);
    assert.equal(f6.filter((t) => t.showlegend).length, 2);
    // Its shared FID axis fits the models' curves, not the reference lines; a line outside it says so.
    const s6 = fig6Scaling(rows);
    const curveFids = s6.data.filter((t) => !String(t.legendgroup ?? '').startsWith('calibration-')).flatMap((t) => nums(t.y));
    const [lo, hi] = (s6.layout.yaxis as { range: [number, number] }).range;
    assert.ok(lo <= Math.min(...curveFids) && hi >= Math.max(...curveFids) && hi - lo < 1.2 * (Math.max(...curveFids) - Math.min(...curveFids)), `${lo}..${hi}`);
    for (const t of f6.filter((x) => x.showlegend)) {
      const y = nums(t.y)[0];
      assert.equal(/off the axis/.test(String(t.name)), y < lo || y > hi, String(t.name));
    }
    // Without calibration rows the figures are as before.
    assert.equal(fig8GflopsVsFid(ALL).data.filter((t) => String(t.legendgroup ?? '').startsWith('calibration-')).length, 0);
  });

  test('Fig. 8 needs three models', () => {
    const few = scalingRows().filter((r) => r.model === 'mini-S/4' || r.model === 'mini-S/2');
    assert.throws(() => fig8GflopsVsFid(few), (e: unknown) => e instanceof MissingDataError && /at least 3 on-scale models/.test(e.message));
  });

  test('Fig. 8 leaves off-scale models out of the fit, flags them, and gives a bootstrap interval of r', () => {
    const base = fig8GflopsVsFid(ALL);
    const n = base.stats.points.length;
    assert.equal(base.stats.excluded.length, 0);
    const [lo, hi] = base.stats.pearsonCi;
    assert.ok(lo <= base.stats.log.pearson.r && base.stats.log.pearson.r <= hi && hi - lo < 0.5, `${lo} ${base.stats.log.pearson.r} ${hi}`);
    // mini-S/4's samples at 3x the data's std: drawn as excluded, not fitted; a ratio inside the gate changes nothing.
    const flagged = ALL.map((r) => (r.model === 'mini-S/4' ? { ...r, sample_std_ratio: 3 } : r.model === 'mini-B/4' ? { ...r, sample_std_ratio: 1.2 } : r));
    const spec = fig8GflopsVsFid(flagged);
    assert.equal(spec.stats.points.length, n - 1);
    assert.deepEqual(spec.stats.excluded.map((e) => e.model), ['mini-S/4']);
    assert.ok(!spec.stats.points.some((p) => p.model === 'mini-S/4'));
    assert.ok(spec.data.some((t) => /left out of the fit/.test(String(t.name)) && (t.text as string[])[0] === 'mini-S/4 3.00x'));
    // Every other figure flags it in its legend.
    assert.ok(fig9TrainingCompute(flagged).data.some((t) => t.name === 'mini-S/4 (off-scale 3.00x)'));
    // A measured headline replaces the default title.
    assert.match(String((fig8GflopsVsFid(ALL, { headline: 'Fig. 8: measured X' }).layout.title as { text: string }).text), /^Fig. 8: measured X<br>/);
  });

  test('Fig. 9: FID against training compute, log x, compute from the rows (or computed when empty)', () => {
    const spec = fig9TrainingCompute(ALL);
    assert.equal(spec.data.length, 12);
    assert.equal((spec.layout.xaxis as { type: string }).type, 'log');
    for (const t of spec.data) {
      const g = modelGflops(ditConfig(String(t.name)));
      assert.deepEqual(t.x, STEPS.map((s) => g * BATCH * s * 3));
    }
    const noCol = scalingRows().map((r) => ({ ...r, train_gflops: null }));
    assert.deepEqual(fig9TrainingCompute(noCol).data.map((t) => t.x), spec.data.map((t) => t.x));
  });

  test('Fig. 10: final checkpoint at several sampling step counts against sampling compute', () => {
    const spec = fig10SamplingCompute(ALL);
    assert.equal(spec.data.length, 3);
    assert.equal((spec.layout.xaxis as { type: string }).type, 'log');
    for (const t of spec.data) {
      const g = modelGflops(ditConfig(String(t.name)));
      // The final step's rows only (4000), 50 steps included, sorted by compute.
      assert.deepEqual(t.text, ['16', '32', '50', '64', '128']);
      assert.deepEqual(t.x, [16, 32, 50, 64, 128].map((n) => g * n));
      assert.deepEqual(t.y, [16, 32, 50, 64, 128].map((n) => fakeFid(g, 4000, n)));
    }
  });

  test('empty inputs name the missing study; experiments are chosen explicitly or by recency', () => {
    assert.throws(() => fig5Conditioning([]), (e: unknown) => e instanceof MissingDataError && e.study === 'conditioning' && /no results with study 'conditioning'/.test(e.message));
    assert.throws(() => fig6Scaling(conditioningRows()), /study 'scaling'/);
    assert.throws(() => fig10SamplingCompute(scalingRows()), /study 'sampling-compute'/);
    const older = conditioningRows().map((r) => ({ ...r, experiment: 'smoke', timestamp: '2020-01-01T00:00:00Z', fid: 1 }));
    const both = [...older, ...conditioningRows()];
    assert.ok(nums(fig5Conditioning(both).data[0].y).every((v) => v !== 1), 'the most recent experiment');
    assert.ok(nums(fig5Conditioning(both, { experiment: 'smoke' }).data[0].y).every((v) => v === 1));
    assert.throws(() => fig5Conditioning(both, { experiment: 'nope' }), /experiment 'nope' has no results with study 'conditioning' \(experiments that do: /);
  });
});

// ---- HTML -----------------------------------------------------------------------------------

function specOf(html: string): FigureSpec {
  const m = /<script type="application\/json" id="figure-spec">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'the page holds the spec');
  return JSON.parse(m![1]);
}

describe('figure HTML', () => {
  test('a page holds the spec and loads plotly.js by a path relative to the output file', () => {
    const spec = fig5Conditioning(ALL);
    // A name that would end the script element if the JSON were not escaped.
    spec.data[0].name = '</script><b>x</b>';
    const out = path.join(repoRoot(), 'results', 'figures', 'fig5-conditioning.html');
    const html = figureHtml(spec, { title: 'Fig. 5 <test>', outFile: out });
    assert.match(html, /<script src="\.\.\/\.\.\/node_modules\/plotly\.js-dist\/plotly\.js"><\/script>/);
    assert.equal(path.resolve(path.dirname(out), plotlySrcFor(out)), plotlyPath());
    assert.ok(fs.existsSync(plotlyPath()), 'plotly.js-dist is installed');
    assert.match(html, /<title>Fig\. 5 &lt;test&gt;<\/title>/);
    assert.equal(html.split('</script>').length - 1, 3, 'the spec cannot close a script element');
    assert.deepEqual(specOf(html), JSON.parse(JSON.stringify(spec)));
    assert.match(figureHtml(spec, { title: 't', plotlySrc: 'https://cdn.example/plotly.js' }), /<script src="https:\/\/cdn\.example\/plotly\.js">/);
    assert.throws(() => figureHtml(spec, { title: 't' }), /plotlySrc, or outFile/);
  });

  test('notebookPlot embeds plotly.js once per process and draws into fresh divs', () => {
    resetNotebookPlot();
    const spec = fig5Conditioning(ALL);
    const a = notebookPlot(spec);
    const b = notebookPlot(spec);
    assert.ok(a.length > 1e6 && a.includes('if (!window.Plotly) (function (define, module, exports)'), 'first output carries the library');
    assert.ok(b.length < 1e5 && !b.includes('define, module, exports'), 'later outputs do not');
    const ids = [a, b].map((h) => /<div id="(dit-figure-[0-9a-f-]+)"/.exec(h)![1]);
    assert.notEqual(ids[0], ids[1]);
    assert.ok(b.includes('Plotly.newPlot(el, spec.data, spec.layout'));
    // Sized to the page: the spec's width is only a maximum, plotly autosizes and follows the cell.
    assert.match(b, new RegExp(`style="width:100%;max-width:${spec.layout.width}px;height:${spec.layout.height}px"`));
    assert.match(b, /"autosize":true/);
    const drawn = JSON.parse(/var spec = (.*);\n/.exec(b)![1]) as { layout: Record<string, unknown> };
    assert.equal(drawn.layout.width, undefined);
    assert.match(b, /responsive: true/);
    resetNotebookPlot();
    assert.ok(notebookPlot(spec).length > 1e6, 'after a reset the library comes again');
    assert.ok(notebookPlot(spec, { embedLibrary: true }).length > 1e6);
  });
});

// ---- CLI ------------------------------------------------------------------------------------

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  console.error = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

describe('dit figures', () => {
  test('writes the figures it has data for and lists the skipped ones', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-figures-'));
    try {
      appendResults(path.join(dir, 'mini.csv'), scalingRows());
      const { code, out } = await capture(() => figuresCommand.run(['--results', dir, '--no-png', '--no-samples']));
      assert.equal(code, 0, out);
      const files = fs.readdirSync(path.join(dir, 'figures')).sort();
      assert.deepEqual(files, ['fig6-scaling.html', 'fig8-gflops-vs-fid.html', 'fig8-gflops-vs-fid.stats.json', 'fig9-training-compute.html']);
      assert.match(out, /skipped fig5-conditioning: .*study 'conditioning'/);
      assert.match(out, /skipped fig10-sampling-compute: .*study 'sampling-compute'/);
      assert.match(out, /3 figure\(s\) written to .*, 2 skipped for lack of data/);
      const stats = JSON.parse(fs.readFileSync(path.join(dir, 'figures', 'fig8-gflops-vs-fid.stats.json'), 'utf8'));
      assert.equal(stats.points.length, 12);
      // Pages load plotly.js relative to where they were written.
      const html = fs.readFileSync(path.join(dir, 'figures', 'fig6-scaling.html'), 'utf8');
      const src = /<script src="([^"]+)"/.exec(html)![1];
      assert.equal(path.resolve(dir, 'figures', src), plotlyPath());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no results: nothing written, every figure skipped', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-figures-'));
    try {
      const { code, out } = await capture(() => figuresCommand.run(['--results', dir, '--no-samples']));
      assert.equal(code, 0);
      assert.match(out, /0 figure\(s\) written .*, 5 skipped for lack of data/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- in a browser ---------------------------------------------------------------------------

const HAVE_CHROMIUM = chromiumAvailable();
const NO_CHROMIUM = HAVE_CHROMIUM ? false : `${DEFAULT_CHROMIUM} not found: install it with bash scripts/setup.sh (or apt-get install -y chromium) to run the browser tests`;
if (!HAVE_CHROMIUM) console.log(`# skipping figure browser tests: ${NO_CHROMIUM}`);

describe('figures in headless Chromium', () => {
  test('a missing browser is a clear error', async () => {
    await assert.rejects(renderPng('x.html', 'x.png', { chromium: '/nonexistent/chromium' }), (e: unknown) => e instanceof ChromiumMissingError && /scripts\/setup\.sh/.test(e.message));
  });

  test('Fig. 8 renders: plotly traces in the DOM and a non-blank screenshot', { skip: NO_CHROMIUM }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-figures-'));
    try {
      const spec = fig8GflopsVsFid(ALL);
      const html = path.join(dir, 'fig8.html');
      writeFigureHtml(html, spec, 'Fig. 8');
      const width = spec.layout.width as number;
      const height = spec.layout.height as number;
      const dom = await dumpDom(html, { width, height });
      assert.match(dom, /<body[^>]*data-rendered="true"/, 'plotly finished drawing');
      assert.ok(dom.includes('class="scatterlayer'), 'scatter layer present');
      const drawn = (dom.match(/class="trace scatter/g) ?? []).length;
      assert.equal(drawn, spec.data.length, `one SVG trace per spec trace (${drawn})`);
      assert.ok((dom.match(/class="point"/g) ?? []).length >= 12, 'the 12 model points');
      const png = path.join(dir, 'fig8.png');
      await renderPng(html, png, { width, height, fragment: 'static' });
      const img = decodePng(fs.readFileSync(png), png);
      assert.equal(img.width, width);
      assert.equal(img.height, height);
      let nonWhite = 0;
      let sum = 0;
      let sum2 = 0;
      const n = img.width * img.height;
      for (let i = 0; i < n; i++) {
        let lum = 0;
        for (let c = 0; c < 3; c++) lum += img.data[i * img.channels + Math.min(c, img.channels - 1)];
        lum /= 3;
        if (lum < 240) nonWhite++;
        sum += lum;
        sum2 += lum * lum;
      }
      const variance = sum2 / n - (sum / n) ** 2;
      assert.ok(nonWhite > n * 0.01, `plot pixels drawn (${nonWhite} of ${n} non-white)`);
      assert.ok(variance > 50, `not a blank image (luminance variance ${variance.toFixed(1)})`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('notebook outputs draw even where require.js defines AMD (classic Jupyter)', { skip: NO_CHROMIUM }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-figures-'));
    try {
      resetNotebookPlot();
      const page = [
        '<!doctype html><html><head><meta charset="utf-8"></head><body>',
        '<script>window.define = function () { window.amdUsed = true; }; window.define.amd = {};</script>',
        notebookPlot(fig5Conditioning(ALL)),
        notebookPlot(fig10SamplingCompute(ALL)),
        '</body></html>',
      ].join('\n');
      const html = path.join(dir, 'nb.html');
      fs.writeFileSync(html, page);
      const dom = await dumpDom(html, { width: 1000, height: 1200 });
      assert.equal((dom.match(/class="dit-figure[^"]*"/g) ?? []).length, 2);
      // Drawn by window.Plotly: had the bundle registered itself with the page's AMD define, no trace would exist.
      assert.equal((dom.match(/class="trace scatter/g) ?? []).length, 4 + 3, 'both outputs drawn');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('figure titles wrap to the figure width, the subtitle in <sup> lines, and the top margin holds them', () => {
  const long = 'word '.repeat(80).trim();
  const layout = baseLayout('t', `sub ${'x'.repeat(20)} `.repeat(20).trim(), 900, 500, long);
  const text = (layout.title as { text: string }).text;
  const lines = text.split('<br>');
  const head = lines.filter((l) => !l.startsWith('<sup>'));
  const sub = lines.filter((l) => l.startsWith('<sup>'));
  assert.ok(head.length >= 4 && head.every((l) => l.length <= (900 - 40) / 9.5), head.join(' | '));
  assert.ok(sub.length >= 2 && sub.every((l) => /^<sup>.*<\/sup>$/.test(l) && l.length - 11 <= (900 - 40) / 7));
  assert.equal(head.join(' '), long);
  assert.equal((layout.margin as { t: number }).t, titleMargin(text));
  assert.ok(titleMargin(text) > titleMargin('one<br><sup>two</sup>'));
  assert.deepEqual(wrapWords('aa bb cc', 5), ['aa bb', 'cc']);
});
