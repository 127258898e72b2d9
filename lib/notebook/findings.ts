// Each figure's finding, decided from the data: the paper's claim, the same quantity
// measured on the runs, and whether the claim held at this scale. The notebooks print
// these; nothing here knows what the runs will show.
import {
  calibrationFids, Cell, FigureOptions, MissingDataError, studyLastStep, fig5Conditioning, fig6Scaling, fig9TrainingCompute, fig10SamplingCompute,
  PATCH_ORDER, SIZE_ORDER, VARIANT_ORDER, fidAxisTitle, fig8GflopsVsFid,
  formatGflops, samplingGflopsPerImage, selectRows, trainGflops, trainingCurve, variantLabel, wrapWords,
} from '../figures/specs';
import type { ResultRow } from '../results/registry';
import { Comparison, compareFid, onScale, Resolution, SeedSpread, seedSpread, STD_RATIO_GATE, stdRatio, tally } from '../figures/resolution';
import { FIG10_SAMPLING_STEPS, FIG5_ADALN_ZERO_OVER_IN_CONTEXT, PAPER_STEPS, TABLE4, VARIANT_GFLOPS, exponentInterval, paperFig8Stats, table4Key } from './paper';
import { parseModelName } from '../model/config';

/** Figure options (sampleScale: the Fig. 7 companion's ratios, for results without a sample_std_ratio column). */
export type FindingOptions = FigureOptions;

export type Verdict = 'reproduced' | 'partly reproduced' | 'not reproduced' | 'not testable';

export interface Finding {
  figure: string;
  /** What the paper found, with its numbers. */
  paper: string[];
  /** Where the measured numbers come from (experiment, steps, samples, features). */
  context: string;
  /** The same quantities measured on the runs. */
  measured: string[];
  verdict: Verdict;
  /** Why the verdict, in numbers. */
  reason: string;
  /** Limits of this comparison that the data itself shows (sample count, feature network, training length). */
  caveats: string[];
  /** The key numbers, for code that wants them (null: not available). */
  numbers: Record<string, number | null>;
}

// ---- selecting and grouping rows ---------------------------------------------------------

