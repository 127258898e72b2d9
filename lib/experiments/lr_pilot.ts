// The learning-rate pilot behind an experiment's train.lr and train.lrWarmup: a few
// short runs per (model, lr, warm-up) on the experiment's data, scored by the held-out
// validation loss of their EMA weights (train/validation.ts), which at a few hundred
// steps is far less noisy than FID. One CSV row per (run, evaluated step), with provenance.
import * as path from 'path';
import { backendInfo } from '../backend';
import { closeRun, train } from '../train/trainer';
import { configHash, gitCommit } from '../util/provenance';
import { writeFileAtomic } from '../util/paths';
import { ExperimentConfig, experimentCells } from './config';
import { BuiltPipeline } from './pipeline';
import { trainOptions } from './sweep';

export interface LrPilotOptions {
  models: string[];
  lrs: number[];
  warmups: number[];
  steps: number;
  evalSteps: number[];
  runsDir: string;
  out: string;
  log?: (m: string) => void;
}

export const LR_PILOT_COLUMNS = ['experiment', 'model', 'lr', 'lr_warmup', 'step', 'batch_size', 'ema_decay', 'seed', 'val_loss', 'val_mse', 'val_vb', 'train_loss_last100', 'data_id', 'config_hash', 'git_commit', 'backend', 'timestamp'];

export async function runLrPilot(e: ExperimentConfig, pipe: BuiltPipeline, o: LrPilotOptions): Promise<string[][]> {
  if (!pipe.validate) throw new Error(`${e.name}: the lr pilot needs eval.valLatents > 0`);
  const log = o.log ?? ((m: string) => process.stderr.write(`[lr-pilot] ${m}\n`));
  const rows: string[][] = [];
  for (const model of o.models) {
    const cell = experimentCells({ ...e, studies: [{ name: 'pilot', models: [model], variants: ['adaln-zero'] }] })[0];
    for (const lr of o.lrs) {
      for (const warmup of o.warmups) {
        const base = trainOptions(e, cell);
        const opts = { ...base, steps: o.steps, ckptEvery: o.steps, optimizer: { ...base.optimizer, lr }, ...(warmup ? { lrWarmup: warmup } : {}) };
        const dir = path.join(o.runsDir, `${cell.id}-lr${lr}-w${warmup}`);
        const losses: number[] = [];
        const st = await train(dir, opts, pipe.source, {
          quiet: true,
          evalSteps: o.evalSteps,
          onStep: (l) => {
            losses.push(l.loss);
          },
          onEval: (step, state) => {
            const v = pipe.validate!({ config: state.options.model, params: state.ema }, state.diffusion);
            const last = losses.slice(-100);
            const tl = last.length ? last.reduce((a, b) => a + b, 0) / last.length : NaN;
            log(`${model} lr ${lr} warm-up ${warmup} step ${step}: val loss ${v.loss.toFixed(5)} (mse ${v.mse.toFixed(5)}, vb ${v.vb.toFixed(5)}), train loss (last 100) ${tl.toFixed(4)}`);
            rows.push([e.name, model, String(lr), String(warmup), String(step), String(opts.batchSize), String(opts.ema.decay), String(opts.seed),
              String(v.loss), String(v.mse), String(v.vb), String(tl),
              pipe.source.id, configHash({ ...opts, data: pipe.source.id }), gitCommit(), backendInfo()?.name ?? 'unknown', new Date().toISOString()]);
          },
        });
        closeRun(st);
      }
    }
  }
  writeFileAtomic(o.out, [LR_PILOT_COLUMNS, ...rows].map((r) => r.join(',')).join('\n') + '\n');
  return rows;
}
