// HTML -> PNG with Debian's headless Chromium (and the DOM after rendering, for tests).
// Each run gets a fresh profile directory and no network services, so runs never share
// state; --virtual-time-budget lets the page's scripts (plotly) finish before the capture.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export class ChromiumMissingError extends Error {
  constructor(readonly chromium: string) {
    super(
      `headless Chromium not found at ${chromium}: PNG figures need it. Install it with ` +
        '`bash scripts/setup.sh` (or `sudo apt-get install -y chromium`), or skip PNGs with --no-png.',
    );
    this.name = 'ChromiumMissingError';
  }
}

export function chromiumAvailable(chromium = DEFAULT_CHROMIUM): boolean {
  try {
    fs.accessSync(chromium, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface ChromiumOptions {
  /** Browser binary (default /usr/bin/chromium). */
  chromium?: string;
  /** Window (and screenshot) size in CSS pixels. */
  width?: number;
  height?: number;
  /** Virtual time the page gets before the capture, ms. */
  virtualTimeBudgetMs?: number;
  /** Wall-clock limit for the browser, ms. */
  timeoutMs?: number;
  /** URL fragment appended to the page's file URL (figure pages draw a static plot for '#static'). */
  fragment?: string;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

// Chromium logs harmless D-Bus and GPU complaints in containers; keep them out of errors.
function usefulStderr(s: string): string {
  return s.split('\n').filter((l) => l.trim() && !/dbus|Fontconfig|gpu_init|viz_main|sandbox/i.test(l)).slice(-8).join('\n');
}

/** Runs chromium on one page with the kit's flags; the whole process group is killed on timeout. */
async function runChromium(htmlFile: string, action: string[], opts: ChromiumOptions): Promise<RunResult> {
  const chromium = opts.chromium ?? DEFAULT_CHROMIUM;
  if (!chromiumAvailable(chromium)) throw new ChromiumMissingError(chromium);
  if (!fs.existsSync(htmlFile)) throw new Error(`render: page not found: ${htmlFile}`);
  const width = opts.width ?? 1000;
  const height = opts.height ?? 700;
  const url = pathToFileURL(path.resolve(htmlFile)).href + (opts.fragment ? `#${opts.fragment}` : '');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, '--hide-scrollbars', `--window-size=${width},${height}`,
    `--virtual-time-budget=${opts.virtualTimeBudgetMs ?? 10000}`, ...action, url,
  ];
  const timeoutMs = opts.timeoutMs ?? 90000;
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(chromium, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`render: could not start ${chromium}: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) reject(new Error(`render: chromium did not finish ${htmlFile} within ${timeoutMs} ms`));
        else if (code !== 0) reject(new Error(`render: chromium failed on ${htmlFile} (exit ${code ?? signal})\n${usefulStderr(stderr)}`));
        else resolve({ stdout, stderr });
      });
    });
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** Renders an HTML file to a PNG of width x height (written atomically). */
export async function renderPng(htmlFile: string, pngFile: string, opts: ChromiumOptions = {}): Promise<void> {
  fs.mkdirSync(path.dirname(path.resolve(pngFile)), { recursive: true });
  const tmp = `${pngFile}.tmp-${process.pid}-${Date.now()}.png`;
  try {
    const { stderr } = await runChromium(htmlFile, [`--screenshot=${path.resolve(tmp)}`], opts);
    if (!fs.existsSync(tmp) || fs.statSync(tmp).size === 0) {
      throw new Error(`render: chromium wrote no screenshot for ${htmlFile}\n${usefulStderr(stderr)}`);
    }
    fs.renameSync(tmp, pngFile);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The page's DOM after its scripts ran (chromium --dump-dom). */
export async function dumpDom(htmlFile: string, opts: ChromiumOptions = {}): Promise<string> {
  return (await runChromium(htmlFile, ['--dump-dom'], opts)).stdout;
}
