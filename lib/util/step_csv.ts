// Per-step CSV logs (loss.csv of DiT and autoencoder runs): first column the step.
import * as fs from 'fs';

/**
 * Starts `file` with `header` (a line ending in \n), keeping the rows up to `step`: a run
 * resumed from its step-`step` checkpoint rewrites whatever came after it.
 */
export function truncateStepCsv(file: string, header: string, step: number): void {
  if (!fs.existsSync(file) || step === 0) {
    fs.writeFileSync(file, header);
    return;
  }
  const rows = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('step'));
  const kept = rows.filter((l) => Number(l.split(',')[0]) <= step);
  fs.writeFileSync(file, header + kept.map((l) => `${l}\n`).join(''));
}
