// The load generator: N worker threads (lib/load-worker.ts), each with its share of the
// connections and of the request rate. The same generator measures every row, direct included.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { LoadJob, LoadResult } from './load-worker.js';
import { percentile } from './stats.js';

export interface Target {
  origin: string;
  host: string;
}

export interface ThroughputFigures {
  rps: number;
  completed: number;
  errors: number;
  firstError?: string;
}

export interface LatencyFigures extends ThroughputFigures {
  p50: number;
  p90: number;
  p99: number;
}

export const RESPONSE_BYTES = 1024;

export class LoadGenerator {
  private readonly workers: Worker[];

  constructor(readonly threads: number) {
    const file = fileURLToPath(new URL('./load-worker.js', import.meta.url));
    this.workers = Array.from({ length: threads }, () => new Worker(file));
  }

  describe(): string {
    return `undici Pool (HTTP/1.1 keep-alive, pipelining 1) in ${this.threads} worker thread${this.threads > 1 ? 's' : ''}`;
  }

  private async run(target: Target, mode: LoadJob['mode'], connections: number, durationMs: number, rate: number): Promise<LoadResult[]> {
    const n = this.workers.length;
    return Promise.all(this.workers.map((w, i) => new Promise<LoadResult>((resolve, reject) => {
      const job: LoadJob = {
        origin: target.origin, host: target.host, path: '/', mode, durationMs, expectBytes: RESPONSE_BYTES,
        // Connections and rate are split evenly; the first threads take any remainder.
        connections: Math.floor(connections / n) + (i < connections % n ? 1 : 0),
        rate: rate / n,
      };
      const onError = (err: Error): void => { w.off('message', onMessage); reject(err); };
      const onMessage = (r: LoadResult): void => { w.off('error', onError); resolve(r); };
      w.once('message', onMessage);
      w.once('error', onError);
      w.postMessage(job);
    })));
  }

  /** Closed loop: as many requests as the connections can carry. */
  async maxThroughput(target: Target, connections: number, durationMs: number): Promise<ThroughputFigures> {
    const results = await this.run(target, 'closed', connections, durationMs, 0);
    const completed = sum(results.map((r) => r.completed));
    const elapsed = Math.max(...results.map((r) => r.elapsedMs));
    return { rps: (completed * 1000) / elapsed, completed, errors: sum(results.map((r) => r.errors)), firstError: results.find((r) => r.firstError)?.firstError };
  }

  /** Open loop at a fixed total rate; latency from each request's intended send time. */
  async fixedRate(target: Target, connections: number, rate: number, durationMs: number): Promise<LatencyFigures> {
    const results = await this.run(target, 'open', connections, durationMs, rate);
    const all = new Float64Array(sum(results.map((r) => r.latencies?.length ?? 0)));
    let at = 0;
    for (const r of results) if (r.latencies) { all.set(r.latencies, at); at += r.latencies.length; }
    all.sort();
    const completed = sum(results.map((r) => r.completed));
    const elapsed = Math.max(...results.map((r) => r.elapsedMs));
    return {
      rps: (completed * 1000) / elapsed, completed, errors: sum(results.map((r) => r.errors)),
      firstError: results.find((r) => r.firstError)?.firstError,
      p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
