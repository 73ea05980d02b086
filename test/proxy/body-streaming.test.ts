// Request bodies stream through the proxy as Envoy's router streams them: the upstream gets
// the first bytes before the client has sent the rest, memory does not grow with the body,
// a copy is kept up to the buffer limit (per_request_buffer_limit_bytes, else the listener's
// 1 MiB) so small bodies are retried and mirrored, and a body past the limit is neither
// retried (the client gets the upstream's own error) nor mirrored beyond it. HTTP/1.1 and
// HTTP/2 downstreams and a gRPC bidirectional stream, configured by the test ADS server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import type { AccessLogEntry } from '../../proxy/stats/access-log.js';
import { TestAdsServer } from './ads-server.js';
import { assignment, closeServer, edsCluster, freePort, virtualOutbound, waitFor } from './fixtures.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const HOST = 'up.test.svc.cluster.local';
const MiB = 1024 * 1024;
const H2_OPTIONS = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicitHttpConfig: { http2ProtocolOptions: {} } } };

/** What the upstream saw of one attempt. */
interface Seen { path: string; bytes: number; sha: string; complete: boolean }

/** A repeating byte pattern; `pattern(n)` is the first n bytes of it (for expected hashes). */
const BLOCK = Buffer.alloc(256 * 1024, 0);
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 31 + 7) & 0xff;
function patternSha(total: number): string {
  const h = crypto.createHash('sha256');
  for (let sent = 0; sent < total; sent += BLOCK.length) h.update(BLOCK.subarray(0, Math.min(BLOCK.length, total - sent)));
  return h.digest('hex');
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/**
 * POSTs `total` bytes of the pattern; `pauseAfter` bytes go first, then the client waits for
 * `gate` before sending the rest (with the socket's back-pressure, one reused block).
 */
function upload(port: number, path: string, total: number, opts: { pauseAfter?: number; gate?: Promise<unknown>; chunked?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { host: HOST };
    if (!opts.chunked) headers['content-length'] = total;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      let sent = 0;
      const write = async (upTo: number): Promise<void> => {
        while (sent < upTo && !req.destroyed) {
          const off = sent % BLOCK.length;
          const n = Math.min(BLOCK.length - off, upTo - sent);
          sent += n;
          if (!req.write(BLOCK.subarray(off, off + n))) await new Promise<void>((r) => {
            const go = (): void => { req.off('drain', go); req.off('close', go); r(); };
            req.on('drain', go);
            req.on('close', go);
          });
        }
      };
      await write(opts.pauseAfter ?? 0);
      if (opts.gate) await opts.gate;
      await write(total);
      if (!req.destroyed) req.end();
    })().catch(reject);
  });
}

