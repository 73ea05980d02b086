// One run of a container: a detached process (its own process group, so the whole tree can
// be signalled at once) whose stdout and stderr go to the run's log file.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

export interface ExitInfo {
  exitCode: number;
  signal?: string;
  startedAt: string;
  finishedAt: string;
  /** Set by the owner when it knows better than the exit code (OOMKilled). */
  reason?: string;
}

export class ContainerProcess {
  pid = -1;
  readonly startedAt: string;
  readonly startedMs: number;
  exit?: ExitInfo;
  readonly exited: Promise<ExitInfo>;

  constructor(file: string, args: string[], env: Record<string, string>, logFile: string, onExit: (e: ExitInfo) => void) {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const fd = fs.openSync(logFile, 'a');
    this.startedMs = Date.now();
    this.startedAt = rfc3339(this.startedMs);
    let resolveExit!: (e: ExitInfo) => void;
    this.exited = new Promise((r) => { resolveExit = r; });
    const finish = (exitCode: number, signal?: string): void => {
      if (this.exit) return;
      this.exit = { exitCode, signal, startedAt: this.startedAt, finishedAt: rfc3339(Date.now()) };
      resolveExit(this.exit);
      onExit(this.exit);
    };
    try {
      const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd: '/' });
      child.on('error', (e) => {
        fs.appendFileSync(logFile, `trellis kubelet: cannot start ${file}: ${e.message}\n`);
        finish(128);
      });
      child.on('exit', (code, signal) => {
        // Shell convention: killed by signal N exits 128+N, as container runtimes report it.
        const signum = signal ? (os.constants.signals[signal] ?? 0) : 0;
        finish(code ?? 128 + signum, signal ?? undefined);
      });
      this.pid = child.pid ?? -1;
    } finally {
      fs.closeSync(fd);
    }
  }

  get running(): boolean { return !this.exit; }

  /** Signals the container's whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid <= 0) return;
    try { process.kill(-this.pid, sig); } catch { /* group already gone */ }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the main process has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.exit) { this.signal('SIGKILL'); return this.exit; }
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), Math.max(0, graceMs));
    try { return await this.exited; } finally {
      clearTimeout(timer);
      // Children that outlived the main process are part of the container too.
      this.signal('SIGKILL');
    }
  }
}

export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
