// Protocols through the sidecar: h2c downstream (prior knowledge), HTTP/2 upstream chosen by
// the cluster's HttpProtocolOptions, and gRPC end to end with a real @grpc/grpc-js client and
// server (unary, server streaming, trailers and grpc-status, retry on `unavailable`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatAccessLog } from '../../proxy/stats/access-log.js';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { decodeCluster } from '../../proxy/xds/resources/cluster.js';
import type { SocketAddress } from '../../proxy/interception/original-dst.js';
import { TestAdsServer } from './ads-server.js';
import {
  assignment, closeServer, edsCluster, freePort, originalDstCluster, outboundCluster, routeConfiguration, serviceListener, startApp, staticCluster,
  virtualHost, virtualInbound, virtualOutbound, waitFor,
} from './fixtures.js';

const GRPC = { fqdn: 'echo.default.svc.cluster.local', port: 7070, clusterIP: '127.0.0.80' };
const WEB = { fqdn: 'web.default.svc.cluster.local', port: 7070, clusterIP: '127.0.0.81' };
const PROTO = `syntax = "proto3";
package trellis.test;
message Msg { string text = 1; int32 count = 2; }
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Stream (Msg) returns (stream Msg);
}`;

interface Msg { text?: string; count?: number }
type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  Stream(m: Msg, md?: grpc.Metadata): grpc.ClientReadableStream<Msg>;
};

function h2Cluster(name: string): object {
  return {
    ...edsCluster(name),
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPE_URL.httpProtocolOptions, explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  };
}

