// Sends n requests to one URL with bounded concurrency over keep-alive connections and
// tallies the answers by the `version` in each JSON reply. Plain node http on purpose:
// in the mesh the sidecar captures this traffic transparently.
import http from 'node:http';

export interface FanoutRequest {
  url: string;
  n: number;
  concurrency: number;
  timeoutMs?: number;
}

export interface FanoutResult {
  total: number;
  ok: number;
  errors: number;
  byVersion: Record<string, number>;
  byStatus: Record<string, number>;
  errorSamples: string[];
  durationMs: number;
}

const MAX_BODY = 1 << 20;
const MAX_ERROR_SAMPLES = 5;

interface Answer { status: number; version?: string; error?: string }

function once(agent: http.Agent, url: URL, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(url, { agent, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let version: string | undefined;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { version?: unknown };
          if (typeof body.version === 'string') version = body.version;
        } catch { /* not JSON: counted under "unknown" */ }
        resolve({ status, version });
      });
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, error: e.code ? `${e.code}: ${e.message}` : e.message }));
    req.end();
  });
}

export async function fanout(r: FanoutRequest): Promise<FanoutResult> {
  const url = new URL(r.url);
  const started = Date.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: r.concurrency });
  const result: FanoutResult = { total: 0, ok: 0, errors: 0, byVersion: {}, byStatus: {}, errorSamples: [], durationMs: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < r.n) {
      next++;
      const a = await once(agent, url, r.timeoutMs ?? 10_000);
      result.total++;
      const statusKey = a.error !== undefined ? 'error' : String(a.status);
      result.byStatus[statusKey] = (result.byStatus[statusKey] ?? 0) + 1;
      if (a.error === undefined && a.status >= 200 && a.status < 300) {
        result.ok++;
        const v = a.version ?? 'unknown';
        result.byVersion[v] = (result.byVersion[v] ?? 0) + 1;
      } else {
        result.errors++;
        const sample = a.error ?? `HTTP ${a.status}`;
        if (result.errorSamples.length < MAX_ERROR_SAMPLES && !result.errorSamples.includes(sample)) result.errorSamples.push(sample);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(r.concurrency, r.n) }, worker));
  } finally {
    agent.destroy();
  }
  result.durationMs = Date.now() - started;
  return result;
}
