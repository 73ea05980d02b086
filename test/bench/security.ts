// bench:security — certificate issuance against the real mesh CA (pilot/ca) with a real API
// server doing the TokenReview for every request, as a sidecar's first certificate does.
// Keys and CSRs are made before the clock starts (that cost is the proxy's, reported apart).
// Then the proxy's throughput and latency with mTLS vs plaintext: the two-sidecar rows of
// bench:proxy (same rows, same load generator, same measuring code: lib/proxy-rows.ts).
// Everything is on 127.0.0.1. Results: test/bench/results/security.md.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LoadGenerator } from './lib/load.js';
import { forkNode, stopAllChildren } from './lib/processes.js';
import { CONNECTIONS, f, LATENCY_MS, RATE, ratio, RUNS, runRows, THREADS, THROUGHPUT_MS, type RowResult, type RowsOutcome } from './lib/proxy-rows.js';
import { TRELLIS_X2, TRELLIS_X2_MTLS } from './lib/trellis.js';
import os from 'node:os';
import path from 'node:path';
import { CAClient, createCsr, generateWorkloadKey } from '../../proxy/security/index.js';
import { spiffeId } from '../../api/security/index.js';
import { CA_NAMESPACE, startCA, startCluster } from '../security/helpers.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1) || 1;
const IDENTITIES = 16;
const SEQUENTIAL = Math.max(10, Math.round(100 * SCALE));
const CONCURRENT = Math.max(20, Math.round(400 * SCALE));
const CONCURRENCY = [4, 16];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Row { name: string; requests: number; seconds: number; p50: number; p99: number; max: number }

function row(name: string, lat: number[], seconds: number): Row {
  const s = [...lat].sort((a, b) => a - b);
  return { name, requests: s.length, seconds, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1] };
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0];
  const cluster = await startCluster();
  const ca = await startCA(cluster);
  const clients: { client: CAClient; csr: string }[] = [];
  const keyStart = process.hrtime.bigint();
  for (let i = 0; i < IDENTITIES; i++) {
    const ns = `bench-${i % 4}`;
    const sa = `sa-${i}`;
    const token = await cluster.tokenFor(ns, sa);
    const key = await generateWorkloadKey();
    const client = new CAClient({ address: ca.address, rootCertPem: ca.ca.rootBundle(), serverName: `istiod.${CA_NAMESPACE}.svc`, token: () => token });
    clients.push({ client, csr: createCsr(key, [spiffeId('cluster.local', ns, sa)]) });
  }
  const keyMs = Number(process.hrtime.bigint() - keyStart) / 1e6 / IDENTITIES;

  const issue = async (i: number): Promise<number> => {
    const c = clients[i % clients.length];
    const t0 = process.hrtime.bigint();
    const chain = await c.client.createCertificate(c.csr);
    if (chain.length < 2) throw new Error(`CA returned a chain of ${chain.length}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  // Warm-up: TLS sessions and the TokenReview path.
  for (let i = 0; i < IDENTITIES; i++) await issue(i);

  const rows: Row[] = [];
  {
    const lat: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < SEQUENTIAL; i++) lat.push(await issue(i));
    rows.push(row('sequential (1 in flight)', lat, (Date.now() - t0) / 1000));
  }
  for (const conc of CONCURRENCY) {
    const lat: number[] = [];
    let next = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: conc }, async () => {
      while (next < CONCURRENT) lat.push(await issue(next++));
    }));
    rows.push(row(`${conc} in flight`, lat, (Date.now() - t0) / 1000));
  }
  for (const c of clients) c.client.close();
  await ca.stop();
  await cluster.stop();

  const proxyLoadStart = os.loadavg()[0];
  const proxies = await proxyRows();

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    '# bench:security results',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), Linux ${os.release()}, Node ${process.version};`,
    `load average ${loadStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end (other jobs share the machine).`,
    '',
    '## Certificate issuance (real CA, real API server TokenReview per request, 2048-bit RSA CSRs)',
    '',
    `${IDENTITIES} workload identities in 4 namespaces; each request is IstioCertificateService/CreateCertificate over TLS`,
    'on 127.0.0.1, authenticated by a projected token (audience istio-ca) that the CA reviews with the API server.',
    `Making the key and CSR costs the proxy ${keyMs.toFixed(1)} ms per identity (not included below).`,
    '',
    '| load | requests | seconds | certs/s | p50 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.requests} | ${r.seconds.toFixed(2)} | ${(r.requests / r.seconds).toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} |`),
    '',
    '## Proxy throughput and p99 with mTLS vs plaintext',
    '',
    'Two Trellis sidecars (client outbound -> server inbound -> upstream), the `trellis x2` and `trellis x2 mTLS`',
    'rows of bench:proxy measured by the same code (test/bench/lib/proxy-rows.ts): plaintext, and automatic mTLS',
    '(client cluster with the tlsMode-istio transport socket match, ISTIO_MUTUAL; server inbound STRICT with',
    'XFCC; certificates through SDS `default`/`ROOTCA`). Keep-alive connections, so the handshake cost is paid',
    `once per connection; the figures are the per-request cost of encryption. Max throughput: closed loop, ${CONNECTIONS}`,
    `connections, ${THROUGHPUT_MS / 1000} s; latency: open loop at ${RATE} rps, ${LATENCY_MS / 1000} s; medians of ${RUNS} interleaved runs;`,
    `load average ${proxyLoadStart.toFixed(2)} when it started (ratios between the rows are what this shared machine can tell).`,
    '',
    ...proxyTable(proxies),
    '',
  ];
  const out = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'test', 'bench', 'results', 'security.md');
  fs.writeFileSync(out, lines.join('\n'));
  process.stdout.write(lines.join('\n') + `\nwritten to ${out}\n`);
}

