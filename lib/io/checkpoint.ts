// One entry point for "a file of named tensors": sniffs the content (never the file
// extension) and dispatches to the torch, npz or safetensors reader.
import * as fs from 'fs';
import { HostArray } from './array';
import { isNpy, readNpz } from './npy';
import { looksLikeSafetensors, readSafetensors } from './safetensors';
import { ByteSource, fileSource } from './source';
import { TorchReadOptions, readTorchCheckpoint } from './torch';
import { ZipReader, looksLikeZip } from './zip';

export type TensorFileFormat = 'torch' | 'safetensors' | 'npz';

export interface TensorFile {
  format: TensorFileFormat;
  tensors: Record<string, HostArray>;
  /** safetensors __metadata__, when present. */
  metadata?: Record<string, string>;
  /** torch: entries of the chosen dict that were not tensors. */
  skipped?: string[];
}

export interface ReadTensorFileOptions {
  /** torch only: the nested state_dict to read, e.g. 'ema' (see TorchReadOptions). */
  key?: string;
  /** Check zip CRC-32s (default true). */
  verify?: boolean;
}

/** Which format a source holds, or an error that says why none fits. */
export function sniffFormat(src: ByteSource): TensorFileFormat {
  const file = src.name;
  if (src.size === 0) throw new Error(`${file}: empty file; expected a torch, safetensors or npz tensor file`);
  const head = src.read(0, Math.min(src.size, 16));
  if (looksLikeZip(head)) {
    const names = new ZipReader(src).names();
    if (names.some((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n))) return 'torch';
    if (names.length > 0 && names.every((n) => n.endsWith('.npy') || n.endsWith('/'))) return 'npz';
    throw new Error(
      `${file}: a zip archive that is neither a torch checkpoint (no data.pkl) nor an npz (members: ${names.slice(0, 5).join(', ') || 'none'})`,
    );
  }
  if (isNpy(head)) throw new Error(`${file}: a single .npy array, not a file of named tensors; use readNpy`);
  if (looksLikeSafetensors(head, src.size)) return 'safetensors';
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) {
    throw new Error(`${file}: a bare pickle (legacy pre-1.6 torch.save format?); re-save it with a current torch`);
  }
  if (src.size < 10) throw new Error(`${file}: truncated or unknown tensor file (${src.size} bytes)`);
  throw new Error(`${file}: unknown tensor file format (not a torch zip checkpoint, safetensors or npz)`);
}

/** Reads every tensor of a torch (.pt/.pth), safetensors or npz file. */
export function readTensorFile(path: string, opts: ReadTensorFileOptions = {}): TensorFile {
  if (!fs.existsSync(path)) throw new Error(`${path}: no such file`);
  if (fs.statSync(path).isDirectory()) throw new Error(`${path}: is a directory, not a tensor file`);
  const src = fileSource(path);
  try {
    const format = sniffFormat(src);
    if (format === 'torch') {
      const torchOpts: TorchReadOptions = { key: opts.key, verify: opts.verify };
      const ck = readTorchCheckpoint(src, torchOpts);
      return { format, tensors: ck.tensors, skipped: ck.skipped };
    }
    if (opts.key !== undefined) throw new Error(`${path}: the key option applies to torch checkpoints, not ${format}`);
    if (format === 'npz') return { format, tensors: readNpz(src) };
    const st = readSafetensors(src);
    return st.metadata ? { format, tensors: st.tensors, metadata: st.metadata } : { format, tensors: st.tensors };
  } finally {
    src.close();
  }
}