/** Resolves when `check` holds or rejects after `ms` with `what` (a gate that can fail the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))]);
}

describe('request bodies stream through the proxy; a copy is kept up to the buffer limit', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let outPort = 0;
  let upstream: http.Server;
  let shadow: http.Server;
  let grpcServer: grpc.Server;
  const seen: Seen[] = [];
  const shadowSeen: Seen[] = [];
  const log: AccessLogEntry[] = [];
  /** Resolved by the upstream when the first body bytes of a request with x-signal arrive. */
  const firstBytes = new Map<string, () => void>();
  const failures = new Map<string, number>();

  /** Counts and hashes a body; calls `onChunk` with the running count. */
  function consume(req: http.IncomingMessage, into: Seen[], onChunk?: (bytes: number) => void): Promise<Seen> {
    const s: Seen = { path: req.url ?? '', bytes: 0, sha: '', complete: false };
    into.push(s);
    const h = crypto.createHash('sha256');
    return new Promise((resolve) => {
      req.on('data', (c: Buffer) => {
        h.update(c);
        s.bytes += c.length;
        const signal = firstBytes.get(String(req.headers['x-signal']));
        if (signal) { firstBytes.delete(String(req.headers['x-signal'])); signal(); }
        onChunk?.(s.bytes);
      });
      req.on('end', () => { s.complete = true; s.sha = h.digest('hex'); resolve(s); });
      req.on('close', () => resolve(s));
    });
  }

  before(async () => {
    upstream = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const key = url.searchParams.get('key') ?? '';
      const failOnce = (): boolean => {
        const n = failures.get(key) ?? 0;
        failures.set(key, n + 1);
        return n === 0;
      };
      // Resets the connection once this many body bytes arrived.
      const resetAt = Number(url.searchParams.get('reset-at') ?? 0);
      void consume(req, seen, resetAt ? (bytes) => { if (bytes >= resetAt) req.socket.destroy(); } : undefined).then((s) => {
        if (!s.complete) return;
        const mode = url.searchParams.get('mode');
        if ((mode === 'fail-once-503' && failOnce()) || mode === 'always-503') {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('upstream says no');
          return;
        }
        if (mode === 'fail-once-reset' && failOnce()) { req.socket.destroy(); return; }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${s.bytes} ${s.sha}`);
      });
    });
    shadow = http.createServer((req, res) => {
      void consume(req, shadowSeen).then((s) => { if (s.complete) res.end('shadow'); });
    });
    for (const s of [upstream, shadow]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const portOf = (s: http.Server): number => (s.address() as { port: number }).port;

    // gRPC bidirectional stream over raw bytes: each message is answered at once.
    const chat = {
      Chat: {
        path: '/trellis.test.Chat/Chat', requestStream: true, responseStream: true,
        requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b,
      },
    };
    grpcServer = new grpc.Server();
    grpcServer.addService(chat as unknown as grpc.ServiceDefinition, {
      Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on('data', (m: Buffer) => call.write(Buffer.from(`got ${m.length}`)));
        call.on('end', () => call.end());
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

    outPort = await freePort();
    const retry = { retryOn: '5xx,reset', numRetries: { value: 2 } };
    const route = (prefix: string, action: object, extra: object = {}) => ({ match: { prefix }, route: { timeout: { seconds: 60 }, ...action }, ...extra });
    ads.setAll('1', {
      [TYPE_URL.cluster]: [edsCluster('up'), edsCluster('shadow'), { ...(edsCluster('grpc') as object), typedExtensionProtocolOptions: H2_OPTIONS }],
      [TYPE_URL.clusterLoadAssignment]: [assignment('up', [['127.0.0.1', portOf(upstream)]]), assignment('shadow', [['127.0.0.1', portOf(shadow)]]), assignment('grpc', [['127.0.0.1', grpcPort]])],
      [TYPE_URL.listener]: [{
        ...(virtualOutbound('127.0.0.1', outPort) as object),
        filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
          '@type': TYPE_URL.httpConnectionManager, statPrefix: 'out', rds: { routeConfigName: 'r', configSource: ADS },
          httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }],
        } }] }],
      }],
      [TYPE_URL.routeConfiguration]: [{
        name: 'r',
        virtualHosts: [{
          name: 'up', domains: ['*'],
          routes: [
            route('/small-limit', { cluster: 'up', retryPolicy: retry }, { perRequestBufferLimitBytes: { value: 64 * 1024 } }),
            route('/mirror', { cluster: 'up', requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: { defaultValue: { numerator: 100, denominator: 'HUNDRED' } } }] }),
            route('/trellis.test.Chat/', { cluster: 'grpc' }),
            route('/', { cluster: 'up', retryPolicy: retry }),
          ],
        }],
      }],
    });
    await ads.listen();
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'client-1', namespace: 'test', instanceIp: '127.0.0.93', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: (e) => { log.push(e); },
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: () => ({ address: '127.0.0.201', port: 80 }),
    });
    await sidecar.start();
    await waitFor('config acked', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    assert.deepEqual(ads.nacks(TYPE_URL.routeConfiguration).map((n) => n.errorDetail?.message), []);
    await sidecar.settled();
  });

  after(async () => {
    await sidecar?.stop();
    await ads.close();
    await closeServer(upstream);
    await closeServer(shadow);
    grpcServer?.forceShutdown();
  });

  const stat = (name: string): number => sidecar.stats.get(name);
  const gate = (id: string): Promise<void> => new Promise((resolve) => firstBytes.set(id, resolve));
  const lastLog = (path: string): AccessLogEntry | undefined => log.filter((e) => e.path === path).at(-1);

  it('streams a 32 MiB upload: the upstream has the first bytes before the client sends the rest, and memory stays flat', async (t) => {
    const total = 32 * MiB;
    const first = gate('big');
    gc();
    const base = process.memoryUsage();
    let peak = base.rss;
    let peakBuffers = base.arrayBuffers;
        // Collected before each sample: the socket chunks already passed on are garbage, what a
    // buffering proxy would hold is not.
    const sampler = setInterval(() => {
      gc();
      gc();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    }, 250);
    try {
      const reply = await new Promise<Reply>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: outPort, path: '/stream?key=big', method: 'POST', headers: { host: HOST, 'content-length': total, 'x-signal': 'big' }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        void (async () => {
          req.write(BLOCK.subarray(0, 64 * 1024));
          // A proxy that buffers (even up to 1 MiB) before forwarding never lets this resolve.
          await within(first, 10_000, 'the upstream to receive the first 64 KiB while the client holds the rest');
          // One rotated block, reused: every later write starts 64 KiB into the pattern.
          const rot = Buffer.concat([BLOCK.subarray(64 * 1024), BLOCK.subarray(0, 64 * 1024)]);
          for (let sent = 64 * 1024; sent < total;) {
            const n = Math.min(BLOCK.length, total - sent);
            sent += n;
            if (!req.write(rot.subarray(0, n))) await new Promise<void>((r) => req.once('drain', r));
          }
          req.end();
        })().catch((e: Error) => { req.destroy(); reject(e); });
      });
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.body, `${total} ${patternSha(total)}`);
    } finally {
      clearInterval(sampler);
    }
    // Client, proxy and upstream share this process: a buffering proxy would hold >= 32 MiB of
    // live buffers. RSS also keeps what malloc has not returned yet, hence its looser bound.
    const live = (peakBuffers - base.arrayBuffers) / MiB;
    const growth = (peak - base.rss) / MiB;
    t.diagnostic(`peak growth after GC: live buffers ${live.toFixed(1)} MiB, RSS ${growth.toFixed(1)} MiB`);
    assert.ok(live < 8, `live buffers grew by ${live.toFixed(1)} MiB while 32 MiB streamed through`);
    assert.ok(growth < 16, `RSS grew by ${growth.toFixed(1)} MiB while 32 MiB streamed through`);
  });

  for (const shape of ['buffered (sent with the headers)', 'streamed (sent in two parts)'] as const) {
    for (const mode of ['fail-once-503', 'fail-once-reset'] as const) {
      it(`retries a small ${shape} body on ${mode === 'fail-once-503' ? 'a 503' : 'a reset'} and replays it byte for byte`, async () => {
        const key = `${mode}-${shape.slice(0, 4)}`;
        const path = `/retry?mode=${mode}&key=${key}`;
        const total = shape.startsWith('buffered') ? 4096 : 300 * 1024;
        const before = stat('cluster.up.upstream_rq_retry');
        const r = shape.startsWith('buffered')
          ? await upload(outPort, path, total)
          : await upload(outPort, path, total, { pauseAfter: 100 * 1024, gate: new Promise((res) => setTimeout(res, 200)) });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, `${total} ${patternSha(total)}`);
        assert.equal(stat('cluster.up.upstream_rq_retry') - before, 1);
        const attempts = seen.filter((s) => s.path === path);
        assert.equal(attempts.length, 2);
      });
    }
  }

  it('does not retry a body past the 1 MiB limit: an upstream reset mid-body reaches the client as 503 UC', async () => {
    const path = '/retry?reset-at=2097152&key=big-reset';
    const retries = stat('cluster.up.upstream_rq_retry');
    const abandoned = stat('cluster.up.retry_or_shadow_abandoned');
    const r = await upload(outPort, path, 6 * MiB);
    assert.equal(r.status, 503, r.body);
    assert.equal(r.headers['x-trellis-reason']?.toString().split(' ')[0], 'UC');
    assert.equal(seen.filter((s) => s.path === path).length, 1, 'one attempt only');
    assert.equal(stat('cluster.up.upstream_rq_retry'), retries);
    assert.equal(stat('cluster.up.retry_or_shadow_abandoned') - abandoned, 1);
    await waitFor('access log entry', () => lastLog(path) !== undefined);
    assert.equal(lastLog(path)?.responseFlags, 'UC');
  });

  it('does not retry a body past the limit on a 5xx: the client gets the upstream\'s own 503 without URX', async () => {
    const path = '/retry?mode=always-503&key=big-503';
    const r = await upload(outPort, path, 3 * MiB, { chunked: true });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'upstream says no');
    assert.equal(seen.filter((s) => s.path === path).length, 1);
    await waitFor('access log entry', () => lastLog(path) !== undefined);
    assert.equal(lastLog(path)?.responseFlags, '');
    // The same failure with a body within the limit is retried twice, then flagged URX.
    const small = '/retry?mode=always-503&key=small-503';
    const s = await upload(outPort, small, 64 * 1024, { pauseAfter: 1024, gate: new Promise((res) => setTimeout(res, 50)) });
    assert.equal(s.status, 503);
    assert.equal(seen.filter((x) => x.path === small).length, 3);
    await waitFor('access log entry', () => lastLog(small) !== undefined);
    assert.equal(lastLog(small)?.responseFlags, 'URX');
  });

  it('honours a route\'s per_request_buffer_limit_bytes: 200 KiB past a 64 KiB limit is not retried', async () => {
    const path = '/small-limit?mode=fail-once-503&key=route-limit';
    const r = await upload(outPort, path, 200 * 1024, { pauseAfter: 16 * 1024, gate: new Promise((res) => setTimeout(res, 50)) });
    assert.equal(r.status, 503);
    assert.equal(seen.filter((s) => s.path === path).length, 1);
    const ok = '/small-limit?mode=fail-once-503&key=route-limit-ok';
    const r2 = await upload(outPort, ok, 32 * 1024, { pauseAfter: 16 * 1024, gate: new Promise((res) => setTimeout(res, 50)) });
    assert.equal(r2.status, 200);
    assert.equal(seen.filter((s) => s.path === ok).length, 2);
  });

  it('mirrors a streamed body within the limit whole, and cancels the mirror of one past it while the main request completes', async () => {
    const small = '/mirror?key=m-small';
    const r = await upload(outPort, small, 200 * 1024, { pauseAfter: 8 * 1024, gate: new Promise((res) => setTimeout(res, 50)) });
    assert.equal(r.status, 200);
    await waitFor('shadow got the small body', () => shadowSeen.some((s) => s.path === small && s.complete));
    assert.equal(shadowSeen.find((s) => s.path === small)?.sha, patternSha(200 * 1024));

    const big = '/mirror?key=m-big';
    const abandoned = stat('cluster.up.retry_or_shadow_abandoned');
    const r2 = await upload(outPort, big, 4 * MiB);
    assert.equal(r2.status, 200);
    assert.equal(r2.body, `${4 * MiB} ${patternSha(4 * MiB)}`);
    assert.equal(stat('cluster.up.retry_or_shadow_abandoned') - abandoned, 1);
    // The shadow saw at most the start of it, never a complete 4 MiB request.
    await new Promise((res) => setTimeout(res, 200));
    const copies = shadowSeen.filter((s) => s.path === big);
    assert.ok(copies.every((s) => !s.complete && s.bytes < 4 * MiB), JSON.stringify(copies));
  });

  it('streams an HTTP/2 downstream upload and still retries a small HTTP/2 body', async () => {
    const session = http2.connect(`http://127.0.0.1:${outPort}`);
    try {
      const post = (path: string, signal: string | undefined, send: (s: http2.ClientHttp2Stream) => Promise<void>): Promise<Reply> => new Promise((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': path, ':authority': HOST, ...(signal ? { 'x-signal': signal } : {}) });
        const chunks: Buffer[] = [];
        let status = 0;
        s.on('response', (h) => { status = Number(h[':status']); });
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => resolve({ status, headers: {}, body: Buffer.concat(chunks).toString() }));
        s.on('error', reject);
        send(s).catch(reject);
      });
      const first = gate('h2');
      const total = 8 * MiB;
      const r = await post('/stream-h2?key=h2', 'h2', async (s) => {
        s.write(BLOCK.subarray(0, 16 * 1024));
        await within(first, 10_000, 'the upstream to receive the first HTTP/2 DATA before the rest is sent');
        const rot = Buffer.concat([BLOCK.subarray(16 * 1024), BLOCK.subarray(0, 16 * 1024)]);
        for (let sent = 16 * 1024; sent < total;) {
          const n = Math.min(BLOCK.length, total - sent);
          sent += n;
          if (!s.write(rot.subarray(0, n))) await new Promise<void>((res) => s.once('drain', res));
        }
        s.end();
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `${total} ${patternSha(total)}`);

      const retryPath = '/retry?mode=fail-once-reset&key=h2-small';
      const r2 = await post(retryPath, undefined, async (s) => {
        s.write(BLOCK.subarray(0, 1000));
        await new Promise((res) => setTimeout(res, 50));
        s.end(BLOCK.subarray(1000, 3000));
      });
      assert.equal(r2.status, 200, r2.body);
      assert.equal(r2.body, `3000 ${patternSha(3000)}`);
      assert.equal(seen.filter((x) => x.path === retryPath).length, 2);
    } finally {
      session.close();
    }
  });

  it('carries a gRPC bidirectional stream: each message reaches the server before the client sends the next', async () => {
    const def = {
      Chat: {
        path: '/trellis.test.Chat/Chat', requestStream: true, responseStream: true,
        requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b,
      },
    };
    const Chat = grpc.makeGenericClientConstructor(def as unknown as grpc.ServiceDefinition, 'Chat');
    const client = new Chat(`127.0.0.1:${outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': HOST });
    try {
      const call = (client as unknown as { Chat(): grpc.ClientDuplexStream<Buffer, Buffer> }).Chat();
      const replies: string[] = [];
      let wake: (() => void) | undefined;
      call.on('data', (m: Buffer) => { replies.push(m.toString()); wake?.(); });
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      for (const size of [10, 70_000, 5]) {
        const want = replies.length + 1;
        call.write(Buffer.alloc(size, 1));
        // The reply needs the message at the server: a proxy holding the stream's body never answers.
        await within(new Promise<void>((resolve) => { wake = () => { if (replies.length >= want) resolve(); }; wake(); }), 10_000, `the reply to a ${size}-byte message`);
      }
      call.end();
      assert.equal((await status).code, grpc.status.OK);
      assert.deepEqual(replies, ['got 10', 'got 70000', 'got 5']);
    } finally {
      client.close();
    }
  });
});
