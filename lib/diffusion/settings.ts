// The diffusion a model was trained with: the create_diffusion arguments that shape the
// process it learned to reverse. Sampling with other ones is not an error anywhere
// downstream, only silently wrong samples, so they travel with the checkpoint and a
// request may fill in what a file does not say, never contradict what it does.
import { NOISE_SCHEDULES, NoiseSchedule } from './schedule';

export interface DiffusionSettings {
  /** T of the training process (before any respacing). */
  diffusionSteps: number;
  noiseSchedule: NoiseSchedule;
  /** Learned diagonal covariance (2C output channels); a property of the model's final layer. */
  learnSigma: boolean;
  /** The model predicts x_0 instead of eps. */
  predictXstart: boolean;
}

/** DiT's published diffusion (create_diffusion defaults): 1000 linear steps, learned sigma, eps prediction. */
export const DIT_DIFFUSION: Readonly<DiffusionSettings> = Object.freeze({
  diffusionSteps: 1000,
  noiseSchedule: 'linear',
  learnSigma: true,
  predictXstart: false,
});

const KEYS = Object.keys(DIT_DIFFUSION) as Array<keyof DiffusionSettings>;

const LABELS: Record<keyof DiffusionSettings, string> = {
  diffusionSteps: 'diffusion steps',
  noiseSchedule: 'noise schedule',
  learnSigma: 'learned sigma',
  predictXstart: 'prediction',
};

function show<K extends keyof DiffusionSettings>(k: K, v: DiffusionSettings[K]): string {
  if (k === 'predictXstart') return v ? 'x_0' : 'epsilon';
  return typeof v === 'string' ? `'${v}'` : String(v);
}

/** Checks each value that is present (complete: and that none is missing); `where` names the source. */
export function checkDiffusionSettings(s: Partial<Record<keyof DiffusionSettings, unknown>>, where: string, complete = false): void {
  const bad = (k: keyof DiffusionSettings, want: string) => {
    throw new Error(`${where}: ${LABELS[k]} must be ${want}, got ${JSON.stringify(s[k])}`);
  };
  if (complete) for (const k of KEYS) if (s[k] === undefined) throw new Error(`${where} does not record its ${LABELS[k]}`);
  const { diffusionSteps: T, noiseSchedule, learnSigma, predictXstart } = s;
  if (T !== undefined && !(Number.isInteger(T) && (T as number) > 0)) bad('diffusionSteps', 'a positive integer');
  if (noiseSchedule !== undefined && !(NOISE_SCHEDULES as readonly unknown[]).includes(noiseSchedule)) bad('noiseSchedule', NOISE_SCHEDULES.join(' or '));
  if (learnSigma !== undefined && typeof learnSigma !== 'boolean') bad('learnSigma', 'true or false');
  if (predictXstart !== undefined && typeof predictXstart !== 'boolean') bad('predictXstart', 'true or false');
}

/**
 * The settings to sample with. `recorded`: what the file says (a kit checkpoint: all of
 * them; bare weights: only learnSigma, which their output channels fix). Every requested
 * value must equal a recorded one; what nothing records is the request's or DiT's published value.
 */
export function resolveDiffusion(
  recorded: Partial<DiffusionSettings>,
  requested: Partial<DiffusionSettings>,
  where: string,
): DiffusionSettings {
  checkDiffusionSettings(recorded, where);
  checkDiffusionSettings(requested, 'requested diffusion');
  const out = { ...DIT_DIFFUSION };
  for (const k of KEYS) {
    const [have, want] = [recorded[k], requested[k]];
    if (have !== undefined && want !== undefined && have !== want) {
      throw new Error(`${where} was trained with ${LABELS[k]} ${show(k, have)}, but ${show(k, want)} was requested`);
    }
    const v = have ?? want;
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** The diffusion a kit training run used (trainer: createDiffusion from its options; eps prediction only). */
export function trainingDiffusion(o: { diffusionSteps: number; noiseSchedule: NoiseSchedule; model: { learnSigma: boolean } }): DiffusionSettings {
  return { diffusionSteps: o.diffusionSteps, noiseSchedule: o.noiseSchedule, learnSigma: o.model.learnSigma, predictXstart: false };
}

/** 'linear, 1000 steps, learned sigma, epsilon' for logs. */
export function describeDiffusion(s: DiffusionSettings): string {
  return `${s.noiseSchedule}, ${s.diffusionSteps} steps, ${s.learnSigma ? 'learned' : 'fixed'} sigma, ${show('predictXstart', s.predictXstart)} prediction`;
}
