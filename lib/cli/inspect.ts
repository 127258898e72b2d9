import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { describe, numel, toFloat32, toInt32 } from '../io/array';
import { readNpz, writeNpz } from '../io/npy';
import { WeightsKey, configFromTrainArgs, inferConfig, loadDiT, readDiTTensors } from '../model/checkpoint';
import { diffusersDiTFolder, readDiffusersDiT } from '../model/diffusers';
import { hasNullClass } from '../model/config';
import { ditForward, disposeDiT } from '../model/dit';
import { gflops } from '../model/gflops';
import { checkLabels } from '../model/labels';
import { parseArgs, UsageError } from '../util/args';
import type { Command } from './command';
import { configFromFlags } from './gflops';

const USAGE = `usage: dit-kit inspect --checkpoint FILE|DIR [--key ema|model] [--json]
       dit-kit inspect --checkpoint FILE --model NAME|CONFIG.json [--variant V] [--input-size N] [--in-channels N] [--num-classes N]
                   [--key ema|model] --forward IN.npz --out OUT.npz

Reads a PyTorch (.pt/.pth, zip or legacy torch.save) or .safetensors DiT checkpoint, a
DiT train.py checkpoint (--key: which weights, default ema as sample.py; its args name the
architecture) or a diffusers DiT folder (converted to the published names).
Without --forward: tensor names, shapes, dtypes, parameter count and the inferred
architecture. With --forward: one forward pass on x (N,C,H,W float32), t and y
(int64 or int32) from IN.npz; writes out (N,2C,H,W float32) to OUT.npz.`;

const FLAGS = {
  checkpoint: 'string', model: 'string', variant: 'string', 'input-size': 'int', 'in-channels': 'int',
  'num-classes': 'int', forward: 'string', out: 'string', json: 'boolean', key: 'string',
} as const;

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'list a checkpoint\'s tensors and architecture, or run one forward pass on it',
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const file = flags.checkpoint as string | undefined;
    if (!file) throw new UsageError('--checkpoint FILE is required');
    const key = flags.key as WeightsKey | undefined;
    if (key !== undefined && key !== 'ema' && key !== 'model') throw new UsageError('--key must be ema or model');
    if (flags.forward !== undefined || flags.out !== undefined) {
      if (!flags.forward || !flags.out || !flags.model) throw new UsageError('--forward needs --model NAME, --forward IN.npz and --out OUT.npz');
      return runForward(file, flags);
    }
    const diffusers = diffusersDiTFolder(file) ? readDiffusersDiT(file) : null;
    const f = diffusers ? null : readDiTTensors(file, key);
    const format = diffusers ? 'diffusers DiT folder' : `${f!.format}${f!.chosen ? `, ${f!.chosen} weights` : ''}`;
    const tensors = diffusers ? diffusers.tensors : f!.tensors;
    const names = Object.keys(tensors);
    const total = names.reduce((n, k) => n + numel(tensors[k].shape), 0);
    let arch: string;
    let archJson: unknown = null;
    try {
      // The architecture the file states (diffusers config, train.py args), else what the shapes imply.
      const stated = diffusers?.config ?? (f?.args ? configFromTrainArgs(f.args, file) : null);
      const { config, headsGuessed } = stated ? { config: stated, headsGuessed: false } : inferConfig(tensors, file);
      archJson = { ...config, headsGuessed, gflops: gflops(config) };
      arch = `${config.variant} DiT: input ${config.inputSize}x${config.inputSize}x${config.inChannels}, patch ${config.patchSize}, ` +
        `hidden ${config.hiddenSize}, depth ${config.depth}, heads ${config.numHeads}${headsGuessed ? ' (guessed: not stored in the weights)' : ''}, ` +
        `${config.numClasses} classes + null, learnSigma ${config.learnSigma}, ${gflops(config).toFixed(3)} Gflops`;
    } catch (err) {
      arch = `not a DiT state_dict (${(err as Error).message})`;
    }
    if (flags.json) {
      const list = names.map((k) => ({ name: k, dtype: tensors[k].dtype, shape: tensors[k].shape }));
      console.log(JSON.stringify({ file, format, tensors: list, params: total, architecture: archJson }));
      return 0;
    }
    console.log(`${file} (${format}): ${names.length} tensors, ${total.toLocaleString('en-US')} parameters`);
    const w = Math.max(...names.map((k) => k.length));
    for (const k of names) console.log(`  ${k.padEnd(w)}  ${describe(tensors[k])}`);
    console.log(`architecture: ${arch}`);
    return 0;
  },
};

async function runForward(file: string, flags: Record<string, unknown>): Promise<number> {
  await initBackend();
  const config = configFromFlags(flags.model as string, flags);
  const io = readNpz(flags.forward as string);
  for (const k of ['x', 't', 'y']) if (!io[k]) throw new Error(`${flags.forward}: missing array '${k}' (need x, t, y)`);
  const model = loadDiT(file, config, flags.key as WeightsKey | undefined);
  try {
    // As PyTorch's embedding lookup: a label outside the table is an error, named with the file.
    checkLabels(toInt32(io.y, 'y'), model.config.numClasses, { allowNull: hasNullClass(model.config), what: `${flags.forward}: y` });
    const out = tf.tidy(() => {
      const x = tf.tensor(toFloat32(io.x), io.x.shape);
      const t = tf.tensor1d(toInt32(io.t, 't'), 'int32');
      const y = tf.tensor1d(toInt32(io.y, 'y'), 'int32');
      return ditForward(model, x, t, y);
    });
    writeNpz(flags.out as string, { out: { dtype: 'float32', shape: out.shape, data: out.dataSync() as Float32Array } });
    console.log(`wrote out ${JSON.stringify(out.shape)} to ${flags.out}`);
    out.dispose();
  } finally {
    disposeDiT(model);
  }
  return 0;
}
