// Progress for long work: a redrawn bar on a terminal, plain lines otherwise (CI, logs).
export interface Progress {
  /** Report `done` of `total` units; `extra` is appended (e.g. "loss 0.123"). */
  update(done: number, extra?: string): void;
  done(extra?: string): void;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * label: what is counted; unit: 'steps', 'images', ...; start: units already done
 * (a resumed run), excluded from the rate. Plain lines at most every `everySec` seconds.
 */
export function progress(label: string, total: number, opts: { unit?: string; start?: number; everySec?: number; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY) && !process.env.CI;
  const unit = opts.unit ?? 'steps';
  const start = opts.start ?? 0;
  const t0 = Date.now();
  const every = (opts.everySec ?? (tty ? 0.2 : 10)) * 1000;
  let last = 0;
  const line = (done: number, extra?: string): string => {
    const sec = (Date.now() - t0) / 1000;
    const rate = (done - start) / Math.max(sec, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const pct = total ? Math.floor((100 * done) / total) : 100;
    const bar = tty ? `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ` : '';
    return `${label} ${bar}${done}/${total} ${unit} (${pct}%) ${rate.toFixed(2)} ${unit}/s, elapsed ${fmtTime(sec)}, ETA ${fmtTime(eta)}${extra ? `, ${extra}` : ''}`;
  };
  return {
    update(done, extra) {
      const now = Date.now();
      // The last unit is reported by done(), not twice.
      if (now - last < every || done >= total) return;
      last = now;
      stream.write(tty ? `\r${line(done, extra)}\x1b[K` : `${line(done, extra)}\n`);
    },
    done(extra) {
      stream.write(tty ? `\r${line(total, extra)}\x1b[K\n` : `${line(total, extra)}\n`);
    },
  };
}
