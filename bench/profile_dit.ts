// Per-kernel profile of one reference-config training step on the chosen backend:
// node dist/bench/profile_dit.js [backend]. Used to decide which kernels to make native.
import { initBackend } from '../lib/backend';
import { timeDiT } from './dit_step';

async function main(): Promise<void> {
  const info = await initBackend({ name: process.argv[2] });
  const r = await timeDiT({ reps: 3, warmup: 1, profile: true });
  console.log(`${info.name}: train step ${r.train_step_s.toFixed(3)} s, forward ${r.forward_s.toFixed(3)} s`);
  const total = r.kernels!.reduce((s, k) => s + k.ms, 0);
  console.log(`kernel time in the profiled step: ${total.toFixed(1)} ms`);
  for (const k of r.kernels!.slice(0, 25)) console.log(`${k.name.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(5)} calls`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
