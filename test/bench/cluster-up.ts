// The cluster under benchmark: a real `trellis up --no-sample` (cluster, mesh installed from
// install/, injector webhook live) in its own data dir, name prefix, API port and CIDRs,
// started as a child process and stopped with SIGINT by its PID; on any failure the prefix
// is purged with `trellis down --purge`.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { leftovers } from '../support/host.js';

export interface BenchClusterOptions {
  home: string;
  prefix: string;
  podCIDR: string;
  serviceCIDR: string;
  apiPort: number;
  readyTimeoutMs: number;
}

export interface BenchCluster {
  pid: number;
  dataDir: string;
  kubeconfigPath: string;
  /** ms from spawn to READY (cluster started, mesh installed, webhooks published). */
  startupMs: number;
  output(): string;
  /** SIGINT by PID, waits for exit (SIGKILL after the timeout); returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** `trellis down --purge --name <prefix>`, then the objects still carrying the prefix. */
  purgeAndCheck(): string[];
}

export async function startBenchCluster(o: BenchClusterOptions): Promise<BenchCluster> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${o.prefix}-bench-`));
  const cli = path.join(o.home, 'dist/cli/trellis.js');
  let out = '';
  const started = performance.now();
  const proc: ChildProcess = spawn(process.execPath, [cli, 'up', '--no-sample', '--data-dir', dataDir, '--name', o.prefix,
    '--port', String(o.apiPort), '--pod-cidr', o.podCIDR, '--service-cidr', o.serviceCIDR], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep only the tail: 400 pods' worth of logs is not needed, the last lines explain a failure.
  const append = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000); };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);

  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const stop = async (timeoutMs = 90_000): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    if (proc.pid !== undefined) process.kill(proc.pid, 'SIGINT');
    const t = setTimeout(() => { if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL'); }, timeoutMs);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  const purgeAndCheck = (): string[] => {
    try { execFileSync(process.execPath, [cli, 'down', '--purge', '--name', o.prefix], { stdio: 'ignore' }); } catch { /* leftovers() reports */ }
    fs.rmSync(dataDir, { recursive: true, force: true });
    return leftovers(o.prefix, [o.podCIDR, o.serviceCIDR]);
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`trellis up not READY after ${o.readyTimeoutMs / 1000} s:\n${out.slice(-4000)}`)), o.readyTimeoutMs);
      const check = (): void => { if (out.includes('READY')) { clearTimeout(timer); resolve(); } };
      proc.stdout?.on('data', check);
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`trellis up exited with ${String(code)} before READY:\n${out.slice(-4000)}`)); });
    });
  } catch (e) {
    await stop(30_000);
    purgeAndCheck();
    throw e;
  }
  if (proc.pid === undefined) throw new Error('trellis up has no pid');
  return {
    pid: proc.pid, dataDir, kubeconfigPath: path.join(dataDir, 'kubeconfig'), startupMs: performance.now() - started,
    output: () => out, stop, purgeAndCheck,
  };
}
