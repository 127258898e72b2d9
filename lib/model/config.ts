// DiT configurations: the paper's 4 x 3 design space (Table 1 / Table 4) and a
// CPU-sized mini family with the same grid. Configs are plain JSON-serialisable data.
import { bool, Field, int, num, oneOf, SchemaError, text } from '../util/schema';

/** Section 3.2 block designs. */
export const VARIANTS = ['adaln-zero', 'adaln', 'cross-attention', 'in-context'] as const;
export type Variant = (typeof VARIANTS)[number];

export interface DiTConfig {
  /** 'DiT-XL/2', 'mini-S/4', ... (informational; the numbers below define the model). */
  name: string;
  variant: Variant;
  /** Latent side length (the paper: 32 for 256x256 images). */
  inputSize: number;
  inChannels: number;
  patchSize: number;
  hiddenSize: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  numClasses: number;
  /** Label dropout for classifier-free guidance; > 0 adds the null-class row. */
  classDropoutProb: number;
  /** Output noise and diagonal covariance (2C channels). */
  learnSigma: boolean;
}

export interface SizeSpec {
  depth: number;
  hiddenSize: number;
  numHeads: number;
}

/** Table 1 of the paper. */
export const PAPER_SIZES: Record<string, SizeSpec> = {
  S: { depth: 12, hiddenSize: 384, numHeads: 6 },
  B: { depth: 12, hiddenSize: 768, numHeads: 12 },
  L: { depth: 24, hiddenSize: 1024, numHeads: 16 },
  XL: { depth: 28, hiddenSize: 1152, numHeads: 16 },
};

/**
 * The mini family for an 8x8x4 latent (the kit's kl-f4 autoencoder on 32x32 images) on a
 * 2-core CPU. S < B < L < XL in depth, width and heads (head width 32), widths
 * 96/128/192/224, depths 4/6/8/9. Patch sizes 4, 2, 1 give 4, 16 and 64 tokens, the
 * paper's 1 : 4 : 16 ratio. Every width is at least 1.5x the p*p*C = 64 values of its
 * largest token (the paper's narrowest ratio is 384 / 256): a model narrower than its
 * tokens cannot even pass the identity an epsilon-model needs at large t (the previous
 * 16x16 family's p = 8 models never learned the data's scale). Forward Gflops span 170x.
 */
export const MINI_SIZES: Record<string, SizeSpec> = {
  S: { depth: 4, hiddenSize: 96, numHeads: 3 },
  B: { depth: 6, hiddenSize: 128, numHeads: 4 },
  L: { depth: 8, hiddenSize: 192, numHeads: 6 },
  XL: { depth: 9, hiddenSize: 224, numHeads: 7 },
};

export const SIZE_NAMES = ['S', 'B', 'L', 'XL'] as const;

const FAMILY_DEFAULTS = {
  DiT: { inputSize: 32, inChannels: 4, numClasses: 1000, sizes: PAPER_SIZES, patchSizes: [8, 4, 2] },
  mini: { inputSize: 8, inChannels: 4, numClasses: 10, sizes: MINI_SIZES, patchSizes: [4, 2, 1] },
} as const;

/** Patch sizes of a family, largest first (DiT: 8, 4, 2; mini: 4, 2, 1). */
export function familyPatchSizes(family: 'DiT' | 'mini'): readonly number[] {
  return FAMILY_DEFAULTS[family].patchSizes;
}

/** Every named config: DiT-S/8 ... DiT-XL/2 and mini-S/4 ... mini-XL/1. */
export function configNames(family?: 'DiT' | 'mini'): string[] {
  const fams = family ? [family] : (['DiT', 'mini'] as const);
  const out: string[] = [];
  for (const f of fams) for (const s of SIZE_NAMES) for (const p of FAMILY_DEFAULTS[f].patchSizes) out.push(`${f}-${s}/${p}`);
  return out;
}

/** Each key of a config and what it may hold (validateConfig; experiment modelOverrides). */
export const DIT_CONFIG_FIELDS = {
  name: text("informational name ('DiT-XL/2', 'mini-B/4', ...)"),
  variant: oneOf(VARIANTS, 'block design (Sec. 3.2)', 'variant'),
  inputSize: int('latent side length', { min: 1 }),
  inChannels: int('latent channels', { min: 1 }),
  patchSize: int('patch side p: (inputSize / p)^2 tokens', { min: 1 }),
  hiddenSize: int('transformer width', { min: 1 }),
  depth: int('number of DiT blocks', { min: 1 }),
  numHeads: int('attention heads', { min: 1 }),
  mlpRatio: num('MLP width / hiddenSize', { above: 0 }),
  numClasses: int('class labels (the null class not counted)', { min: 1 }),
  classDropoutProb: num('label dropout for classifier-free guidance; > 0 adds the null-class row', { min: 0, below: 1 }),
  learnSigma: bool('output noise and diagonal covariance (2C channels)'),
} satisfies { [K in keyof DiTConfig]-?: Field<DiTConfig[K]> };

