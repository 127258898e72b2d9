import * as fs from 'fs';
import { configNames, ditConfig, DiTConfig, validateConfig, VARIANTS, Variant } from '../model/config';
import { modelStats } from '../model/gflops';
import { asUsage, parseArgs, UsageError } from '../util/args';
import { readJsonFile } from '../util/paths';
import type { Command } from './command';

const USAGE = `usage: dit-kit gflops [--model NAME] [--variant V] [--input-size N] [--in-channels N] [--num-classes N] [--json]

Forward Gflops (multiply-adds of one forward pass of one sample, the paper's
convention), parameter count and tokens of a DiT config.
  --model NAME      DiT-S/8 ... DiT-XL/2, mini-S/8 ... mini-XL/2, or a config .json; without it, every config and variant
  --variant V       ${VARIANTS.join(' | ')} (default adaln-zero)
  --input-size N    latent side (default 32 for DiT-*, 16 for mini-*)
  --in-channels N   latent channels (default 4)
  --num-classes N   class count (default 1000 for DiT-*, 10 for mini-*)
  --json            one JSON object per line`;

const FLAGS = { model: 'string', variant: 'string', 'input-size': 'int', 'in-channels': 'int', 'num-classes': 'int', json: 'boolean' } as const;

/** Config overrides shared by the commands that take a --model. */
export function configFromFlags(model: string, f: Record<string, unknown>): DiTConfig {
  const o: Partial<DiTConfig> = {};
  if (f.variant !== undefined) o.variant = f.variant as Variant;
  if (f['input-size'] !== undefined) o.inputSize = f['input-size'] as number;
  if (f['in-channels'] !== undefined) o.inChannels = f['in-channels'] as number;
  if (f['num-classes'] !== undefined) o.numClasses = f['num-classes'] as number;
  return asUsage(() => {
    // A JSON file holding a full config (e.g. the golden fixtures' non-named configs).
    if (model.endsWith('.json')) {
      if (!fs.existsSync(model)) throw new Error(`config file not found: ${model}`);
      return validateConfig({ ...(readJsonFile(model) as DiTConfig), ...o });
    }
    return ditConfig(model, o);
  });
}

function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`;
}

export const gflopsCommand: Command = {
  name: 'gflops',
  summary: 'Gflops, parameters and tokens of DiT configs (paper Table 4 convention)',
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    if (flags.model) {
      const s = modelStats(configFromFlags(flags.model as string, flags));
      if (flags.json) console.log(JSON.stringify(s));
      else console.log(`${s.model} (${s.variant}): ${s.gflops.toFixed(4)} Gflops, ${s.params.toLocaleString('en-US')} params, ${s.tokens} tokens`);
      return 0;
    }
    const variants: readonly Variant[] = flags.variant ? [flags.variant as Variant] : VARIANTS;
    const rows = configNames().map((name) => variants.map((v) => modelStats(configFromFlags(name, { ...flags, variant: v }))));
    if (flags.json) {
      for (const r of rows) for (const s of r) console.log(JSON.stringify(s));
      return 0;
    }
    const head = ['model', 'tokens', 'params', ...variants.map((v) => `Gflops ${v}`)];
    const body = rows.map((r) => [r[0].model, String(r[0].tokens), fmtParams(r[0].params), ...r.map((s) => s.gflops < 0.1 ? s.gflops.toFixed(4) : s.gflops.toFixed(2))]);
    const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
    console.log(line(head));
    for (const b of body) console.log(line(b));
    console.log('\nparams are for adaln-zero; Gflops = forward multiply-adds per sample / 1e9.');
    return 0;
  },
};
