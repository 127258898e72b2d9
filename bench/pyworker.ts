// A Python reference of the bench kept running between repeats, so kit and reference
// repeats can alternate in one window: one JSON request per line on its stdin, one JSON
// answer per line on its stdout (bench/torch_dit.py and bench/numpy_metrics.py --serve).
// While the kit computes, the worker waits on its stdin (no CPU); while the worker
// computes, the bench awaits it.
import { ChildProcess, spawn } from 'child_process';
import * as readline from 'readline';
import { referenceEnv } from './kernels';

export class PyWorker {
  private readonly waiting: Array<{ resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  private stderr = '';
  private exited: string | null = null;

  private constructor(private readonly proc: ChildProcess, private readonly what: string) {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        w.reject(new Error(`${this.what}: not JSON: ${line.slice(0, 200)}`));
        return;
      }
      if (typeof msg.error === 'string') w.reject(new Error(`${this.what}: ${msg.error}`));
      else w.resolve(msg);
    });
    proc.stderr!.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString()).slice(-4000); });
    proc.on('exit', (code, signal) => {
      this.exited = `${this.what} exited (${signal ?? code}): ${this.stderr.trim().split('\n').pop() ?? ''}`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.exited));
    });
    proc.on('error', (err) => {
      this.exited = `${this.what} did not start: ${err.message}`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.exited));
    });
  }

  /** Starts `py script args` with one BLAS thread; resolves with its first line ({"ready": ...}). */
  static async start(py: string, script: string, args: string[]): Promise<{ worker: PyWorker; ready: Record<string, unknown> }> {
    const proc = spawn(py, [script, ...args], { env: referenceEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const worker = new PyWorker(proc, script.split('/').pop()!);
    const ready = await worker.next();
    return { worker, ready };
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = this.next();
    if (!this.exited) this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return answer;
  }

  close(): void {
    if (!this.exited) this.proc.stdin!.end(`${JSON.stringify({ op: 'quit' })}\n`);
  }
}