const CONFIG_KEYS = Object.keys(DIT_CONFIG_FIELDS) as (keyof DiTConfig)[];

export interface ModelName {
  /** 'DiT', 'mini', ... */
  family: string;
  size: string;
  patch: number;
}

/** 'mini-XL/2' -> { family: 'mini', size: 'XL', patch: 2 }; null for names outside the S/B/L/XL grid. */
export function parseModelName(name: string): ModelName | null {
  const m = /^(.+)-(S|B|L|XL)\/(\d+)$/.exec(name);
  return m ? { family: m[1], size: m[2], patch: Number(m[3]) } : null;
}

/**
 * Builds a config from a name ('DiT-XL/2', 'mini-B/4') with optional overrides
 * (inputSize, inChannels, numClasses, variant, ...). Unknown keys are errors.
 */
export function ditConfig(name: string, overrides: Partial<DiTConfig> = {}): DiTConfig {
  const m = parseModelName(name);
  if (!m || (m.family !== 'DiT' && m.family !== 'mini')) {
    throw new Error(`unknown model '${name}': use one of ${configNames().join(', ')} (or pass a full config)`);
  }
  const fam = FAMILY_DEFAULTS[m.family];
  const size = fam.sizes[m.size];
  const patchSize = m.patch;
  if (!(fam.patchSizes as readonly number[]).includes(patchSize)) {
    throw new Error(`unknown patch size ${patchSize} in '${name}': the ${m.family} family has p = ${fam.patchSizes.join(', ')}`);
  }
  const base: DiTConfig = {
    name,
    variant: 'adaln-zero',
    inputSize: fam.inputSize,
    inChannels: fam.inChannels,
    patchSize,
    hiddenSize: size.hiddenSize,
    depth: size.depth,
    numHeads: size.numHeads,
    mlpRatio: 4,
    numClasses: fam.numClasses,
    classDropoutProb: 0.1,
    learnSigma: true,
  };
  return validateConfig({ ...base, ...checkKeys(overrides) });
}

function checkKeys(o: object): object {
  for (const k of Object.keys(o)) {
    if (!(CONFIG_KEYS as string[]).includes(k)) {
      throw new Error(`bad config key '${k}': valid keys are ${CONFIG_KEYS.join(', ')}`);
    }
  }
  return o;
}

/** Checks a full config (e.g. one read from JSON) and returns it; throws naming the bad field. */
export function validateConfig(c: DiTConfig): DiTConfig {
  checkKeys(c);
  for (const k of CONFIG_KEYS) if (c[k] === undefined) throw new Error(`config is missing '${k}'`);
  if (!(VARIANTS as readonly string[]).includes(c.variant)) {
    throw new Error(`bad variant '${c.variant}': use one of ${VARIANTS.join(', ')}`);
  }
  for (const k of CONFIG_KEYS) {
    try {
      DIT_CONFIG_FIELDS[k].parse(c[k], k);
    } catch (err) {
      throw err instanceof SchemaError ? new Error(`config '${k}' ${err.problem}`) : err;
    }
  }
  if (c.inputSize % c.patchSize !== 0) {
    throw new Error(`inputSize ${c.inputSize} is not divisible by patchSize ${c.patchSize}`);
  }
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new Error(`hiddenSize ${c.hiddenSize} is not divisible by numHeads ${c.numHeads}`);
  }
  // The 2-D sin-cos embedding splits the width in two halves of sin and cos.
  if (c.hiddenSize % 4 !== 0) throw new Error(`hiddenSize ${c.hiddenSize} must be a multiple of 4`);
  return c;
}

/** Number of tokens T = (I / p)^2. */
export function numTokens(c: DiTConfig): number {
  return (c.inputSize / c.patchSize) ** 2;
}

export function outChannels(c: DiTConfig): number {
  return c.learnSigma ? 2 * c.inChannels : c.inChannels;
}

export function mlpHidden(c: DiTConfig): number {
  return Math.floor(c.hiddenSize * c.mlpRatio);
}

/** The label table has a null row (index numClasses) when labels can be dropped. */
export function hasNullClass(c: DiTConfig): boolean {
  return c.classDropoutProb > 0;
}