const num = (r: ResultRow, c: keyof ResultRow): number | null => {
  const v = r[c];
  if (v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

export interface StudyCell extends Cell {
  params: number | null;
  /** Evaluations over training at one sampling setting (see trainingCurve). */
  curve: ResultRow[];
  /** The last point of the curve. */
  final: ResultRow | null;
  /** Not yet evaluated at the study's last step (a run in progress): final is null. */
  unfinished: boolean;
  /** The final samples' std over the data's (null: not measured) and whether it is inside the gate. */
  stdRatio: number | null;
  onScale: boolean | null;
}

export interface StudyData {
  study: string;
  experiment: string;
  featureNet: string | null;
  /** Every selected row of the study (one experiment and feature network, newest per evaluation). */
  rows: ResultRow[];
  cells: StudyCell[];
  /** The experiment's calibration FIDs (real images, autoencoder, decoded noise), when it has them. */
  calibration: ReturnType<typeof calibrationFids>;
  /** Cell id -> final samples' std over the data's, where known. */
  sampleScale: Record<string, number>;
  /** Between-seed spread of FID from the experiment's seed replicates (0 without them). */
  seed: SeedSpread;
}

function rank(list: readonly (string | number)[], v: string | number | null): number {
  return v === null || !list.includes(v) ? list.length : list.indexOf(v);
}

/** The rows of one study grouped into (model, variant) cells, in the figures' order. Throws MissingDataError. */
export function studyData(rows: readonly ResultRow[], study: string, opts: FindingOptions = {}, figure = study): StudyData {
  const sel = selectRows(rows, study, figure, opts);
  const lastStep = studyLastStep(sel.rows);
  const byKey = new Map<string, ResultRow[]>();
  for (const r of sel.rows) {
    const k = `${r.model}|${r.variant}`;
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  const cells: StudyCell[] = [...byKey.values()].map((rs) => {
    const p = parseModelName(String(rs[0].model));
    const base: Cell = { model: String(rs[0].model), variant: String(rs[0].variant), size: p?.size ?? null, patch: p?.patch ?? null, gflops: num(rs[0], 'gflops'), rows: rs };
    const curve = trainingCurve(base);
    const end = curve.length ? curve[curve.length - 1] : null;
    // A cell that has not reached the study's last step (a run in progress) has no final point yet.
    const unfinished = end !== null && num(end, 'train_step') !== lastStep;
    const final = unfinished ? null : end;
    const ratio = final ? stdRatio(final, opts.sampleScale) : null;
    return { ...base, params: num(rs[0], 'params'), curve, final, unfinished, stdRatio: ratio, onScale: onScale(ratio) };
  });
  cells.sort((a, b) =>
    rank(SIZE_ORDER, a.size) - rank(SIZE_ORDER, b.size) || rank(PATCH_ORDER, a.patch) - rank(PATCH_ORDER, b.patch) ||
    rank(VARIANT_ORDER, a.variant) - rank(VARIANT_ORDER, b.variant) || a.model.localeCompare(b.model));
  return {
    study, experiment: sel.experiment, featureNet: sel.featureNet, rows: sel.rows, cells, calibration: calibrationFids(rows, sel),
    sampleScale: opts.sampleScale ?? {}, seed: seedSpread(rows, sel.experiment, sel.featureNet),
  };
}

// ---- resolved comparisons -------------------------------------------------------------------

/** FID and its standard error of a row. */
const fidSe = (r: ResultRow) => ({ fid: num(r, 'fid')!, se: num(r, 'fid_se') });

const RESOLUTION_WORD: Record<Resolution, string> = {
  agree: 'resolved, as the paper',
  against: 'RESOLVED AGAINST the paper',
  unresolved: 'unresolved',
};

/** ' (delta 4.10 > 2.50: resolved, as the paper)'. */
function describe(c: Comparison): string {
  return ` (delta ${c.delta.toFixed(2)} ${Math.abs(c.delta) > c.threshold ? '>' : '<='} ${c.threshold.toFixed(2)}: ${RESOLUTION_WORD[c.status]})`;
}

/** 'a agree and resolved, b unresolved, c resolved against the paper'. */
function tallyText(t: Record<Resolution, number>): string {
  return `${t.agree} agree and resolved, ${t.unresolved} unresolved, ${t.against} resolved against the paper`;
}

/** The rule every verdict counts comparisons by. */
function ruleText(d: StudyData): string {
  return `a comparison counts when |delta FID| > 1.96 sqrt(se1^2 + se2^2 + 2 se_seed^2) (se: each FID's bootstrap standard error; ` +
    `se_seed ${d.seed.se.toFixed(2)} from ${d.seed.pairs} seed-replicate pair(s)${d.seed.pairs ? '' : ', none in these results: seed spread not included'})`;
}

/** Verdict from resolved comparisons: reproduced when none is resolved against and some agree. */
export function resolvedVerdict(t: Record<Resolution, number>): Verdict {
  if (t.agree + t.against === 0) return 'not testable';
  if (t.against === 0) return 'reproduced';
  return t.agree > t.against ? 'partly reproduced' : 'not reproduced';
}

/** Off-scale cells, for the findings' lines: 'mini-S/4 3.10x'. */
function offScaleList(cells: StudyCell[], withVariant = false): string {
  return cells.filter((c) => c.onScale === false).map((c) => `${name(c, withVariant)} ${c.stdRatio!.toFixed(2)}x`).join(', ');
}

// ---- formatting ---------------------------------------------------------------------------

const fid = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));
const ratio = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
const finalFid = (c: StudyCell) => (c.final ? num(c.final, 'fid') : null);
const finalStep = (c: StudyCell) => (c.final ? num(c.final, 'train_step') : null);
const name = (c: StudyCell, withVariant = false) => (withVariant ? `${c.model} ${variantLabel(c.variant)}` : c.model);

function context(d: StudyData): string {
  const steps = [...new Set(d.cells.map(finalStep).filter((v): v is number => v !== null))];
  const ns = [...new Set(d.rows.map((r) => num(r, 'num_samples')).filter((v): v is number => v !== null))];
  return [
    `experiment ${d.experiment}`,
    steps.length ? `${steps.length === 1 ? steps[0].toLocaleString('en-US') : `${Math.min(...steps)}-${Math.max(...steps)}`} training steps` : '',
    ns.length ? `${ns.map((n) => n.toLocaleString('en-US')).join('/')} samples per FID` : '',
    fidAxisTitle(d.featureNet),
  ].filter(Boolean).join(' · ');
}

function caveats(d: StudyData): string[] {
  const out: string[] = [];
  if (d.featureNet !== 'inception') {
    out.push(`FIDs use the '${d.featureNet ?? 'unknown'}' feature network, not Inception-v3: compare orderings and ratios with the paper, not FID values.`);
  }
  const ns = d.rows.map((r) => num(r, 'num_samples')).filter((v): v is number => v !== null);
  if (ns.length && Math.min(...ns) < 50_000) {
    out.push(`FIDs from ${Math.min(...ns).toLocaleString('en-US')} samples (the paper: 50,000; FID-10K for Fig. 10): differences within the sampling noise decide nothing.`);
  }
  const steps = d.cells.map(finalStep).filter((v): v is number => v !== null);
  if (steps.length && Math.max(...steps) < PAPER_STEPS) {
    out.push(`Trained ${Math.max(...steps).toLocaleString('en-US')} steps (the paper: ${PAPER_STEPS.toLocaleString('en-US')}).`);
  }
  const cal = Object.fromEntries(d.calibration.map((c) => [c.cell, c.fid]));
  if (d.calibration.length) {
    const scale = d.calibration.map((c) => `${c.label} ${fid(c.fid)}`).join(', ');
    const noise = cal['gaussian-latents'];
    // Within 10% of what decoded noise scores: the model learned next to nothing.
    const atNoise = noise === undefined ? [] : d.cells.filter((c) => (finalFid(c) ?? -Infinity) >= NOISE_LEVEL * noise);
    out.push(`FID's scale under this same evaluation: ${scale}.` +
      (atNoise.length ? ` ${atNoise.map((c) => name(c, d.study === 'conditioning')).join(', ')} end${atNoise.length === 1 ? 's' : ''} at the noise level (final FID >= ${NOISE_LEVEL} x ${fid(noise)}): learned next to nothing, so their order says nothing.` : ''));
  }
  const unfinished = d.cells.filter((c) => c.unfinished);
  if (unfinished.length) {
    out.push(`Not yet at the study's last step (a run in progress): ${unfinished.map((c) => `${name(c, d.study === 'conditioning')} (step ${num(c.curve[c.curve.length - 1], 'train_step')})`).join(', ')}; left out of the final-step comparisons.`);
  }
  // Samples off the data's scale: their FID measures something other than quality.
  const off = offScaleList(d.cells, d.study === 'conditioning');
  if (off) {
    out.push(`Final samples off the data's scale (std over the data's outside ${STD_RATIO_GATE.join('-')}x): ${off}; ` +
      'these models have not learned the data\'s scale, so their FIDs are flagged and left out of every comparison and fit.');
  }
  return out;
}

/** A final FID at or above this fraction of decoded noise's FID counts as "learned next to nothing". */
export const NOISE_LEVEL = 0.9;

function notTestable(figure: string, paper: string[], err: unknown): Finding {
  if (!(err instanceof MissingDataError)) throw err;
  return { figure, paper, context: '', measured: [], verdict: 'not testable', reason: err.message, caveats: [], numbers: {} };
}

/** The finding as text: the paper, the runs, the verdict. */
export function formatFinding(f: Finding): string {
  const out = [`${f.figure}`, 'The paper:', ...f.paper.map((l) => `  ${l}`)];
  if (f.context) out.push(`These runs (${f.context}):`);
  else out.push('These runs:');
  out.push(...(f.measured.length ? f.measured.map((l) => `  ${l}`) : ['  (no measurements)']));
  out.push(`Verdict at this scale: ${f.verdict.toUpperCase()}: ${f.reason}`);
  for (const c of f.caveats) out.push(`Caveat: ${c}`);
  return out.join('\n');
}

/** Prints formatFinding(f) and returns f. */
export function report(f: Finding, print: (s: string) => void = (s) => console.log(s)): Finding {
  print(formatFinding(f));
  return f;
}

// ---- Fig. 5: conditioning ------------------------------------------------------------------

export function conditioningFinding(rows: readonly ResultRow[], opts: FindingOptions = {}): Finding {
  const figure = 'Fig. 5: conditioning strategies';
  const pg = VARIANT_GFLOPS;
  const paper = [
    'adaLN-Zero has the lowest FID at every stage of training; at 400K steps its FID is about half of in-context\'s ' +
      `(ratio about ${FIG5_ADALN_ZERO_OVER_IN_CONTEXT}).`,
    `DiT-XL/2 forward Gflops: in-context ${pg['in-context']}, cross-attention ${pg['cross-attention']} ` +
      `(${((pg['cross-attention'] / pg['adaln-zero'] - 1) * 100).toFixed(0)}% more than adaLN-Zero), adaLN ${pg.adaln}, adaLN-Zero ${pg['adaln-zero']}.`,
  ];
  let d: StudyData;
  try {
    d = studyData(rows, 'conditioning', opts, figure);
  } catch (err) {
    return notTestable(figure, paper, err);
  }
  // The model with the most variants (the paper compares them on one model, DiT-XL/2).
  const models = [...new Set(d.cells.map((c) => c.model))];
  const model = models.sort((a, b) => d.cells.filter((c) => c.model === b).length - d.cells.filter((c) => c.model === a).length)[0];
  const cells = d.cells.filter((c) => c.model === model);
  const by = new Map(cells.map((c) => [c.variant, c]));
  const measured = cells.map((c) =>
    `${variantLabel(c.variant).padEnd(15)} ${c.gflops !== null ? formatGflops(c.gflops) : 'n/a'} Gflops (paper ${pg[c.variant] ?? 'n/a'}) · final FID ${fid(finalFid(c))} at step ${finalStep(c) ?? 'n/a'}` +
    `${c.stdRatio !== null ? ` · samples' std ${c.stdRatio.toFixed(2)}x the data's${c.onScale === false ? ' (OFF-SCALE: not compared)' : ''}` : ''}` +
    `${c.final && num(c.final, 'val_loss') !== null ? ` · val loss ${num(c.final, 'val_loss')!.toFixed(4)}` : ''}`);
  const zero = by.get('adaln-zero');
  const ic = by.get('in-context');
  const ca = by.get('cross-attention');
  const numbers: Record<string, number | null> = {};
  if (ca?.gflops && zero?.gflops) {
    numbers.crossAttentionGflopsRatio = ca.gflops / zero.gflops;
    measured.push(`cross-attention / adaLN-Zero Gflops: ${ratio(numbers.crossAttentionGflopsRatio)} (paper ${ratio(pg['cross-attention'] / pg['adaln-zero'])})`);
  }
  if (!zero || finalFid(zero) === null) {
    return { figure, paper, context: context(d), measured, verdict: 'not testable', reason: `no adaLN-Zero results for ${model} in the conditioning study`, caveats: caveats(d), numbers };
  }
  const zf = finalFid(zero)!;
  numbers.adalnZeroFinalFid = zf;
  if (ic && finalFid(ic) !== null) {
    numbers.inContextFinalFid = finalFid(ic);
    numbers.adalnZeroOverInContext = zf / finalFid(ic)!;
    measured.push(`adaLN-Zero final FID ${fid(zf)} vs in-context ${fid(finalFid(ic))}: ratio ${ratio(numbers.adalnZeroOverInContext)} (paper about ${FIG5_ADALN_ZERO_OVER_IN_CONTEXT})`);
  }
  // Lowest at every evaluated step that all variants share, and resolved against each at the
  // last; a variant whose final samples are off the data's scale is gated out, as everywhere.
  const stepsOf = (c: StudyCell) => new Map(c.curve.map((r) => [num(r, 'train_step')!, r]));
  const offScale = cells.filter((c) => c !== zero && c.onScale === false);
  const curves = cells.filter((c) => !offScale.includes(c)).map((c) => ({ c, s: stepsOf(c) }));
  const zs = stepsOf(zero);
  const shared = [...zs.keys()].filter((s) => curves.every((x) => x.s.has(s))).sort((a, b) => a - b);
  const lowestAt = shared.filter((s) => curves.every((x) => x.c === zero || num(x.s.get(s)!, 'fid')! > num(zs.get(s)!, 'fid')!));
  numbers.stepsShared = shared.length;
  numbers.stepsAdalnZeroLowest = lowestAt.length;
  const best = curves.map((x) => x.c).filter((c) => finalFid(c) !== null).sort((a, b) => finalFid(a)! - finalFid(b)!)[0];
  const gated = offScale.length ? ` (not compared, off the data's scale: ${offScaleList(offScale, true)})` : '';
  measured.push(`lowest final FID: ${variantLabel(best.variant)} (${fid(finalFid(best))}); adaLN-Zero lowest at ${lowestAt.length} of ${shared.length} evaluated steps (${shared.join(', ')})${gated}`);
  const last = shared[shared.length - 1];
  const atLast = last === undefined ? [] : curves.filter((x) => x.c !== zero).map((x) => ({ c: x.c, cmp: compareFid(fidSe(zs.get(last)!), fidSe(x.s.get(last)!), d.seed.se) }));
  for (const { c, cmp } of atLast) measured.push(`step ${last}: adaLN-Zero ${fid(num(zs.get(last)!, 'fid'))} vs ${variantLabel(c.variant)} ${fid(num(c.curve.find((r) => num(r, 'train_step') === last)!, 'fid'))}${describe(cmp)}`);
  const t = tally(atLast.map((x) => x.cmp));
  numbers.resolvedAgreeAtLast = t.agree;
  numbers.resolvedAgainstAtLast = t.against;
  numbers.unresolvedAtLast = t.unresolved;
  numbers.offScaleVariants = offScale.length;
  measured.push(`rule: ${ruleText(d)}`);
  let verdict: Verdict;
  let reason: string;
  const icRatio = numbers.adalnZeroOverInContext ?? null;
  const everyStep = shared.length > 0 && lowestAt.length === shared.length;
  if (curves.length < 2) {
    verdict = 'not testable';
    reason = cells.length < 2 ? `only one conditioning variant of ${model} has results` : `no on-scale variant of ${model} to compare adaLN-Zero with${gated}`;
  } else if (everyStep && t.agree === atLast.length && offScale.length) {
    verdict = 'partly reproduced';
    reason = `adaLN-Zero has the lowest FID at all ${shared.length} evaluated steps, resolved against the ${atLast.length} other on-scale designs at step ${last}${gated}`;
  } else if (everyStep && t.agree === atLast.length) {
    verdict = 'reproduced';
    reason = `adaLN-Zero has the lowest FID at all ${shared.length} evaluated steps, resolved against all ${atLast.length} other designs at step ${last}` +
      (icRatio !== null ? `; its final FID is ${ratio(icRatio)} x in-context's (paper about ${FIG5_ADALN_ZERO_OVER_IN_CONTEXT})` : '');
  } else if (t.against > 0) {
    verdict = 'not reproduced';
    reason = `at step ${last} ${atLast.filter((x) => x.cmp.status === 'against').map((x) => variantLabel(x.c.variant)).join(', ')} ${t.against === 1 ? 'is' : 'are'} resolved lower than adaLN-Zero`;
  } else if (best === zero) {
    verdict = 'partly reproduced';
    reason = `adaLN-Zero has the lowest final FID, lowest at ${lowestAt.length} of ${shared.length} evaluated steps; at step ${last}: ${tallyText(t)}`;
  } else {
    verdict = 'partly reproduced';
    reason = `${variantLabel(best.variant)} has the lowest final FID (${fid(finalFid(best))}, adaLN-Zero ${fid(zf)}) but no design is resolved lower than adaLN-Zero at step ${last}: ${tallyText(t)}`;
  }
  return { figure, paper, context: `${context(d)} · ${model}`, measured, verdict, reason, caveats: caveats(d), numbers };
}

// ---- Fig. 6: scaling model size and patch size ------------------------------------------------

interface PairCheck {
  better: StudyCell;
  worse: StudyCell;
  /** null: an off-scale model takes part (not compared). */
  cmp: Comparison | null;
  line: string;
}

/** `expectedBetter` should have the lower final FID: resolved, unresolved or resolved against. */
function comparePair(expectedBetter: StudyCell, other: StudyCell, what: string, seSeed: number): PairCheck {
  const fb = finalFid(expectedBetter);
  const fo = finalFid(other);
  const pk = table4Key(expectedBetter.model);
  const po = table4Key(other.model);
  const paper = pk && po ? `; paper ${pk} vs ${po}: ${fid(TABLE4[pk].fid)} vs ${fid(TABLE4[po].fid)}` : '';
  const head = `${expectedBetter.model} vs ${other.model} (${what}): final FID ${fid(fb)} vs ${fid(fo)}`;
  if (expectedBetter.onScale === false || other.onScale === false || fb === null || fo === null) {
    return { better: expectedBetter, worse: other, cmp: null, line: `${head}: not compared (${offScaleList([expectedBetter, other]) || 'no final FID'} off the data's scale)${paper}` };
  }
  const cmp = compareFid(fidSe(expectedBetter.final!), fidSe(other.final!), seSeed);
  return { better: expectedBetter, worse: other, cmp, line: `${head}${describe(cmp)}${paper}` };
}

export function scalingFinding(rows: readonly ResultRow[], opts: FindingOptions = {}): Finding {
  const figure = 'Fig. 6: scaling the model size and the patch size';
  const paper = [
    'At a fixed patch size, bigger models (S -> B -> L -> XL) have lower FID throughout training; at a fixed model size, smaller patches (more tokens) do too.',
    `Table 4 at 400K steps: S/8 ${TABLE4['S/8'].fid} ... XL/8 ${TABLE4['XL/8'].fid}; S/2 ${TABLE4['S/2'].fid} ... XL/2 ${TABLE4['XL/2'].fid}; XL/8 ${TABLE4['XL/8'].fid} -> XL/4 ${TABLE4['XL/4'].fid} -> XL/2 ${TABLE4['XL/2'].fid}.`,
  ];
  let d: StudyData;
  try {
    d = studyData(rows, 'scaling', opts, figure);
  } catch (err) {
    return notTestable(figure, paper, err);
  }
  const cells = d.cells.filter((c) => c.size !== null && c.patch !== null && c.final);
  const measured = cells.map((c) => `${c.model.padEnd(10)} ${formatGflops(c.gflops ?? NaN)} Gflops · final FID ${fid(finalFid(c))}${c.final && num(c.final, 'fid_se') !== null ? ` ± ${num(c.final, 'fid_se')!.toFixed(2)}` : ''} at step ${finalStep(c)}` +
    `${c.stdRatio !== null ? ` · samples' std ${c.stdRatio.toFixed(2)}x the data's${c.onScale === false ? ' (OFF-SCALE)' : ''}` : ''}` +
    `${c.final && num(c.final, 'class_accuracy') !== null ? ` · class accuracy ${(100 * num(c.final, 'class_accuracy')!).toFixed(1)}%` : ''}`);
  const sizeChecks: PairCheck[] = [];
  for (const p of PATCH_ORDER) {
    const line = SIZE_ORDER.map((s) => cells.find((c) => c.patch === p && c.size === s)).filter((c): c is StudyCell => !!c);
    for (let i = 1; i < line.length; i++) sizeChecks.push(comparePair(line[i], line[i - 1], `bigger model, patch ${p}`, d.seed.se));
  }
  const patchChecks: PairCheck[] = [];
  for (const s of SIZE_ORDER) {
    const line = PATCH_ORDER.map((p) => cells.find((c) => c.size === s && c.patch === p)).filter((c): c is StudyCell => !!c);
    for (let i = 1; i < line.length; i++) patchChecks.push(comparePair(line[i], line[i - 1], `smaller patch, size ${s}`, d.seed.se));
  }
  measured.push(...sizeChecks.map((c) => c.line), ...patchChecks.map((c) => c.line), `rule: ${ruleText(d)}`);
  const cmps = (cs: PairCheck[]) => cs.map((c) => c.cmp).filter((c): c is Comparison => c !== null);
  const ts = tally(cmps(sizeChecks));
  const tp = tally(cmps(patchChecks));
  const all = tally([...cmps(sizeChecks), ...cmps(patchChecks)]);
  const skipped = sizeChecks.length + patchChecks.length - cmps(sizeChecks).length - cmps(patchChecks).length;
  const verdict = resolvedVerdict(all);
  const reason = `at the final step, bigger model: ${tallyText(ts)}; smaller patch: ${tallyText(tp)}` + (skipped ? `; ${skipped} comparison(s) with an off-scale model not counted` : '');
  return {
    figure, paper, context: context(d), measured, verdict, reason, caveats: caveats(d),
    numbers: {
      sizeComparisons: sizeChecks.length, sizeAgree: ts.agree, sizeAgainst: ts.against, sizeUnresolved: ts.unresolved,
      patchComparisons: patchChecks.length, patchAgree: tp.agree, patchAgainst: tp.against, patchUnresolved: tp.unresolved,
      resolvedAgainst: all.against, offScaleModels: cells.filter((c) => c.onScale === false).length, notCompared: skipped,
    },
  };
}

// ---- Fig. 8: Gflops vs FID -----------------------------------------------------------------------

/** |Pearson r| of log Gflops vs log FID from which the correlation counts as strong. */
export const STRONG_CORRELATION = 0.7;

export function gflopsFidFinding(rows: readonly ResultRow[], opts: FindingOptions = {}): Finding {
  const figure = 'Fig. 8: transformer Gflops vs FID';
  const p = paperFig8Stats();
  const paper = [
    'Model Gflops are strongly correlated with FID: more Gflops, lower FID, whatever mix of model size and patch size gives them.',
    `Computed here from Table 4 (12 models, 400K steps): log-log Pearson r = ${p.log.pearson.r.toFixed(3)} (p ${p.log.pearson.p.toExponential(1)}), ` +
      `Spearman rho = ${p.log.spearman.r.toFixed(3)}; power law FID = ${p.powerLaw.a.toPrecision(3)} * Gflops^${p.powerLaw.b.toFixed(3)} ` +
      `(95% CI of the exponent ${p.powerLaw.ci[0].toFixed(3)} .. ${p.powerLaw.ci[1].toFixed(3)}), R^2 = ${p.powerLaw.r2.toFixed(3)}.`,
  ];
  let spec;
  let d: StudyData;
  try {
    d = studyData(rows, 'scaling', opts, figure);
    spec = fig8GflopsVsFid(rows, opts);
  } catch (err) {
    return notTestable(figure, paper, err);
  }
  const s = spec.stats;
  const n = s.points.length;
  const ci = exponentInterval(s.powerLaw.b, s.powerLaw.bStderr, n);
  const [rlo, rhi] = s.pearsonCi;
  const measured = [
    `${n} on-scale models${s.excluded.length ? ` (left out, off the data's scale: ${s.excluded.map((e) => `${e.model} ${e.stdRatio.toFixed(2)}x`).join(', ')})` : ''}`,
    `log-log Pearson r = ${s.log.pearson.r.toFixed(3)}, bootstrap 95% interval ${rlo.toFixed(3)} .. ${rhi.toFixed(3)} (models resampled, each FID perturbed by its se and se_seed ${s.seSeed.toFixed(2)}); ` +
      `p ${s.log.pearson.p.toPrecision(2)}; Spearman rho = ${s.log.spearman.r.toFixed(3)} (p ${s.log.spearman.p.toPrecision(2)})`,
    `power law FID = ${s.powerLaw.a.toPrecision(3)} * Gflops^${s.powerLaw.b.toFixed(3)} (95% CI of the exponent ${ci[0].toFixed(3)} .. ${ci[1].toFixed(3)}), R^2 = ${s.powerLaw.r2.toFixed(3)}`,
    `exponent vs the paper's: ${ci[1] < p.powerLaw.ci[0] || ci[0] > p.powerLaw.ci[1] ? 'the 95% intervals do not overlap' : 'the 95% intervals overlap'}`,
  ];
  const r = s.log.pearson.r;
  const resolved = rhi < 0;
  let verdict: Verdict;
  let reason: string;
  if (r <= -STRONG_CORRELATION && resolved) {
    verdict = 'reproduced';
    reason = `strong negative correlation over ${n} on-scale models (r = ${r.toFixed(3)} <= -${STRONG_CORRELATION}, bootstrap 95% interval ${rlo.toFixed(3)} .. ${rhi.toFixed(3)} below 0): more Gflops, lower FID`;
  } else if (r < 0) {
    verdict = 'partly reproduced';
    const why = [r > -STRONG_CORRELATION ? `weaker than -${STRONG_CORRELATION}` : '', resolved ? '' : `not resolved (its bootstrap interval ${rlo.toFixed(3)} .. ${rhi.toFixed(3)} reaches 0)`];
    reason = `FID falls with Gflops (r = ${r.toFixed(3)}) but the correlation is ${why.filter(Boolean).join(' and ')}`;
  } else {
    verdict = 'not reproduced';
    reason = `FID does not fall with Gflops (r = ${r.toFixed(3)}, bootstrap 95% interval ${rlo.toFixed(3)} .. ${rhi.toFixed(3)})`;
  }
  return {
    figure, paper, context: context(d), measured, verdict, reason, caveats: caveats(d),
    numbers: {
      n, pearsonLog: r, pearsonLogLow: rlo, pearsonLogHigh: rhi, pearsonLogP: s.log.pearson.p, spearmanLog: s.log.spearman.r, exponent: s.powerLaw.b,
      exponentLow: ci[0], exponentHigh: ci[1], paperPearsonLog: p.log.pearson.r, paperExponent: p.powerLaw.b, excluded: s.excluded.length,
    },
  };
}

// ---- Fig. 9: training compute --------------------------------------------------------------------

/** Training compute of a row, as Fig. 9 plots it. */
const trainCompute = trainGflops;

/** FID at compute x on a curve of (compute, FID) points, linear in log compute; null outside it. */
export function interpolateLog(points: Array<[number, number]>, x: number): number | null {
  const p = [...points].sort((a, b) => a[0] - b[0]);
  if (!p.length || x < p[0][0] * (1 - 1e-9) || x > p[p.length - 1][0] * (1 + 1e-9)) return null;
  for (let i = 0; i < p.length; i++) {
    if (Math.abs(p[i][0] - x) <= 1e-9 * x) return p[i][1];
    if (i > 0 && p[i - 1][0] < x && x < p[i][0]) {
      const t = (Math.log(x) - Math.log(p[i - 1][0])) / (Math.log(p[i][0]) - Math.log(p[i - 1][0]));
      return p[i - 1][1] + t * (p[i][1] - p[i - 1][1]);
    }
  }
  return null;
}

export function trainingComputeFinding(rows: readonly ResultRow[], opts: FindingOptions = {}): Finding {
  const figure = 'Fig. 9: training compute';
  const paper = [
    'Training compute = Gflops x batch size x steps x 3. At equal training compute, larger DiT models reach lower FID: they use training compute more efficiently.',
  ];
  let d: StudyData;
  try {
    d = studyData(rows, 'scaling', opts, figure);
  } catch (err) {
    return notTestable(figure, paper, err);
  }
  const curves = d.cells
    .filter((c) => c.gflops !== null && c.onScale !== false)
    .map((c) => ({
      c,
      pts: c.curve.map((r) => [trainCompute(r), num(r, 'fid')] as [number | null, number | null]).filter((p): p is [number, number] => p[0] !== null && p[0] > 0 && p[1] !== null),
      se: c.curve.map((r) => [trainCompute(r), num(r, 'fid_se') ?? 0] as [number | null, number]).filter((p): p is [number, number] => p[0] !== null && p[0] > 0),
    }))
    .filter((x) => x.pts.length)
    .sort((a, b) => a.c.gflops! - b.c.gflops!);
  const measured = curves.map(({ c, pts }) => `${c.model.padEnd(10)} training compute ${Math.min(...pts.map((p) => p[0])).toExponential(2)} .. ${Math.max(...pts.map((p) => p[0])).toExponential(2)} Gflops, FID ${fid(pts[0][1])} -> ${fid(pts[pts.length - 1][1])}`);
  const off = offScaleList(d.cells);
  if (off) measured.push(`not compared (off the data's scale): ${off}`);
  const cmps: Comparison[] = [];
  for (let i = 0; i < curves.length; i++) {
    for (let j = i + 1; j < curves.length; j++) {
      const small = curves[i];
      const large = curves[j];
      if (small.c.gflops === large.c.gflops) continue;
      // The largest training compute both curves reach.
      const x = Math.min(Math.max(...small.pts.map((p) => p[0])), Math.max(...large.pts.map((p) => p[0])));
      const fs = interpolateLog(small.pts, x);
      const fl = interpolateLog(large.pts, x);
      if (fs === null || fl === null) continue;
      const cmp = compareFid({ fid: fl, se: interpolateLog(large.se, x) }, { fid: fs, se: interpolateLog(small.se, x) }, d.seed.se);
      cmps.push(cmp);
      measured.push(`at ${x.toExponential(2)} training Gflops: ${large.c.model} FID ${fid(fl)} vs ${small.c.model} ${fid(fs)}: the larger model lower${describe(cmp)}`);
    }
  }
  measured.push(`rule: ${ruleText(d)}`);
  const t = tally(cmps);
  const verdict = resolvedVerdict(t);
  const reason = cmps.length
    ? `the larger model at equal training compute, over ${cmps.length} comparable pairs: ${tallyText(t)}`
    : `no two on-scale models' training-compute ranges overlap (${curves.length} model(s)), so no pair can be compared at equal compute; evaluate over a wider range of steps`;
  const numbers = { pairs: cmps.length, agree: t.agree, against: t.against, unresolved: t.unresolved };
  return { figure, paper, context: context(d), measured, verdict, reason, caveats: caveats(d), numbers };
}

// ---- Fig. 10: sampling compute -------------------------------------------------------------------

export function samplingComputeFinding(rows: readonly ResultRow[], opts: FindingOptions = {}): Finding {
  const figure = 'Fig. 10: sampling compute';
  const paper = [
    `FID-10K after 400K steps with ${FIG10_SAMPLING_STEPS.join(', ')} sampling steps, against sampling compute per image (Gflops x steps):`,
    'small models never catch the large ones, even when they spend more sampling compute than the large models.',
  ];
  let d: StudyData;
  try {
    d = studyData(rows, 'sampling-compute', opts, figure);
  } catch (err) {
    return notTestable(figure, paper, err);
  }
  const models = fig10Points(d).filter((m) => m.c.onScale !== false);
  const measured = models.map(({ c, pts }) => `${c.model.padEnd(10)} ` + pts.map((p) => `${p.steps} steps: ${formatGflops(p.compute)} Gflops/img, FID ${fid(p.fid)}`).join(' | '));
  const off = offScaleList(d.cells);
  if (off) measured.push(`not compared (off the data's scale): ${off}`);
  if (models.length < 2) {
    return { figure, paper, context: context(d), measured, verdict: 'not testable', reason: `needs at least two on-scale models in the 'sampling-compute' study (have ${models.length})`, caveats: caveats(d), numbers: {} };
  }
  // The paper's claim, made testable: no smaller model reaches the largest model's best FID at any sampling budget.
  const largest = models[models.length - 1];
  const lb = largest.pts.reduce((a, b) => (b.fid < a.fid ? b : a));
  const cmps: Comparison[] = [];
  for (const m of models.slice(0, -1)) {
    if (m.c.gflops === largest.c.gflops) continue;
    const cs = m.pts.map((p) => compareFid({ fid: lb.fid, se: lb.se }, { fid: p.fid, se: p.se }, d.seed.se));
    cmps.push(...cs);
    const t = tally(cs);
    const closest = m.pts.reduce((a, b) => (b.fid < a.fid ? b : a));
    measured.push(`${m.c.model} at its best (${closest.steps} steps, ${formatGflops(closest.compute)} Gflops/img) FID ${fid(closest.fid)} vs ${largest.c.model}'s best ${fid(lb.fid)} (${lb.steps} steps): ` +
      `over its ${cs.length} sampling budgets, ${t.agree} resolved behind, ${t.unresolved} unresolved, ${t.against} resolved AHEAD`);
  }
  // Every pair, compactly: the smaller model's best against the larger one's best.
  const pairs: Comparison[] = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      if (models[i].c.gflops === models[j].c.gflops) continue;
      const sb = models[i].pts.reduce((a, b) => (b.fid < a.fid ? b : a));
      const bb = models[j].pts.reduce((a, b) => (b.fid < a.fid ? b : a));
      pairs.push(compareFid({ fid: bb.fid, se: bb.se }, { fid: sb.fid, se: sb.se }, d.seed.se));
    }
  }
  const tp = tally(pairs);
  measured.push(`all ${pairs.length} pairs, the smaller model's best FID behind the larger one's best: ${tallyText(tp)}`, `rule: ${ruleText(d)}`);
  const t = tally(cmps);
  const verdict = resolvedVerdict(t);
  const reason = `${cmps.length} (model, sampling budget) points of the ${models.length - 1} smaller models against ${largest.c.model}'s best FID ${fid(lb.fid)}: ` +
    `${t.agree} resolved behind it (as the paper), ${t.unresolved} unresolved, ${t.against} resolved ahead of it`;
  return {
    figure, paper, context: context(d), measured, verdict, reason, caveats: caveats(d),
    numbers: { points: cmps.length, behind: t.agree, unresolved: t.unresolved, ahead: t.against, pairs: pairs.length, pairsAgree: tp.agree, pairsAgainst: tp.against },
  };
}

