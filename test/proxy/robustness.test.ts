// HTTP/1.1 edge protocols and bad input through the sidecar: Upgrade passthrough (a raw
// WebSocket-style handshake, then bytes both ways), Expect: 100-continue, smuggling shapes
// and header limits refused without forwarding, and a seeded fuzz of malformed requests
// and malformed xDS resources after which the proxy still serves and has NACKed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import {
  assignment, closeServer, edsCluster, freePort, originalDstCluster, outboundCluster, routeConfiguration, serviceListener, startApp,
  virtualHost, virtualOutbound, waitFor,
} from './fixtures.js';

const WEB = { fqdn: 'web.default.svc.cluster.local', port: 8080, clusterIP: '127.0.0.82' };
const WS = { fqdn: 'ws.default.svc.cluster.local', port: 8080, clusterIP: '127.0.0.83' };

/** Sends raw bytes, returns everything the proxy sent back until it closed (or a quiet period). */
/** Sends raw bytes; resolves with what came back once the peer is quiet for quietMs (firstByteMs before any byte: a loaded machine is slow to answer). */
function raw(port: number, bytes: string | Buffer, quietMs = 300, firstByteMs = Math.max(quietMs, 3000)): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer = setTimeout(() => s.destroy(), firstByteMs);
    s.on('data', (c: Buffer) => { chunks.push(c); clearTimeout(timer); timer = setTimeout(() => s.destroy(), quietMs); });
    s.on('error', () => undefined);
    s.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
    s.write(bytes);
  });
}

