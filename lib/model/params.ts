// The parameter table of a DiT: names equal the published PyTorch state_dict keys
// (so a public checkpoint loads without renaming), with each tensor's PyTorch shape,
// the layout the kit keeps it in, and its initialisation (DiT `initialize_weights`).
import { DiTConfig, hasNullClass, mlpHidden, numTokens, outChannels } from './config';

/**
 * How a tensor is stored inside the kit, relative to PyTorch:
 * - 'linear': torch [out, in] kept as [in, out], so x @ W needs no transposed matmul.
 * - 'conv':   patch-embedding conv [D, C, p, p] kept as a linear [C*p*p, D] on flattened patches.
 * - 'plain':  same shape and order as PyTorch.
 */
export type Layout = 'linear' | 'conv' | 'plain';

export type Init =
  | { kind: 'xavier'; fanIn: number; fanOut: number }
  | { kind: 'normal'; std: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'sincos2d' };

export interface ParamSpec {
  name: string;
  torchShape: number[];
  shape: number[];
  layout: Layout;
  init: Init;
  /** pos_embed is a fixed (not trained) parameter, as in the paper. */
  trainable: boolean;
}

const zeros: Init = { kind: 'zeros' };
const ones: Init = { kind: 'ones' };

function linear(name: string, fin: number, fout: number, init: Init = { kind: 'xavier', fanIn: fin, fanOut: fout }, biasInit: Init = zeros): ParamSpec[] {
  return [
    { name: `${name}.weight`, torchShape: [fout, fin], shape: [fin, fout], layout: 'linear', init, trainable: true },
    { name: `${name}.bias`, torchShape: [fout], shape: [fout], layout: 'plain', init: biasInit, trainable: true },
  ];
}

function layerNormAffine(name: string, d: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, torchShape: [d], shape: [d], layout: 'plain', init: ones, trainable: true },
    { name: `${name}.bias`, torchShape: [d], shape: [d], layout: 'plain', init: zeros, trainable: true },
  ];
}

/** Number of adaLN regression outputs per block: 6 with gates (adaLN-Zero), 4 without. */
export function adaLNChunks(c: DiTConfig): number {
  return c.variant === 'adaln-zero' ? 6 : c.variant === 'adaln' ? 4 : 0;
}

/** Whether the final layer modulates its LayerNorm from the conditioning (adaLN variants). */
export function usesAdaLN(c: DiTConfig): boolean {
  return c.variant === 'adaln-zero' || c.variant === 'adaln';
}

/** All parameters of a DiT in state_dict order. */
export function paramSpecs(c: DiTConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const p = c.patchSize;
  const patchDim = c.inChannels * p * p;
  const T = numTokens(c);
  const zeroInit = c.variant === 'adaln-zero';
  // adaLN-Zero zero-initialises the modulation regressions and the final linear
  // (every block starts as the identity, Sec. 3.2); the other variants do not.
  const zeroOr = (fin: number, fout: number): Init => (zeroInit ? zeros : { kind: 'xavier', fanIn: fin, fanOut: fout });
  const specs: ParamSpec[] = [
    { name: 'pos_embed', torchShape: [1, T, D], shape: [1, T, D], layout: 'plain', init: { kind: 'sincos2d' }, trainable: false },
    // The conv weight is xavier-initialised as a [D, C*p*p] linear, like the official code.
    { name: 'x_embedder.proj.weight', torchShape: [D, c.inChannels, p, p], shape: [patchDim, D], layout: 'conv', init: { kind: 'xavier', fanIn: patchDim, fanOut: D }, trainable: true },
    { name: 'x_embedder.proj.bias', torchShape: [D], shape: [D], layout: 'plain', init: zeros, trainable: true },
    ...linear('t_embedder.mlp.0', 256, D, { kind: 'normal', std: 0.02 }),
    ...linear('t_embedder.mlp.2', D, D, { kind: 'normal', std: 0.02 }),
    {
      name: 'y_embedder.embedding_table.weight',
      torchShape: [c.numClasses + (hasNullClass(c) ? 1 : 0), D],
      shape: [c.numClasses + (hasNullClass(c) ? 1 : 0), D],
      layout: 'plain',
      init: { kind: 'normal', std: 0.02 },
      trainable: true,
    },
  ];
  const H = mlpHidden(c);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    if (!usesAdaLN(c)) specs.push(...layerNormAffine(`${b}.norm1`, D));
    specs.push(...linear(`${b}.attn.qkv`, D, 3 * D));
    specs.push(...linear(`${b}.attn.proj`, D, D));
    if (c.variant === 'cross-attention') {
      specs.push(...layerNormAffine(`${b}.norm2`, D));
      specs.push(...linear(`${b}.cross_attn.q`, D, D));
      specs.push(...linear(`${b}.cross_attn.kv`, D, 2 * D));
      specs.push(...linear(`${b}.cross_attn.proj`, D, D));
      specs.push(...layerNormAffine(`${b}.norm3`, D));
    } else if (!usesAdaLN(c)) {
      specs.push(...layerNormAffine(`${b}.norm2`, D));
    }
    specs.push(...linear(`${b}.mlp.fc1`, D, H));
    specs.push(...linear(`${b}.mlp.fc2`, H, D));
    if (usesAdaLN(c)) {
      const k = adaLNChunks(c) * D;
      specs.push(...linear(`${b}.adaLN_modulation.1`, D, k, zeroOr(D, k)));
    }
  }
  const out = p * p * outChannels(c);
  if (usesAdaLN(c)) specs.push(...linear('final_layer.adaLN_modulation.1', D, 2 * D, zeroOr(D, 2 * D)));
  else specs.push(...layerNormAffine('final_layer.norm_final', D));
  specs.push(...linear('final_layer.linear', D, out, zeroOr(D, out)));
  return specs;
}

/** Exact parameter count (all state_dict tensors, as `sum(p.numel() for p in model.parameters())`). */
export function paramCount(c: DiTConfig): number {
  return paramSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}
