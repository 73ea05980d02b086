// Protocols through the sidecar: h2c downstream (prior knowledge), HTTP/2 upstream chosen by
// the cluster's HttpProtocolOptions, and gRPC end to end with a real @grpc/grpc-js client and
// server (unary, server streaming, trailers and grpc-status, retry on `unavailable`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import type { SocketAddress } from '../../proxy/interception/original-dst.js';
import { TestAdsServer } from './ads-server.js';
import {
  assignment, closeServer, edsCluster, freePort, outboundCluster, routeConfiguration, serviceListener, startApp, virtualHost, virtualOutbound, waitFor,
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
    await ads.listen();
    const echoCluster = outboundCluster(GRPC.port, GRPC.fqdn);
    const webCluster = outboundCluster(WEB.port, WEB.fqdn);
    ads.setAll('1', {
      [TYPE_URL.cluster]: [h2Cluster(echoCluster), edsCluster(webCluster)],
      [TYPE_URL.clusterLoadAssignment]: [assignment(echoCluster, [['127.0.0.1', grpcPort]]), assignment(webCluster, [['127.0.0.1', web.port]])],
      [TYPE_URL.listener]: [virtualOutbound('127.0.0.1', outPort), serviceListener(GRPC.port)],
      [TYPE_URL.routeConfiguration]: [routeConfiguration(GRPC.port, [
        virtualHost(GRPC, { cluster: echoCluster, retryPolicy: { retryOn: 'unavailable', numRetries: { value: 2 } } }),
        virtualHost(WEB, { cluster: webCluster }),
      ])],
    });
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'client-1', namespace: 'default', instanceIp: '127.0.0.90', serviceAccount: 'client', workloadName: 'client', labels: { app: 'client' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: process.env.TPX_DEBUG ? (l) => console.error(l) : () => undefined,
      log: process.env.TPX_DEBUG ? (m) => console.error(m) : () => undefined,
      originalDst: () => target,
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
});