/** mulberry32: a small seeded PRNG so the fuzz run is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('HTTP/1.1 upgrades, 100-continue and bad input', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let outPort = 0;
  let target = { address: WEB.clusterIP, port: WEB.port };
  let web: Awaited<ReturnType<typeof startApp>>;
  let ws: net.Server;
  let wsPort = 0;
  let version = 1;
  const webCluster = outboundCluster(WEB.port, WEB.fqdn);
  const wsCluster = outboundCluster(WS.port, WS.fqdn);
  const resources = (): Record<string, object[]> => ({
    [TYPE_URL.cluster]: [edsCluster(webCluster), edsCluster(wsCluster), originalDstCluster('PassthroughCluster')],
    [TYPE_URL.clusterLoadAssignment]: [assignment(webCluster, [['127.0.0.1', web.port]]), assignment(wsCluster, [['127.0.0.1', wsPort]])],
    [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(WEB.port)],
    [TYPE_URL.routeConfiguration]: [routeConfiguration(WEB.port, [virtualHost(WEB, { cluster: webCluster }), virtualHost(WS, { cluster: wsCluster })])],
  });

  before(async () => {
    web = await startApp('web');
    // A WebSocket-like upstream: answers the handshake with 101, then echoes upper-cased.
    ws = net.createServer((s) => {
      let buf = '';
      let upgraded = false;
      s.on('data', (c: Buffer) => {
        if (upgraded) { s.write(c.toString().toUpperCase()); return; }
        buf += c.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        const ok = /\r\nupgrade: websocket\r\n/i.test(buf) && /\r\nconnection: upgrade\r\n/i.test(buf);
        s.write(ok ? 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
        const rest = buf.slice(end + 4);
        if (rest) s.write(rest.toUpperCase());
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => ws.listen(0, '127.0.0.1', () => r()));
    wsPort = (ws.address() as net.AddressInfo).port;
    outPort = await freePort();
    await ads.listen();
    ads.setAll('1', resources());
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'r-1', namespace: 'default', instanceIp: '127.0.0.92', serviceAccount: 'r', workloadName: 'r', labels: {}, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: () => undefined,
      originalDst: () => target,
      onQuit: () => undefined,
    });
    await sidecar.start();
    await waitFor('config applied', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
  });

  after(async () => {
    await sidecar?.stop();
    await ads.close();
    if (web) await closeServer(web.server);
    if (ws) await closeServer(ws);
  });

  it('passes an Upgrade handshake through and then bytes both ways', async () => {
    const s = net.connect(outPort, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`GET /chat HTTP/1.1\r\nhost: ${WS.fqdn}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n\r\nhello`);
    await waitFor('101 and echo', () => /HELLO$/.test(Buffer.concat(got).toString()));
    assert.match(Buffer.concat(got).toString(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    s.write(' more');
    await waitFor('second echo', () => /HELLO MORE$/.test(Buffer.concat(got).toString()));
    s.destroy();
  });

  it('handles Expect: 100-continue', async () => {
    const r = await new Promise<{ cont: boolean; status: number; body: string }>((resolve, reject) => {
      let cont = false;
      const req = http.request({ host: '127.0.0.1', port: outPort, method: 'POST', path: '/upload', headers: { host: WEB.fqdn, expect: '100-continue', 'content-length': 5 } });
      req.on('continue', () => { cont = true; req.end('12345'); });
      req.on('response', (res) => { let body = ''; res.on('data', (c: Buffer) => { body += c.toString(); }); res.on('end', () => resolve({ cont, status: res.statusCode ?? 0, body })); });
      req.on('error', reject);
    });
    assert.ok(r.cont, 'got 100 Continue');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'web POST /upload 12345');
  });

  it('refuses smuggling shapes and bad header names with 400 without forwarding', async () => {
    const before = web.seen.length;
    const bad = [
      `POST / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n`,
      `POST / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!`,
      `GET / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nbad header: x\r\n\r\n`,
      `GET / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nx-a\u0001b: x\r\n\r\n`,
      `POST / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    ];
    for (const b of bad) assert.match(await raw(outPort, b), /^HTTP\/1\.1 400 /, JSON.stringify(b));
    assert.equal(web.seen.length, before, 'nothing reached the app');
  });

  it('answers 431 past 60 KiB of headers or 100 headers', async () => {
    const before = web.seen.length;
    const big = await raw(outPort, `GET / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nx-big: ${'a'.repeat(61 * 1024)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    let many = `GET / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\n`;
    for (let i = 0; i < 101; i++) many += `x-h${i}: v\r\n`;
    assert.match(await raw(outPort, `${many}\r\n`), /^HTTP\/1\.1 431 /);
    assert.equal(web.seen.length, before);
    // Below the proxy's limits the request is forwarded (the app itself, node, allows 16 KiB).
    assert.match(await raw(outPort, `GET / HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nconnection: close\r\nx-big: ${'a'.repeat(12 * 1024)}\r\n\r\n`), /^HTTP\/1\.1 200 /);
  });

  it('survives a seeded fuzz of malformed requests and xDS resources', async () => {
    const rand = prng(0x7e11);
    const valid = `POST /fuzz?a=1 HTTP/1.1\r\nhost: ${WEB.fqdn}\r\ncontent-length: 4\r\nx-k: v\r\n\r\nbody`;
    const alphabet = ['\r', '\n', ':', ' ', '\0', '\u00ff', 'chunked', 'content-length: 9\r\n', 'transfer-encoding: chunked\r\n', '\r\n\r\n', 'HTTP/1.1', '%', 'ü'];
    const mutate = (s: string): string => {
      let out = s;
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = Math.floor(rand() * out.length);
        const op = rand();
        if (op < 0.33) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(rand() * 8));
        else if (op < 0.66) out = out.slice(0, at) + alphabet[Math.floor(rand() * alphabet.length)] + out.slice(at);
        else out = out.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + out.slice(at + 1);
      }
      return out;
    };
    for (let batch = 0; batch < 8; batch++) {
      await Promise.all(Array.from({ length: 20 }, () => raw(outPort, Buffer.from(mutate(valid), 'latin1'), 100, 100)));
    }
    const ok = await raw(outPort, `GET /after HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nconnection: close\r\n\r\n`);
    assert.match(ok, /^HTTP\/1\.1 200 /);

    // Malformed resources: random fields of valid ones replaced by wrong types or values.
    const junk: unknown[] = ['', 'NOT_A_TYPE', -1, 0, 1e12, { value: -5 }, [], {}, 'x'.repeat(300)];
    const mutateObj = (o: unknown, depth = 0): unknown => {
      if (Array.isArray(o)) return o.map((v) => mutateObj(v, depth + 1));
      if (typeof o !== 'object' || o === null) return o;
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) {
        if (k === '@type') { copy[k] = v; continue; }
        copy[k] = rand() < 0.15 ? junk[Math.floor(rand() * junk.length)] : mutateObj(v, depth + 1);
      }
      return copy;
    };
    let pushed = 0;
    for (let i = 0; i < 25; i++) {
      const base = resources();
      const type = [TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.routeConfiguration][i % 3];
      const mutated = { ...base, [type]: base[type].map((r) => mutateObj(r)) as object[] };
      version++;
      try {
        ads.setAll(String(version), mutated);
      } catch {
        continue; // not even encodable as the proto: nothing to send
      }
      pushed++;
      await waitFor(`response to version ${version}`, () => ads.acked(type, String(version)) || ads.nacks(type).length > 0, 3000).catch(() => undefined);
    }
    assert.ok(pushed > 5, `pushed ${pushed} mutated configs`);
    const nacked = [TYPE_URL.cluster, TYPE_URL.listener, TYPE_URL.routeConfiguration].reduce((n, t) => n + ads.nacks(t).length, 0);
    assert.ok(nacked > 0, 'some mutations were NACKed');
    // Back to a valid config: it is applied and traffic flows.
    version++;
    ads.setAll(String(version), resources());
    await waitFor('valid config acked', () => ads.acked(TYPE_URL.routeConfiguration, String(version)) && ads.acked(TYPE_URL.cluster, String(version)));
    await sidecar.settled();
    assert.match(await raw(outPort, `GET /final HTTP/1.1\r\nhost: ${WEB.fqdn}\r\nconnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
  });
});