/** The two-sidecar rows of bench:proxy, plaintext and mTLS, against the bench upstream. */
async function proxyRows(): Promise<RowsOutcome> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-security-'));
  const gen = new LoadGenerator(THREADS);
  const { handle: upstream, message } = await forkNode<{ port: number }>('upstream', fileURLToPath(new URL('./lib/upstream-process.js', import.meta.url)));
  try {
    return await runRows(gen, message.port, dir, [TRELLIS_X2, TRELLIS_X2_MTLS]);
  } finally {
    await gen.close();
    await upstream.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function proxyTable(o: RowsOutcome): string[] {
  const plain = o.results.find((r) => r.name === TRELLIS_X2.name);
  const mtls = o.results.find((r) => r.name === TRELLIS_X2_MTLS.name);
  const line = (r: RowResult): string => `| ${r.name} | ${f(r.maxRps, 0)} | ${ratio(r.maxRps, plain?.maxRps)} | ${f(r.p50, 3)} | ${f(r.p90, 3)} | ${f(r.p99, 3)} | ${ratio(r.p99, plain?.p99)} | ${f(r.cpuPer1kAtRate / r.proxies, 3)} | ${f(r.cpuPer1kAtMax / r.proxies, 3)} | ${r.rssMb.map((m) => f(m, 1)).join(' + ')} | ${r.errors} |`;
  const out = [
    '| row | max rps | vs plaintext | p50 ms | p90 ms | p99 ms | p99 vs plaintext | CPU s / 1000 req per proxy @1000 rps | CPU s / 1000 req per proxy @max | peak RSS MB per proxy | failed req |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...o.results.map(line),
  ];
  if (plain && mtls) {
    out.push('', `mTLS vs plaintext: max throughput ${ratio(mtls.maxRps, plain.maxRps)}, p99 ${f(mtls.p99 - plain.p99, 3)} ms (${ratio(mtls.p99, plain.p99)}), CPU per request at 1000 rps ${ratio(mtls.cpuPer1kAtRate, plain.cpuPer1kAtRate)}.`);
  }
  for (const s of o.failures) out.push('', `FAILED row: ${s.replace(/\s+/g, ' ').slice(0, 400)}`);
  return out;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void stopAllChildren().finally(() => process.exit(130)); });
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`bench:security: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
