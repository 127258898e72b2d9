// Trained autoencoder on disk: a folder with
//   vae.safetensors  the weights under SD's AutoencoderKL state_dict names, in PyTorch
//                    layout (conv [out, in, kh, kw]); metadata: format, config, scale
//   vae.json         manifest: config, seed, dataset hash, steps, held-out PSNR, latent
//                    scale, sha256 of vae.safetensors, timing and provenance
// The weights file holds no timestamps, so a run repeated from the same seed on the
// same backend writes the same bytes (and the same sha256, the autoencoder's id).
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, ownEntry, toFloat32 } from '../io/array';
import { encodeSafetensors, readSafetensors } from '../io/safetensors';
import { sha256Bytes } from '../util/hash';
import { readJsonFile, writeManifestFolder } from '../util/paths';
import { KLConfig, KLModel, createKL, disposeKL, klParamSpecs, validateKLConfig } from './kl';

export const VAE_WEIGHTS = 'vae.safetensors';
export const VAE_MANIFEST = 'vae.json';
export const VAE_FORMAT = 'dit-kit/autoencoder-kl/v1';

export interface VAEManifest {
  format: typeof VAE_FORMAT;
  config: KLConfig;
  /** Multiplies encoder latents (SD: 0.18215): 1 / std of the training latents. */
  scale: number;
  /** Mean and std of the unscaled training latents it was computed from, and how many images. */
  latentStats: { mean: number; std: number; images: number };
  weights: { file: string; sha256: string; bytes: number; params: number };
  dataset: { path: string; sha256: string; images: number; trainImages: number; heldOut: number };
  training: Record<string, unknown> & { seed: number; steps: number; batchSize: number; seconds: number; stepsPerSec: number };
  /** Reconstruction PSNR (dB, uint8 images) on the held-out images, posterior mode. */
  psnr: { heldOut: number; images: number };
  backend: string;
  /** Backend kernels and CPU the weights were trained on (util/provenance computeEnvironment): bit-reproducible only on the same. */
  environment?: { backend: string; details: string[]; cpu: string };
  gitCommit: string;
  created: string;
}

/** Kit layout [kh, kw, in, out] <-> PyTorch [out, in, kh, kw]. */
const TO_TORCH = [3, 2, 0, 1];
const FROM_TORCH = [2, 3, 1, 0];

/** Safetensors bytes of a model: SD names, PyTorch layout, config and scale in the metadata. */
export function encodeKLWeights(m: KLModel, scale: number): Buffer {
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`autoencoder scale must be a positive number, got ${scale}`);
  const tensors: Record<string, HostArray> = {};
  for (const s of klParamSpecs(m.config)) {
    const v = m.params[s.name];
    const t = s.role === 'conv' ? tf.transpose(v, TO_TORCH) : v;
    tensors[s.name] = { dtype: 'float32', shape: s.torchShape, data: Float32Array.from(t.dataSync() as Float32Array) };
    if (t !== v) t.dispose();
  }
  return encodeSafetensors(tensors, { format: VAE_FORMAT, config: JSON.stringify(m.config), scale: String(scale) });
}

export interface LoadedKL {
  model: KLModel;
  scale: number;
  /** sha256 of the weights file. */
  sha256: string;
  file: string;
}

/**
 * A KL model from tensors under SD's state_dict names in PyTorch layout, checking that
 * every name is present with its shape and nothing else is there; `what` names the
 * source in errors.
 */
export function klFromTorchTensors(config: KLConfig, tensors: Record<string, HostArray>, what: string): KLModel {
  const specs = klParamSpecs(config);
  const problems: string[] = [];
  for (const s of specs) {
    const a = ownEntry(tensors, s.name);
    if (!a) problems.push(`missing ${s.name}`);
    else if (a.shape.join(',') !== s.torchShape.join(',')) problems.push(`${s.name}: [${a.shape}] but the config needs [${s.torchShape}]`);
  }
  const known = new Set(specs.map((s) => s.name));
  for (const k of Object.keys(tensors)) if (!known.has(k)) problems.push(`unexpected tensor ${k}`);
  if (problems.length) throw new Error(`${what} do not match their config: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? ` (+${problems.length - 6} more)` : ''}`);
  const model = createKL(config, 0);
  try {
    for (const s of specs) {
      const a = toFloat32(tensors[s.name]);
      model.params[s.name].assign(tf.tidy(() => {
        const t = tf.tensor(a, s.torchShape, 'float32');
        return s.role === 'conv' ? tf.transpose(t, FROM_TORCH) : t;
      }));
    }
  } catch (err) {
    disposeKL(model);
    throw err;
  }
  return model;
}

/** Reads vae.safetensors (or any file written by encodeKLWeights), checking every name and shape. */
export function readKLWeights(file: string): LoadedKL {
  if (!fs.existsSync(file)) throw new Error(`autoencoder weights not found: ${file}`);
  const bytes = fs.readFileSync(file);
  let st;
  try {
    st = readSafetensors(bytes);
  } catch (err) {
    throw new Error(`corrupt autoencoder weights ${file}: ${(err as Error).message}`);
  }
  const md = st.metadata ?? {};
  if (md.format !== VAE_FORMAT) throw new Error(`${file} is not a dit-kit KL autoencoder (format '${md.format ?? 'none'}', expected '${VAE_FORMAT}')`);
  let config: KLConfig;
  let scale: number;
  try {
    config = validateKLConfig(JSON.parse(md.config));
    scale = Number(md.scale);
  } catch (err) {
    throw new Error(`corrupt autoencoder weights ${file}: bad config metadata (${(err as Error).message})`);
  }
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`corrupt autoencoder weights ${file}: scale '${md.scale}' is not a positive number`);
  const model = klFromTorchTensors(config, st.tensors, `autoencoder weights ${file}`);
  return { model, scale, sha256: sha256Bytes(bytes), file };
}

export function readVAEManifest(dir: string): VAEManifest {
  const file = path.join(dir, VAE_MANIFEST);
  if (!fs.existsSync(file)) throw new Error(`${dir} holds no trained autoencoder (${VAE_MANIFEST} missing); train one with: dit vae train --out ${dir}`);
  const m = readJsonFile(file) as VAEManifest;
  if (m?.format !== VAE_FORMAT) throw new Error(`${file}: not a ${VAE_FORMAT} manifest (format ${JSON.stringify(m?.format)})`);
  return m;
}

/** Writes weights, then the manifest (which names the weights' sha256), both atomically. */
export function writeVAEFolder(dir: string, weights: Buffer, manifest: Omit<VAEManifest, 'format' | 'weights'> & { weights: Omit<VAEManifest['weights'], 'sha256' | 'bytes' | 'file'> }): VAEManifest {
  return writeManifestFolder(dir, { data: VAE_WEIGHTS, manifest: VAE_MANIFEST }, weights, (w): VAEManifest => ({
    format: VAE_FORMAT, ...manifest, weights: { ...w, ...manifest.weights },
  }));
}
