// Forward "Gflops" in the paper's convention (Table 4): multiply-adds (one MAC = one
// flop) of the linear, matmul and conv layers for one forward pass of one sample.
// Norms, activations, softmax and additions are not counted.
import { DiTConfig, mlpHidden, numTokens, outChannels } from './config';
import { adaLNChunks, paramCount, usesAdaLN } from './params';

export interface GflopsBreakdown {
  patchEmbed: number;
  timestepMLP: number;
  adaLN: number;
  attention: number;
  crossAttention: number;
  mlp: number;
  finalLayer: number;
}

/** Multiply-adds per part of the network for one sample (not scaled to giga). */
export function macBreakdown(c: DiTConfig): GflopsBreakdown {
  const D = c.hiddenSize;
  const T = numTokens(c);
  // In-context conditioning appends t and y as two extra tokens to every block.
  const Tb = c.variant === 'in-context' ? T + 2 : T;
  const perBlockAttn = Tb * D * 3 * D + 2 * Tb * Tb * D + Tb * D * D; // qkv, scores + values, proj
  // Cross-attention: queries from T tokens, keys/values from the 2-token [t, y] sequence.
  const perBlockCross = c.variant === 'cross-attention' ? T * D * D + 2 * D * 2 * D + 2 * T * 2 * D + T * D * D : 0;
  return {
    patchEmbed: T * c.inChannels * c.patchSize * c.patchSize * D,
    timestepMLP: 256 * D + D * D,
    adaLN: c.depth * D * adaLNChunks(c) * D,
    attention: c.depth * perBlockAttn,
    crossAttention: c.depth * perBlockCross,
    mlp: c.depth * 2 * Tb * D * mlpHidden(c),
    finalLayer: (usesAdaLN(c) ? D * 2 * D : 0) + T * D * c.patchSize * c.patchSize * outChannels(c),
  };
}

/** Forward Gflops (GMACs) for one sample. */
export function gflops(c: DiTConfig): number {
  return Object.values(macBreakdown(c)).reduce((a, b) => a + b, 0) / 1e9;
}

export interface ModelStats {
  model: string;
  variant: string;
  gflops: number;
  params: number;
  tokens: number;
  inputSize: number;
  inChannels: number;
  numClasses: number;
}

export function modelStats(c: DiTConfig): ModelStats {
  return {
    model: c.name,
    variant: c.variant,
    gflops: gflops(c),
    params: paramCount(c),
    tokens: numTokens(c),
    inputSize: c.inputSize,
    inChannels: c.inChannels,
    numClasses: c.numClasses,
  };
}

/** Paper Fig. 9: training compute = forward Gflops x batch size x steps x 3 (forward + backward). */
export function trainingGflops(c: DiTConfig, batchSize: number, steps: number): number {
  return gflops(c) * batchSize * steps * 3;
}

/** Paper Fig. 10: sampling compute per image = forward Gflops x sampling steps (x2 with guidance). */
export function samplingGflops(c: DiTConfig, steps: number, guided = false): number {
  return gflops(c) * steps * (guided ? 2 : 1);
}
