// One load-generator thread: an undici Pool of keep-alive HTTP/1.1 connections to the target,
// driven either closed-loop (each connection sends its next request as soon as the previous
// answer arrived: max throughput) or open-loop (requests are due at a fixed rate; latency is
// measured from the time a request was due, so a stalled proxy cannot hide its queueing:
// no coordinated omission).
import { parentPort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadJob {
  origin: string;
  host: string;
  path: string;
  connections: number;
  mode: 'closed' | 'open';
  durationMs: number;
  /** Requests per second for this thread (open loop only). */
  rate: number;
  /** Expected response body length; anything else counts as an error. */
  expectBytes: number;
}

export interface LoadResult {
  completed: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  /** Open loop: one latency (ms, from the intended send time) per request; unanswered ones with their wait so far. */
  latencies?: Float64Array;
}

const DRAIN_MS = 2000;

async function runJob(job: LoadJob): Promise<LoadResult> {
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const headers = { host: job.host };
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;

  const once = async (): Promise<boolean> => {
    try {
      const res = await pool.request({ path: job.path, method: 'GET', headers });
      const body = await res.body.arrayBuffer();
      if (res.statusCode !== 200 || body.byteLength !== job.expectBytes) {
        firstError ??= `status ${res.statusCode}, ${body.byteLength} body bytes (want 200, ${job.expectBytes})`;
        return false;
      }
      return true;
    } catch (err) {
      firstError ??= (err as Error).message;
      return false;
    }
  };

  const start = performance.now();
  const deadline = start + job.durationMs;
  let latencies: Float64Array | undefined;
  if (job.mode === 'closed') {
    const loop = async (): Promise<void> => {
      while (performance.now() < deadline) {
        if (await once()) completed++;
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: job.connections }, loop));
  } else {
    const total = Math.floor((job.rate * job.durationMs) / 1000);
    const interval = 1000 / job.rate;
    latencies = new Float64Array(total);
    let issued = 0;
    const inflight = new Map<Promise<void>, number>(); // request -> its intended send time
    let over = false;
    const issue = (intended: number): void => {
      const p = once().then((ok) => {
        if (over) return; // already counted as unanswered
        if (ok) latencies![completed++] = performance.now() - intended;
        else errors++;
        inflight.delete(p);
      });
      inflight.set(p, intended);
    };
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        while (issued < total && start + issued * interval <= now) issue(start + interval * issued++);
        if (issued >= total) return resolve();
        setTimeout(tick, Math.max(0, start + issued * interval - performance.now()));
      };
      tick();
    });
    // Late answers still count (with their full latency), bounded so a target that fell far
    // behind cannot stretch the bench: what is unanswered then counts as failed.
    await Promise.race([Promise.all(inflight.keys()), new Promise((r) => setTimeout(r, DRAIN_MS))]);
    over = true;
    const unanswered = inflight.size;
    if (unanswered > 0) {
      // Unanswered requests stay in the latency samples with what they have waited so far (a
      // lower bound), so the percentiles do not improve by dropping the slowest requests.
      const now = performance.now();
      for (const intended of inflight.values()) latencies[completed++] = now - intended;
      errors += inflight.size;
      firstError ??= `${inflight.size} requests still unanswered ${DRAIN_MS} ms after the last one was due`;
    }
    latencies = latencies.subarray(0, completed);
    completed -= unanswered;
  }
  const elapsedMs = performance.now() - start;
  await pool.destroy();
  return { completed, errors, firstError, elapsedMs, latencies };
}

parentPort?.on('message', (job: LoadJob) => {
  runJob(job).then(
    (result) => parentPort!.postMessage(result),
    (err: Error) => parentPort!.postMessage({ completed: 0, errors: 1, firstError: err.message, elapsedMs: 0 } satisfies LoadResult),
  );
});
