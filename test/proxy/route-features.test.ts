// Route features through real HTTP/gRPC, configured by the test ADS server: request
// mirroring (shadow host, runtime fraction, fire and forget), CORS per virtual host and per
// route, gRPC status for errors the proxy itself generates, and GOAWAY / connection: close
// when the listener drains.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { shadowHost } from '../../proxy/http/mirror.js';
import { httpToGrpcStatus } from '../../proxy/http/local-reply.js';
import { TestAdsServer } from './ads-server.js';
import { assignment, closeServer, edsCluster, freePort, startApp, virtualOutbound, waitFor } from './fixtures.js';

const ADS = { ads: {}, resourceApiVersion: 'V3' };
const CORS_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const HOST = 'web.test.svc.cluster.local';

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: HOST, ...opts.headers }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('route features: mirroring, CORS, gRPC local replies, drain', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let outPort = 0;
  let web: Awaited<ReturnType<typeof startApp>>;
  let shadow: Awaited<ReturnType<typeof startApp>>;
  const shadowSeen: Array<{ host: string; path: string; body: string }> = [];
  let shadowHang = false;

  before(async () => {
    web = await startApp('web');
    shadow = await startApp('shadow', '127.0.0.1', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        shadowSeen.push({ host: String(req.headers.host), path: req.url ?? '', body: Buffer.concat(chunks).toString() });
        if (shadowHang) return; // never answers: the main request must not notice
        res.writeHead(500);
        res.end('shadow failure is ignored');
      });
      return true;
    });
    outPort = await freePort();
    const frac = (numerator: number) => ({ defaultValue: { numerator, denominator: 'HUNDRED' } });
    const corsVh = {
      '@type': CORS_TYPE,
      allowOriginStringMatch: [{ exact: 'https://app.example' }, { suffix: '.trusted.example' }],
      allowMethods: 'GET,POST', allowHeaders: 'x-custom,content-type', exposeHeaders: 'x-exposed', maxAge: '600',
      allowCredentials: { value: true },
    };
    const corsOpen = { '@type': CORS_TYPE, allowOriginStringMatch: [{ safeRegex: { regex: '.*' } }], allowMethods: 'PUT' };
    const route = (prefix: string, action: object, extra: object = {}) => ({ match: { prefix }, route: { timeout: { seconds: 5 }, ...action }, ...extra });
    ads.setAll('1', {
      [TYPE_URL.cluster]: [edsCluster('web'), edsCluster('shadow'), edsCluster('empty'),
        { ...(edsCluster('grpc-empty') as object), typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicitHttpConfig: { http2ProtocolOptions: {} } } } }],
      [TYPE_URL.clusterLoadAssignment]: [assignment('web', [['127.0.0.1', web.port]]), assignment('shadow', [['127.0.0.1', shadow.port]]), assignment('empty', []), assignment('grpc-empty', [])],
      [TYPE_URL.listener]: [{
        ...(virtualOutbound('127.0.0.1', outPort) as object),
        filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
          '@type': TYPE_URL.httpConnectionManager, statPrefix: 'out', rds: { routeConfigName: 'r', configSource: ADS },
          httpFilters: [{ name: 'envoy.filters.http.cors', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } }, { name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }],
        } }] }],
      }],
      [TYPE_URL.routeConfiguration]: [{
        name: 'r',
        virtualHosts: [{
          name: 'web', domains: ['*'],
          typedPerFilterConfig: { 'envoy.filters.http.cors': corsVh },
          routes: [
            route('/mirror-all', { cluster: 'web', requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: frac(100) }] }),
            route('/mirror-none', { cluster: 'web', requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: frac(0) }] }),
            route('/mirror-half', { cluster: 'web', requestMirrorPolicies: [{ cluster: 'shadow', runtimeFraction: frac(50) }] }),
            route('/open', { cluster: 'web' }, { typedPerFilterConfig: { 'envoy.filters.http.cors': corsOpen } }),
            route('/empty', { cluster: 'empty' }),
            route('/trellis.Test/Empty', { cluster: 'grpc-empty' }),
            route('/', { cluster: 'web' }),
          ],
        }],
      }],
    });
    await ads.listen();
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'client-1', namespace: 'test', instanceIp: '127.0.0.91', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: () => ({ address: '127.0.0.200', port: 80 }),
    });
    await sidecar.start();
    await waitFor('config acked', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
  });

  after(async () => {
    agent.destroy();
    await sidecar?.stop();
    await ads.close();
    await closeServer(web.server);
    await closeServer(shadow.server);
  });

  it('mirrors to the shadow cluster with "-shadow" on the host, body included, ignoring its answer', async () => {
    assert.equal(shadowHost('web.test:9080'), 'web.test-shadow:9080');
    assert.equal(shadowHost('web'), 'web-shadow');
    shadowSeen.length = 0;
    const r = await request(outPort, '/mirror-all/x', { method: 'POST', body: 'payload' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'web POST /mirror-all/x payload');
    await waitFor('shadow request', () => shadowSeen.length === 1);
    assert.deepEqual(shadowSeen[0], { host: `${HOST}-shadow`, path: '/mirror-all/x', body: 'payload' });
  });

  it('never lets a hanging mirror delay the main response', async () => {
    shadowHang = true;
    shadowSeen.length = 0;
    const t0 = Date.now();
    const r = await request(outPort, '/mirror-all/slow');
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 3000, 'main response not held by the shadow');
    await waitFor('shadow got it', () => shadowSeen.length === 1);
    shadowHang = false;
  });

  it('mirrors by the runtime fraction: 0% never, 50% about half', async () => {
    shadowSeen.length = 0;
    for (let i = 0; i < 20; i++) assert.equal((await request(outPort, '/mirror-none')).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(shadowSeen.length, 0);
    await Promise.all(Array.from({ length: 200 }, () => request(outPort, '/mirror-half')));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(shadowSeen.length > 60 && shadowSeen.length < 140, `mirrored ${shadowSeen.length} of 200`);
  });

  it('answers a preflight from an allowed origin locally with the policy\'s headers', async () => {
    const before = web.seen.length;
    for (const origin of ['https://app.example', 'https://x.trusted.example']) {
      const r = await request(outPort, '/api', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], origin);
      assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(r.headers['access-control-allow-headers'], 'x-custom,content-type');
      assert.equal(r.headers['access-control-max-age'], '600');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
    }
    assert.equal(web.seen.length, before, 'preflight never reached the app');
  });

  it('forwards a preflight from another origin without CORS headers', async () => {
    const before = web.seen.length;
    const r = await request(outPort, '/api', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(r.body, 'web OPTIONS /api');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(web.seen.length, before + 1);
  });

  it('adds allow-origin, credentials and expose headers to actual requests from allowed origins only', async () => {
    const ok = await request(outPort, '/api', { headers: { origin: 'https://app.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(ok.headers['access-control-expose-headers'], 'x-exposed');
    assert.equal(ok.headers['access-control-allow-credentials'], 'true');
    const other = await request(outPort, '/api', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const none = await request(outPort, '/api');
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  it('lets a route\'s CORS policy override the virtual host\'s', async () => {
    const r = await request(outPort, '/open', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://evil.example');
    assert.equal(r.headers['access-control-allow-methods'], 'PUT');
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });

  it('rejects a CORS policy with a bad matcher, naming the field', async () => {
    ads.set(TYPE_URL.routeConfiguration, '2-bad', [{ name: 'r', virtualHosts: [{ name: 'w', domains: ['*'], typedPerFilterConfig: { 'envoy.filters.http.cors': { '@type': CORS_TYPE, allowOriginStringMatch: [{ safeRegex: { regex: '(' } }] } }, routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] }] }]);
    await waitFor('NACK', () => ads.nacks(TYPE_URL.routeConfiguration).length > 0);
    assert.match(ads.nacks(TYPE_URL.routeConfiguration)[0].errorDetail?.message ?? '', /virtualHosts\[0\]\.typedPerFilterConfig\["envoy\.filters\.http\.cors"\]\.allowOriginStringMatch\[0\]\.safeRegex\.regex: invalid regex/);
    assert.equal((await request(outPort, '/mirror-none')).status, 200, 'old routes still serve');
  });

  it('answers gRPC requests it cannot route with a gRPC status (trailers-only), not an HTTP error', async () => {
    assert.equal(httpToGrpcStatus(503), 14);
    assert.equal(httpToGrpcStatus(404), 12);
    assert.equal(httpToGrpcStatus(403), 7);
    const client = new grpc.Client(`127.0.0.1:${outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': HOST });
    const call = (method: string) => new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err) => resolve(err));
    });
    try {
      const unavailable = await call('/trellis.Test/Empty');
      assert.equal(unavailable?.code, grpc.status.UNAVAILABLE, unavailable?.details);
      assert.match(unavailable?.details ?? '', /no healthy upstream/);
      // HTTP/2 straight to the proxy: status 200, grpc-status in the only HEADERS frame.
      const session = http2.connect(`http://127.0.0.1:${outPort}`);
      const head = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/trellis.Test/Empty', ':authority': HOST, 'content-type': 'application/grpc', te: 'trailers' });
        s.on('response', resolve);
        s.on('error', reject);
        s.end();
      });
      session.close();
      assert.equal(head[':status'], 200);
      assert.equal(head['grpc-status'], '14');
      assert.equal(head['content-type'], 'application/grpc');
    } finally {
      client.close();
    }
    // A plain HTTP request to the same kind of failure still gets the HTTP status.
    assert.equal((await request(outPort, '/empty')).status, 503);
  });

  it('on drain sends GOAWAY to HTTP/2 clients and connection: close to HTTP/1.1 ones', async () => {
    const session = http2.connect(`http://127.0.0.1:${outPort}`);
    const goaway = new Promise<number>((resolve) => session.on('goaway', (code) => resolve(code)));
    const first = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': '/h2', ':authority': HOST });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    assert.equal(first, 200);
    const h1 = http.request({ host: '127.0.0.1', port: outPort, path: '/h1', headers: { host: HOST }, agent });
    await sidecar.drain(['outbound']);
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    const r = await new Promise<http.IncomingMessage>((resolve, reject) => { h1.on('response', resolve); h1.on('error', reject); h1.end(); });
    r.resume();
    assert.equal(r.headers.connection, 'close');
    session.destroy();
  });
});
