// Where a bench config's training step spends its time, on the chosen backend:
//   node dist/bench/profile_dit.js [backend]               per-kernel profile of one reference step
//   node dist/bench/profile_dit.js --loop N [--config C] [--forward]
//       30 warm-up steps, then N: CPU and wall ms per training step (or forward pass), for perf
//       record or to time two checkouts alternately
// C is a bench config label: reference, mini-XL/2, '256 tokens' (or 256).
import { initBackend } from '../lib/backend';
import { benchConfig, openDiTSession, REFERENCE, timeDiT } from './dit_step';
import { timeCalls } from './measure';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const li = args.indexOf('--loop');
  if (li < 0) {
    const info = await initBackend({ name: args[0] });
    const r = await timeDiT({ reps: 3, warmup: 1, profile: true });
    console.log(`${info.name}: train step ${r.train_step_s.toFixed(3)} s, forward ${r.forward_s.toFixed(3)} s`);
    const total = r.kernels!.reduce((s, k) => s + k.ms, 0);
    console.log(`kernel time in the profiled step: ${total.toFixed(1)} ms`);
    for (const k of r.kernels!.slice(0, 25)) console.log(`${k.name.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(5)} calls`);
    return;
  }
  const steps = Number(args[li + 1]);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--loop needs a positive step count, got '${args[li + 1]}'`);
  const ci = args.indexOf('--config');
  const config = benchConfig(ci >= 0 ? args[ci + 1] : REFERENCE.label, '--config');
  const info = await initBackend({ quiet: true });
  const s = openDiTSession(config);
  try {
    const forward = args.includes('--forward');
    const f = forward ? s.forward : s.trainStep;
    timeCalls(f, 30);
    const t = timeCalls(f, steps);
    console.log(`${config.label} on ${info.name}: ${(t.cpu_s * 1e3).toFixed(1)} ms CPU, ${(t.wall_s * 1e3).toFixed(1)} ms wall ` +
      `per ${forward ? 'forward pass' : 'training step'} (${steps} of them)`);
  } finally {
    s.close();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