interface Fig10Point {
  steps: number | null;
  compute: number;
  fid: number;
  se: number | null;
}

/** Each model's final checkpoint at every sampling step count (lowest guidance scale when there are several), by Gflops. */
function fig10Points(d: StudyData): Array<{ c: StudyCell; pts: Fig10Point[] }> {
  return d.cells
    .filter((c) => c.gflops !== null && !c.unfinished)
    .map((c) => {
      const last = Math.max(...c.rows.map((r) => num(r, 'train_step') ?? -Infinity));
      const finals = c.rows.filter((r) => num(r, 'train_step') === last && num(r, 'fid') !== null && samplingGflopsPerImage(r) !== null);
      const cfg = Math.min(...finals.map((r) => num(r, 'cfg_scale') ?? 1));
      const pts = finals.filter((r) => (num(r, 'cfg_scale') ?? 1) === cfg)
        .map((r) => ({ steps: num(r, 'sampling_steps'), compute: samplingGflopsPerImage(r)!, fid: num(r, 'fid')!, se: num(r, 'fid_se') }))
        .sort((a, b) => a.compute - b.compute);
      return { c, pts };
    })
    .filter((m) => m.pts.length)
    .sort((a, b) => a.c.gflops! - b.c.gflops!);
}

/** Fig. 10 as a compact table: one row per model, FID (± se) at each sampling step count, and the best. */
export function fig10Table(rows: readonly ResultRow[], opts: FindingOptions = {}): Array<Record<string, string | number>> {
  let d: StudyData;
  try {
    d = studyData(rows, 'sampling-compute', opts, 'Fig. 10');
  } catch (err) {
    if (err instanceof MissingDataError) return [];
    throw err;
  }
  const models = fig10Points(d);
  const steps = [...new Set(models.flatMap((m) => m.pts.map((p) => p.steps)))].filter((v): v is number => v !== null).sort((a, b) => a - b);
  return models.map(({ c, pts }) => {
    const row: Record<string, string | number> = { model: c.model, gflops: Number((c.gflops ?? NaN).toPrecision(3)) };
    for (const n of steps) {
      const p = pts.find((q) => q.steps === n);
      row[`FID @${n} steps`] = p ? `${p.fid.toFixed(1)}${p.se !== null ? ` ± ${p.se.toFixed(1)}` : ''}` : '';
    }
    const best = pts.reduce((a, b) => (b.fid < a.fid ? b : a));
    row.best = `${best.fid.toFixed(1)} (${best.steps} steps)`;
    row.samples_std = c.stdRatio === null ? '' : `${c.stdRatio.toFixed(2)}x${c.onScale === false ? ' OFF-SCALE' : ''}`;
    return row;
  });
}