describe('protocols: h2c, HTTP/2 upstream, gRPC', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let outPort = 0;
  let target: SocketAddress = { address: GRPC.clusterIP, port: GRPC.port };
  let grpcServer: grpc.Server;
  let grpcPort = 0;
  let web: Awaited<ReturnType<typeof startApp>>;
  let client: EchoClient;
  const failures = new Map<string, number>();
  let tmp = '';
  let inPort = 0;
  let quitCalls = 0;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-proto-'));
    fs.writeFileSync(path.join(tmp, 'echo.proto'), PROTO);
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(tmp, 'echo.proto'))) as unknown as {
      trellis: { test: { Echo: grpc.ServiceClientConstructor } };
    };
    const Echo = def.trellis.test.Echo;
    grpcServer = new grpc.Server();
    grpcServer.addService(Echo.service, {
      Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        const key = String(call.metadata.get('x-key')[0] ?? '');
        const failTimes = Number(call.metadata.get('x-fail-times')[0] ?? 0);
        const seen = failures.get(key) ?? 0;
        if (key && seen < failTimes) {
          failures.set(key, seen + 1);
          cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
          return;
        }
        if (call.request.text === 'missing') {
          cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
          return;
        }
        call.sendMetadata(new grpc.Metadata());
        cb(null, { text: `echo ${call.request.text ?? ''}`, count: (seen + 1) });
      },
      Stream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
        const n = call.request.count ?? 3;
        for (let i = 0; i < n; i++) call.write({ text: `${call.request.text ?? ''} #${i}`, count: i });
        const trailer = new grpc.Metadata();
        trailer.set('x-trailer', 'kept');
        call.end(trailer);
      },
    });
    grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
    web = await startApp('web');
    outPort = await freePort();
    inPort = await freePort();
    await ads.listen();
    const echoCluster = outboundCluster(GRPC.port, GRPC.fqdn);
    const webCluster = outboundCluster(WEB.port, WEB.fqdn);
    ads.setAll('1', {
      [TYPE_URL.cluster]: [h2Cluster(echoCluster), edsCluster(webCluster), staticCluster(`inbound|${web.port}||`, '127.0.0.1', web.port), originalDstCluster('InboundPassthroughCluster')],
      [TYPE_URL.clusterLoadAssignment]: [assignment(echoCluster, [['127.0.0.1', grpcPort]]), assignment(webCluster, [['127.0.0.1', web.port]])],
      [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(GRPC.port), virtualInbound('127.0.0.1', inPort, [web.port])],
      [TYPE_URL.routeConfiguration]: [routeConfiguration(GRPC.port, [
        virtualHost(GRPC, { cluster: echoCluster, retryPolicy: { retryOn: 'unavailable', numRetries: { value: 2 } } }),
        virtualHost(WEB, { cluster: webCluster }),
      ])],
    });
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'client-1', namespace: 'default', instanceIp: '127.0.0.90', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: process.env.TPX_DEBUG ? (e) => console.error(formatAccessLog(e)) : () => undefined,
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: (socket) => (socket.localPort === inPort ? { address: '127.0.0.91', port: web.port } : target),
      onQuit: () => { quitCalls++; },
    });
    await sidecar.start();
    await waitFor('config applied', () => ads.acked(TYPE_URL.routeConfiguration, '1'));
    await sidecar.settled();
    client = new Echo(`127.0.0.1:${outPort}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': `${GRPC.fqdn}:${GRPC.port}`,
    }) as unknown as EchoClient;
  });

  after(async () => {
    client?.close();
    await sidecar?.stop();
    await ads.close();
    grpcServer?.forceShutdown();
    if (web) await closeServer(web.server);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const unary = (m: Msg, md = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; r?: Msg }> =>
    new Promise((resolve) => { client.Unary(m, md, (err, r) => resolve({ err, r })); });

  it('reads the upstream HTTP version from HttpProtocolOptions', () => {
    const opts = (o: object): object => ({ ...edsCluster('c'), typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': o } });
    assert.equal(decodeCluster(opts({ explicitHttpConfig: { http2ProtocolOptions: {} } }) as Record<string, unknown>).value?.upstreamProtocol, 'http2');
    assert.equal(decodeCluster(opts({ explicitHttpConfig: { httpProtocolOptions: {} } }) as Record<string, unknown>).value?.upstreamProtocol, 'http1');
    assert.equal(decodeCluster(opts({ useDownstreamProtocolConfig: {} }) as Record<string, unknown>).value?.upstreamProtocol, 'downstream');
    assert.equal(decodeCluster(edsCluster('c') as Record<string, unknown>).value?.upstreamProtocol, 'http1');
    assert.match(decodeCluster(opts({ explicitHttpConfig: { http3ProtocolOptions: {} } }) as Record<string, unknown>).errors.join(), /explicitHttpConfig: http3 is not supported/);
  });

  it('carries a unary gRPC call over h2c to an HTTP/2 upstream', async () => {
    target = { address: GRPC.clusterIP, port: GRPC.port };
    const { err, r } = await unary({ text: 'hello' });
    assert.equal(err, null);
    assert.equal(r?.text, 'echo hello');
  });

  it('preserves grpc-status and grpc-message of a failed call', async () => {
    const { err } = await unary({ text: 'missing' });
    assert.equal(err?.code, grpc.status.NOT_FOUND);
    assert.equal(err?.details, 'no such thing');
  });

  it('streams server messages and forwards the trailers', async () => {
    const call = client.Stream({ text: 'tick', count: 4 });
    const got: string[] = [];
    const trailers = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for await (const m of call as AsyncIterable<Msg>) got.push(m.text ?? '');
    assert.deepEqual(got, ['tick #0', 'tick #1', 'tick #2', 'tick #3']);
    const status = await trailers;
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(status.metadata.get('x-trailer'), ['kept']);
  });

  it('retries a call that fails with unavailable when retry_on says so', async () => {
    const md = new grpc.Metadata();
    md.set('x-key', 'retry-1');
    md.set('x-fail-times', '2');
    const { err, r } = await unary({ text: 'again' }, md);
    assert.equal(err, null);
    assert.equal(r?.count, 3, 'third attempt answered');
    assert.ok(sidecar.stats.get(`cluster.${outboundCluster(GRPC.port, GRPC.fqdn)}.upstream_rq_retry`) >= 2);
    // Beyond num_retries the unavailable status reaches the client unchanged.
    md.set('x-key', 'retry-2');
    md.set('x-fail-times', '5');
    const failed = await unary({ text: 'again' }, md);
    assert.equal(failed.err?.code, grpc.status.UNAVAILABLE);
  });

  it('serves h2c prior-knowledge clients towards an HTTP/1.1 upstream', async () => {
    target = { address: WEB.clusterIP, port: WEB.port };
    const session = http2.connect(`http://127.0.0.1:${outPort}`);
    try {
      const get = (p: string): Promise<{ status: number; body: string; app: string }> => new Promise((resolve, reject) => {
        const s = session.request({ ':path': p, ':authority': WEB.fqdn });
        let status = 0;
        let app = '';
        let body = '';
        s.on('response', (h) => { status = Number(h[':status']); app = String(h['x-app']); });
        s.on('data', (c: Buffer) => { body += c.toString(); });
        s.on('end', () => resolve({ status, body, app }));
        s.on('error', reject);
        s.end();
      });
      const [a, b] = await Promise.all([get('/one'), get('/two')]);
      assert.equal(a.status, 200);
      assert.equal(a.body, 'web GET /one');
      assert.equal(b.body, 'web GET /two');
      assert.equal(a.app, 'web');
      assert.equal(web.seen.at(-1)?.host, WEB.fqdn);
    } finally {
      session.close();
    }
  });

  it('drains inbound on /drain_listeners?inboundonly while outbound keeps working; /quitquitquit quits', async () => {
    const admin = `http://127.0.0.1:${sidecar.ports!.admin}`;
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (port: number): Promise<http.IncomingMessage> => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/in', agent, headers: { host: 'web' } }, (res) => { res.resume(); res.on('end', () => resolve(res)); }).on('error', reject);
    });
    try {
      const before = await get(inPort);
      assert.equal(before.statusCode, 200);
      assert.equal(before.headers.connection, 'keep-alive');
      assert.equal((await fetch(`${admin}/drain_listeners?inboundonly`)).status, 405, 'GET is refused');
      assert.equal((await fetch(`${admin}/drain_listeners?inboundonly`, { method: 'POST' })).status, 200);
      // The open keep-alive connection gets its answer with Connection: close ...
      const during = await get(inPort);
      assert.equal(during.statusCode, 200);
      assert.equal(during.headers.connection, 'close');
      // ... and no new inbound connection is accepted.
      await assert.rejects(new Promise((resolve, reject) => {
        const s = net.connect(inPort, '127.0.0.1', () => { s.destroy(); resolve(undefined); });
        s.on('error', reject);
      }));
      const listeners = await (await fetch(`${admin}/listeners`)).text();
      assert.match(listeners, /virtualInbound::.*draining/);
      assert.match(listeners, /virtualOutbound::127\.0\.0\.1:/);
      // Outbound still serves (gRPC over h2c through virtualOutbound).
      target = { address: GRPC.clusterIP, port: GRPC.port };
      assert.equal((await unary({ text: 'still' })).r?.text, 'echo still');
    } finally {
      agent.destroy();
    }
    assert.equal((await fetch(`${admin}/quitquitquit`, { method: 'POST' })).status, 200);
    await waitFor('quit hook', () => quitCalls === 1);
  });
});
