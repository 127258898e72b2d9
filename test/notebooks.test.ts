// The notebooks (notebooks/*.ipynb), as CI runs them: every one executed headless with
// the tslab kernel in DIT_NOTEBOOK_MODE=smoke (one smoke run in a fresh folder, shared by
// all that plot results; 08 samples the random-weight fixtures), failing on any cell error. Also: the committed notebooks' shape (tslab
// kernel, cell ids, outputs cleared, the MODE switch, the compiled kit imported) and the
// helpers of lib/notebook that decide each figure's finding.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../lib/util/paths';
import { RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import { fig8GflopsVsFid } from '../lib/figures/specs';
import {
  checkMode, conditioningFinding, fig8StatsTable, gflopsFidFinding, interpolateLog, notebookResults, paperFig8Stats, samplingComputeFinding,
  scalingFinding, TABLE4, trainingComputeFinding,
} from '../lib/notebook';

const root = repoRoot();
const nbDir = path.join(root, 'notebooks');
const NOTEBOOKS = [
  '00-quickstart.ipynb', '01-conditioning-ablation.ipynb', '02-scaling.ipynb', '03-gflops-vs-fid.ipynb',
  '04-training-compute.ipynb', '05-sampling-compute.ipynb', '06-compare-configs.ipynb', '07-scaling-law.ipynb', '08-pretrained.ipynb',
];
/** Notebooks that sample the user's published weights (or the random-weight fixtures) instead of reading the smoke run. */
const OWN_DATA = new Set(['08-pretrained.ipynb']);
const MODE_LINE = "const MODE = process.env.DIT_NOTEBOOK_MODE ?? 'committed';";

interface NbCell { cell_type: string; id?: string; source: string[] | string; outputs?: Array<Record<string, unknown>>; execution_count?: number | null }
interface Nb { cells: NbCell[]; metadata: { kernelspec?: { name?: string; language?: string } } }

const src = (c: NbCell) => (Array.isArray(c.source) ? c.source.join('') : c.source);
const readNb = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Nb;

// ---- the committed notebooks -----------------------------------------------------------------

test('the notebooks are committed as tslab notebooks with cell ids, cleared outputs and the MODE switch', () => {
  assert.deepEqual(fs.readdirSync(nbDir).filter((f) => f.endsWith('.ipynb')).sort(), NOTEBOOKS);
  for (const name of NOTEBOOKS) {
    const nb = readNb(path.join(nbDir, name));
    assert.equal(nb.metadata.kernelspec?.name, 'tslab', name);
    assert.equal(nb.metadata.kernelspec?.language, 'typescript', name);
    const ids = nb.cells.map((c) => c.id);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0), `${name}: every cell needs an id`);
    assert.equal(new Set(ids).size, ids.length, `${name}: cell ids must be unique`);
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    for (const c of code) {
      assert.deepEqual(c.outputs, [], `${name} cell ${c.id}: outputs must be cleared (they are regenerated)`);
      assert.equal(c.execution_count, null, `${name} cell ${c.id}: execution_count must be cleared`);
    }
    assert.ok(src(code[0]).includes(MODE_LINE), `${name}: the first code cell must hold the switch: ${MODE_LINE}`);
    const all = code.map(src).join('\n');
    assert.equal(all.split('process.env.DIT_NOTEBOOK_MODE').length - 1, 1, `${name}: one switch only`);
    assert.match(all, /import \* as kit from '\.\.\/dist\/lib';/, `${name}: imports the package entry point of the compiled kit`);
    assert.doesNotMatch(all, /from '\.\.\/dist\/lib\//, `${name}: import the package entry point (../dist/lib), not deep paths`);
    assert.doesNotMatch(all, /from '\.\.\/lib\//, `${name}: import the compiled kit (../dist/lib), not the sources`);
  }
});

// ---- lib/notebook: modes and findings ----------------------------------------------------------

function row(o: Partial<ResultRow>): ResultRow {
  const r = Object.fromEntries(RESULT_COLUMNS.map((c) => [c, null])) as ResultRow;
  return {
    ...r, experiment: 'unit', feature_net: 'default', sampler: 'ddpm', sampling_steps: 10, cfg_scale: 1, guidance_channels: 'first3',
    num_samples: 100, batch_size: 8, timestamp: '2026-01-01T00:00:00Z', ...o,
  };
}

test('modes: unknown modes are errors; committed mode without results says so and returns null', async () => {
  assert.throws(() => checkMode('smok'), /not a mode: use committed, smoke, mini/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-nb-empty-'));
  try {
    const lines: string[] = [];
    const r = await notebookResults('committed', { resultsDir: dir, print: (l) => lines.push(l) });
    assert.equal(r, null);
    assert.match(lines.join('\n'), /mini\.csv does not exist yet, so there is nothing to plot/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Fig. 8 finding: Table 4 itself reproduces, with the statistics of paperFig8Stats', () => {
  const rows = Object.entries(TABLE4).map(([k, v]) => row({ study: 'scaling', model: `DiT-${k}`, variant: 'adaln-zero', gflops: v.gflops, train_step: 400000, fid: v.fid }));
  const f = gflopsFidFinding(rows);
  assert.equal(f.verdict, 'reproduced');
  assert.ok(Math.abs(f.numbers.pearsonLog! - paperFig8Stats().log.pearson.r) < 1e-12);
  assert.ok(f.numbers.exponentLow! < f.numbers.exponent! && f.numbers.exponent! < f.numbers.exponentHigh!);
  const table = fig8StatsTable(fig8GflopsVsFid(rows).stats);
  assert.deepEqual(table.map((r) => r.data), ['paper (Table 4)', 'these runs']);
  assert.deepEqual({ ...table[1], data: '' }, { ...table[0], data: '' });
  assert.equal(fig8StatsTable(null).length, 1);
  // Table 4 also bears out Fig. 6 (bigger and finer is better at 400K steps, every pair).
  const s = scalingFinding(rows);
  assert.equal(s.verdict, 'reproduced');
  assert.equal(s.numbers.sizeComparisons, 9);
  assert.equal(s.numbers.patchComparisons, 8);
  // Too few models: not testable, not an error.
  assert.equal(gflopsFidFinding(rows.slice(0, 2)).verdict, 'not testable');
});

test('Fig. 5 finding: the verdict follows the data', () => {
  const curve = (variant: string, fids: number[]) => fids.map((fid, i) => row({ study: 'conditioning', model: 'mini-S/8', variant, gflops: 0.004, train_step: 10 * (i + 1), fid }));
  const paperLike = [...curve('in-context', [100, 80]), ...curve('adaln', [90, 60]), ...curve('adaln-zero', [50, 40])];
  const f = conditioningFinding(paperLike);
  assert.equal(f.verdict, 'reproduced');
  assert.equal(f.numbers.adalnZeroOverInContext, 0.5);
  const reversed = [...curve('in-context', [50, 40]), ...curve('adaln-zero', [100, 80])];
  assert.equal(conditioningFinding(reversed).verdict, 'not reproduced');
  assert.equal(conditioningFinding([]).verdict, 'not testable');
});

test("findings give FID's scale from the calibration rows and name models at the noise level", () => {
  const rows = [
    ...[['mini-S/8', 85], ['mini-S/4', 40], ['mini-B/8', 92]].map(([m, v]) => row({ study: 'scaling', model: m as string, variant: 'adaln-zero', gflops: 1, train_step: 100, fid: v as number })),
    row({ study: 'calibration', cell: 'real-images', model: 'real-images', fid: 0.7 }),
    row({ study: 'calibration', cell: 'gaussian-latents', model: 'gaussian-latents', fid: 90 }),
  ];
  const c = scalingFinding(rows).caveats.join('\n');
  assert.match(c, /held-out real images 0\.70, N\(0, I\) latents decoded .* 90\.00/);
  // 85 and 92 are >= 0.9 x 90 = 81; 40 is not.
  assert.match(c, /mini-S\/8, mini-B\/8 end at the noise level/);
  assert.doesNotMatch(c, /mini-S\/4 end/);
  // With the Fig. 7 companion's sample scales: off-scale models are named with their FID.
  const withCells = rows.map((r) => ({ ...r, cell: r.cell ?? `${String(r.model).replace('/', '_')}-adaln-zero` }));
  const scaled = scalingFinding(withCells, { sampleScale: { 'mini-S_4-adaln-zero': 25.4, 'mini-S_8-adaln-zero': 1.1 } }).caveats.join('\n');
  assert.match(scaled, /off the data's scale \(std over the data's outside 0\.8-1\.25x\): mini-S\/4 25\.40x; these models/);
  assert.doesNotMatch(scaled, /mini-S\/8 1\.10x/);
  // Without calibration rows, no such caveat.
  assert.doesNotMatch(scalingFinding(rows.slice(0, 3)).caveats.join('\n'), /noise level|FID's scale/);
});

test('Figs. 9 and 10 findings: equal-compute and catch-up comparisons', () => {
  assert.equal(interpolateLog([[1, 10], [100, 30]], 10), 20);
  assert.equal(interpolateLog([[1, 10], [100, 30]], 1000), null);
  // Fig. 9: B has 2x the Gflops; at the largest common compute (4e3) its FID is lower.
  const train = [
    ...[1, 2, 4].map((k) => row({ study: 'scaling', model: 'mini-S/8', variant: 'adaln-zero', gflops: 1, train_step: 1000 * k, train_gflops: 1000 * k, fid: 100 / k })),
    ...[1, 2, 4].map((k) => row({ study: 'scaling', model: 'mini-B/8', variant: 'adaln-zero', gflops: 2, train_step: 1000 * k, train_gflops: 2000 * k, fid: 40 / k })),
  ];
  const t = trainingComputeFinding(train);
  assert.equal(t.verdict, 'reproduced');
  assert.equal(t.numbers.pairs, 1);
  // Fig. 10: the small model with more steps beats the large model's best: it catches up.
  const sampling = [
    ...[5, 50].map((n) => row({ study: 'sampling-compute', model: 'mini-S/8', variant: 'adaln-zero', gflops: 1, train_step: 100, sampling_steps: n, sampling_gflops_per_image: n, fid: n === 50 ? 10 : 40 })),
    ...[5, 50].map((n) => row({ study: 'sampling-compute', model: 'mini-B/8', variant: 'adaln-zero', gflops: 2, train_step: 100, sampling_steps: n, sampling_gflops_per_image: 2 * n, fid: 20 })),
  ];
  assert.equal(samplingComputeFinding(sampling).verdict, 'not reproduced');
});

// ---- executing the notebooks --------------------------------------------------------------------

/** Why the notebooks cannot run here (no jupyter, no tslab), or null. */
function jupyterProblem(): string | null {
  const r = spawnSync('jupyter', ['kernelspec', 'list', '--json'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `jupyter is not available (${r.error?.message ?? r.stderr.trim().split('\n').pop()}); bash scripts/setup.sh installs it`;
  if (!fs.existsSync(TSLAB)) return `${TSLAB} is missing: npm ci installs tslab`;
  const n = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' });
  if (n.error || n.status !== 0) return 'jupyter nbconvert is not installed; bash scripts/setup.sh installs it';
  return null;
}

const TSLAB = path.join(root, 'node_modules', '.bin', 'tslab');
const skip = jupyterProblem();

/**
 * A kernelspec for this checkout's tslab in a private JUPYTER_PATH: the user-wide one that
 * scripts/setup.sh registers names the binary of whichever checkout ran setup last.
 */
function privateKernel(dir: string): string {
  const r = spawnSync(TSLAB, ['install', '--python', '/usr/bin/python3', '--binary', TSLAB, '--prefix', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tslab install --prefix failed: ${r.stderr}`);
  return path.join(dir, 'share', 'jupyter');
}

test('every notebook executes headless in smoke mode without a cell error, sharing one smoke run', { skip: skip ? `skipped: ${skip}` : false, timeout: 30 * 60_000 }, async (t) => {
  assert.ok(fs.existsSync(path.join(root, 'dist', 'lib', 'notebook', 'index.js')), 'the notebooks import ../dist/lib: run `npm run build` first');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-notebooks-'));
  const outDir = path.join(tmp, 'executed');
  // The committed results/ must not be touched by smoke mode.
  const guarded = [path.join(root, 'results', 'smoke.csv'), path.join(root, 'results', 'figures', 'smoke-fig7-samples.png')];
  const stamp = () => guarded.map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : null));
  const before = stamp();
  const env = {
    ...process.env, DIT_NOTEBOOK_MODE: 'smoke', DIT_NOTEBOOK_SMOKE_DIR: path.join(tmp, 'smoke'), PYDEVD_DISABLE_FILE_VALIDATION: '1',
    JUPYTER_PATH: privateKernel(path.join(tmp, 'kernel')),
  };
  const t0 = Date.now();
  try {
    for (const [i, name] of NOTEBOOKS.entries()) {
      await t.test(name, () => {
        const s0 = Date.now();
        const r = spawnSync('jupyter', [
          'nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.timeout=900',
          path.join(nbDir, name), '--output-dir', outDir, '--output', name,
        ], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 });
        assert.equal(r.status, 0, `${name}: nbconvert failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${(r.stderr ?? '').slice(-4000)}`);
        const nb = readNb(path.join(outDir, name));
        const errors = nb.cells.flatMap((c) => (c.outputs ?? []).filter((o) => o.output_type === 'error').map((o) => `cell ${c.id}: ${o.ename}: ${o.evalue}`));
        assert.deepEqual(errors, [], `${name}: cell errors`);
        const text = nb.cells.flatMap((c) => (c.outputs ?? []).map((o) => (o.output_type === 'stream' ? String((o.text as string[] | string)) : ''))).join('');
        // The first notebook runs the smoke experiment; the others find it finished.
        if (i > 0 && !OWN_DATA.has(name)) assert.match(text, /the smoke run in .* is finished \(0 new evaluations/, `${name}: should reuse the smoke run`);
        // Notebook 08 in smoke mode: the fixtures, a class grid at two guidance scales, timed.
        if (name === '08-pretrained.ipynb') assert.match(text, /smoke mode: the random-weight fixtures[\s\S]*measured on \S+: .* per image at guidance 4\.0/, `${name}: should sample the fixtures`);
        t.diagnostic(`${name}: ${((Date.now() - s0) / 1000).toFixed(1)} s`);
      });
    }
    t.diagnostic(`all notebooks: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(stamp(), before, 'smoke mode must not write into results/');
    assert.ok(fs.existsSync(path.join(tmp, 'smoke', 'results', 'smoke.csv')), 'the smoke run writes under DIT_NOTEBOOK_SMOKE_DIR');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