/** A figure maker's finding (Figs. 5, 6, 8, 9, 10). */
const FINDING_OF = new Map<unknown, (rows: readonly ResultRow[], opts?: FindingOptions) => Finding>([
  [fig5Conditioning, conditioningFinding], [fig6Scaling, scalingFinding], [fig8GflopsVsFid, gflopsFidFinding],
  [fig9TrainingCompute, trainingComputeFinding], [fig10SamplingCompute, samplingComputeFinding],
]);

/** The title a figure gets from its finding (undefined when it has none or it is not testable). */
export function measuredHeadline(make: unknown, rows: readonly ResultRow[], opts: FindingOptions = {}): string | undefined {
  const f = FINDING_OF.get(make)?.(rows, opts);
  return f && f.verdict !== 'not testable' ? figureHeadline(f) : undefined;
}

/** A figure's title from its finding: the verdict and its reason, as measured. */
export function figureHeadline(f: Finding, width = 110): string {
  // (baseLayout wraps it again to the figure's own width.)
  return wrapWords(`${f.figure.split(':')[0]}: ${f.verdict} at this scale: ${f.reason}`, width).join('<br>');
}

// ---- tables ------------------------------------------------------------------------------------------

/** Fig. 8's statistics of the runs (when there are) beside the same statistics of Table 4. */
export function fig8StatsTable(stats: import('../figures/specs').GflopsFidStats | null): Array<Record<string, string | number>> {
  const p = paperFig8Stats();
  const line = (data: string, n: number, pr: number, pp: number, sr: number, b: number, ci: [number, number], r2: number) => ({
    data, models: n, pearson_log: Number(pr.toFixed(3)), pearson_p: Number(pp.toPrecision(2)), spearman_log: Number(sr.toFixed(3)),
    exponent_b: Number(b.toFixed(3)), b_ci95_low: Number(ci[0].toFixed(3)), b_ci95_high: Number(ci[1].toFixed(3)), r2: Number(r2.toFixed(3)),
  });
  const out = [line('paper (Table 4)', p.n, p.log.pearson.r, p.log.pearson.p, p.log.spearman.r, p.powerLaw.b, p.powerLaw.ci, p.powerLaw.r2)];
  if (stats) {
    const n = stats.points.length;
    out.push(line('these runs', n, stats.log.pearson.r, stats.log.pearson.p, stats.log.spearman.r, stats.powerLaw.b, exponentInterval(stats.powerLaw.b, stats.powerLaw.bStderr, n), stats.powerLaw.r2));
  }
  return out;
}
