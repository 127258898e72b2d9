// One entry point for "a file of named tensors": sniffs the content (never the file
// extension) and dispatches to the torch, npz or safetensors reader.
import { HostArray } from './array';
import { isNpy, readNpz } from './npy';
import { looksLikeSafetensors, readSafetensors } from './safetensors';
import { ByteSource, fileSource } from './source';
import { TorchReadOptions, describeBarePickle, isLegacyTorch, readTorchCheckpoint } from './torch';
import { ZipReader, looksLikeZip } from './zip';

export type TensorFileFormat = 'torch' | 'safetensors' | 'npz';

export interface TensorFile {
  format: TensorFileFormat;
  tensors: Record<string, HostArray>;
  /** safetensors __metadata__, when present. */
  metadata?: Record<string, string>;
  /** torch: entries of the chosen dict that were not tensors. */
  skipped?: string[];
  /** torch: the nested dict read ('ema', 'model', ...), null for the top level. */
  chosen?: string | null;
  /** torch: a train.py checkpoint's argparse.Namespace "args", as plain fields. */
  args?: Record<string, unknown>;
}

export interface ReadTensorFileOptions {
  /** torch only: the nested state_dict to read, e.g. 'ema' (see TorchReadOptions). */
  key?: string;
  /** Check zip CRC-32s (default true). */
  verify?: boolean;
  /** torch and npz: largest zip member to inflate or read; see ZipReadOptions.maxBytes. */
  maxBytes?: number;
  /** torch and npz: most bytes the archive's deflated members may inflate to; see ZipReadOptions.maxInflated (default: its DIT_MAX_INFLATE ceiling). */
  maxInflated?: number;
}

/** Which format a source holds, or an error that says why none fits. */
export function sniffFormat(src: ByteSource): TensorFileFormat {
  const file = src.name;
  if (src.size === 0) throw new Error(`${file}: empty file; expected a torch, safetensors or npz tensor file`);
  const head = src.read(0, Math.min(src.size, 32));
  if (looksLikeZip(head)) {
    const names = new ZipReader(src).names();
    if (names.some((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n))) return 'torch';
    if (names.length > 0 && names.every((n) => n.endsWith('.npy') || n.endsWith('/'))) return 'npz';
    throw new Error(
      `${file}: a zip archive that is neither a torch checkpoint (no data.pkl) nor an npz (members: ${names.slice(0, 5).join(', ') || 'none'})`,
    );
  }
  if (isNpy(head)) throw new Error(`${file}: a single .npy array, not a file of named tensors; use readNpy`);
  if (isLegacyTorch(head)) return 'torch';
  if (looksLikeSafetensors(head, src.size)) return 'safetensors';
  // A JSON object after 8 bytes is a safetensors file with a bad length: let its reader say what is wrong.
  if (head.length > 8 && head[8] === 0x7b) return 'safetensors';
  const pickle = describeBarePickle(head);
  if (pickle) throw new Error(`${file}: ${pickle}`);
  if (src.size < 10) throw new Error(`${file}: truncated or unknown tensor file (${src.size} bytes)`);
  throw new Error(`${file}: unknown tensor file format (not a torch zip checkpoint, safetensors or npz)`);
}

/**
 * Reads every tensor of a torch (.pt/.pth), safetensors or npz file. `options` may be a
 * function of the format found, for a caller whose options depend on it (the file is
 * still opened and sniffed once).
 */
export function readTensorFile(
  path: string, options: ReadTensorFileOptions | ((format: TensorFileFormat) => ReadTensorFileOptions) = {},
): TensorFile {
  // Regular files only: a FIFO would block the open, a device would never end.
  const src = fileSource(path, 'tensor file');
  try {
    const format = sniffFormat(src);
    const opts = typeof options === 'function' ? options(format) : options;
    // The zip readers' limits, for torch and npz alike.
    const zip = { verify: opts.verify, maxBytes: opts.maxBytes, maxInflated: opts.maxInflated };
    if (format === 'torch') {
      const torchOpts: TorchReadOptions = { key: opts.key, ...zip };
      const ck = readTorchCheckpoint(src, torchOpts);
      return { format, tensors: ck.tensors, skipped: ck.skipped, chosen: ck.chosen, ...(ck.args ? { args: ck.args } : {}) };
    }
    if (opts.key !== undefined) throw new Error(`${path}: the key option applies to torch checkpoints, not ${format}`);
    if (format === 'npz') return { format, tensors: readNpz(src, zip) };
    const st = readSafetensors(src);
    return st.metadata ? { format, tensors: st.tensors, metadata: st.metadata } : { format, tensors: st.tensors };
  } finally {
    src.close();
  }
}
