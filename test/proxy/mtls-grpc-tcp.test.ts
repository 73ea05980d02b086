// Two sidecars with automatic mTLS for HTTP/2 and TCP clusters: gRPC (h2 prior knowledge inside
// the tunnel, ALPN istio) and a TCP echo through TcpProxy, the server's ports STRICT so that
// plaintext would be refused; a TCP server whose SAN is not the expected identity is closed (UF).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import type { AccessLogEntry } from '../../proxy/stats/access-log.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, staticCluster, tcpProxy, waitFor } from './fixtures.js';
import { makeTestCA, TestCertSource } from './test-ca.js';
import { autoMtlsCluster, CLIENT_ID, DOWNSTREAM_MTLS, endpoints, SERVER_ID } from './mtls-resources.js';

const ROUTER = [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }];
const H2 = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': TYPE_URL.httpProtocolOptions, explicitHttpConfig: { http2ProtocolOptions: {} } },
};

/** A STRICT inbound port: only the tls chain, plus a port-less chain plaintext must not fall back to. */
function strictInbound(name: string, port: number, filter: object): object {
  return {
    name, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: 'INBOUND',
    listenerFilters: [{ name: 'envoy.filters.listener.original_dst' }, { name: 'envoy.filters.listener.tls_inspector' }],
    filterChains: [
      { name: `${name}-tls`, filterChainMatch: { destinationPort: { value: port }, transportProtocol: 'tls' }, transportSocket: DOWNSTREAM_MTLS, filters: [filter] },
      { name: 'passthrough', filters: [tcpProxy('inbound|tcp')] },
    ],
  };
}

function outboundTcp(name: string, port: number, cluster: string): object {
  return { name, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: 'OUTBOUND', filterChains: [{ filters: [tcpProxy(cluster)] }] };
}

const identityBuf = (b: Buffer): Buffer => b;
const ECHO_SERVICE = {
  Echo: {
    path: '/trellis.test.Echo/Echo', requestStream: false, responseStream: false,
    requestSerialize: identityBuf, requestDeserialize: identityBuf, responseSerialize: identityBuf, responseDeserialize: identityBuf,
  },
} as const;
type EchoClient = grpc.Client & { Echo(m: Buffer, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, r?: Buffer) => void): grpc.ClientUnaryCall };

/** Writes text, half-closes, and resolves with everything read until the peer closed. */
function tcpRoundTrip(port: number, text: string): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => resolve({ data: Buffer.concat(chunks).toString(), error }));
    s.setTimeout(10_000, () => s.destroy(new Error('test timeout')));
    s.end(text);
  });
}

describe('two sidecars: gRPC and TCP over automatic mTLS (STRICT server)', () => {
  const serverAds = new TestAdsServer();
  const clientAds = new TestAdsServer();
  let server: Sidecar;
  let client: Sidecar;
  let grpcServer: grpc.Server;
  let echo: net.Server;
  let grpcClient: EchoClient;
  const ports = { grpcOut: 0, tcpOut: 0, tcpPlain: 0, tcpWrongSan: 0, grpcIn: 0, tcpIn: 0 };
  const clientLog: AccessLogEntry[] = [];
  const serverLog: AccessLogEntry[] = [];

  before(async () => {
    const ca = await makeTestCA();
    const serverCerts = new TestCertSource(SERVER_ID, ca);
    const clientCerts = new TestCertSource(CLIENT_ID, ca);
    await Promise.all([serverCerts.rotate(), clientCerts.rotate()]);
    grpcServer = new grpc.Server();
    grpcServer.addService(ECHO_SERVICE, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
    });
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(`echo:${Buffer.concat(chunks).toString()}`));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const [sPort, cPort] = [await serverAds.listen(), await clientAds.listen()];
    serverAds.setAll('1', {
      [TYPE_URL.cluster]: [
        { ...staticCluster('inbound|grpc', '127.0.0.1', grpcPort), typedExtensionProtocolOptions: H2 },
        staticCluster('inbound|tcp', '127.0.0.1', echoPort),
      ],
      [TYPE_URL.listener]: [
        strictInbound('grpc-in', ports.grpcIn, {
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: {
            '@type': TYPE_URL.httpConnectionManager, statPrefix: 'grpc-in', forwardClientCertDetails: 'APPEND_FORWARD',
            setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true },
            routeConfig: { name: 'in', virtualHosts: [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'inbound|grpc' } }] }] },
            httpFilters: ROUTER,
          },
        }),
        strictInbound('tcp-in', ports.tcpIn, tcpProxy('inbound|tcp')),
      ],
    });
    clientAds.setAll('1', {
      [TYPE_URL.cluster]: [
        autoMtlsCluster('grpc', [SERVER_ID], { typedExtensionProtocolOptions: H2 }), autoMtlsCluster('tcp', [SERVER_ID]), autoMtlsCluster('tcp-plain', [SERVER_ID]),
        autoMtlsCluster('tcp-wrongsan', ['spiffe://cluster.local/ns/test/sa/other']),
      ],
      [TYPE_URL.clusterLoadAssignment]: [
        endpoints('grpc', ports.grpcIn, true), endpoints('tcp', ports.tcpIn, true), endpoints('tcp-plain', ports.tcpIn, false),
        endpoints('tcp-wrongsan', ports.tcpIn, true),
      ],
      [TYPE_URL.listener]: [
        {
          name: 'grpc-out', address: { socketAddress: { address: '127.0.0.1', portValue: ports.grpcOut } }, trafficDirection: 'OUTBOUND',
          filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: {
            '@type': TYPE_URL.httpConnectionManager, statPrefix: 'grpc-out',
            routeConfig: { name: 'out', virtualHosts: [{ name: 'grpc', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'grpc' } }] }] },
            httpFilters: ROUTER,
          } }] }],
        },
        outboundTcp('tcp-out', ports.tcpOut, 'tcp'), outboundTcp('tcp-plain', ports.tcpPlain, 'tcp-plain'), outboundTcp('tcp-wrongsan', ports.tcpWrongSan, 'tcp-wrongsan'),
      ],
    });
    const local = (s: { localPort?: number }): { address: string; port: number } => ({ address: '127.0.0.1', port: s.localPort ?? 0 });
    const identity = (name: string): ConstructorParameters<typeof Sidecar>[0]['identity'] => ({
      podName: `${name}-1`, namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: name, workloadName: name, labels: { app: name }, domain: 'cluster.local',
    });
    const log = process.env.TPX_DEBUG ? (m: string) => console.error(m) : () => undefined;
    server = new Sidecar({ pilotAddress: `127.0.0.1:${sPort}`, identity: identity('server'), ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: (e) => serverLog.push(e), log, tlsSecrets: serverCerts, originalDst: local });
    client = new Sidecar({ pilotAddress: `127.0.0.1:${cPort}`, identity: identity('client'), ports: { admin: 0, prometheus: 0, readiness: 0 }, accessLog: (e) => clientLog.push(e), log, tlsSecrets: clientCerts, originalDst: local });
    await Promise.all([server.start(), client.start()]);
    await waitFor('server LDS ACK', () => serverAds.acked(TYPE_URL.listener, '1'));
    await waitFor('client LDS ACK', () => clientAds.acked(TYPE_URL.listener, '1'));
    await Promise.all([server.settled(), client.settled()]);
    const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
    grpcClient = new Client(`127.0.0.1:${ports.grpcOut}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  });

  after(async () => {
    grpcClient?.close();
    await client?.stop();
    await server?.stop();
    await serverAds.close();
    await clientAds.close();
    grpcServer?.forceShutdown();
    if (echo) await closeServer(echo);
  });

  it('gRPC unary crosses both sidecars over mTLS (h2 inside ALPN istio) and the server sees the client identity', async () => {
    for (let i = 0; i < 3; i++) {
      const md = new grpc.Metadata();
      const reply = await new Promise<Buffer>((resolve, reject) => {
        grpcClient.Echo(Buffer.from(`hi${i}`), md, (err, r) => (err ? reject(err) : resolve(r ?? Buffer.alloc(0))));
      });
      assert.equal(reply.toString(), `echo:hi${i}`);
    }
    const inbound = serverLog.find((e) => e.path === '/trellis.test.Echo/Echo');
    assert.ok(inbound, 'the server sidecar logged the call');
    assert.equal(inbound.protocol, 'HTTP/2.0');
    assert.equal(inbound.downstreamPeerPrincipal, CLIENT_ID);
    // HTTP/2 inside the mTLS tunnel travels as https, as Envoy sets :scheme from the upstream transport.
    assert.equal(inbound.requestHeaders?.[':scheme'], 'https');
    const outbound = clientLog.find((e) => e.upstreamCluster === 'grpc');
    assert.equal(outbound?.upstreamPeerPrincipal, SERVER_ID);
    // Outbound: destination_principal is the identity the upstream proved in the handshake.
    const text = await client.metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="source"'));
    assert.ok(line, 'the client reports its outbound requests');
    assert.match(line, new RegExp(`destination_principal="${SERVER_ID}"`));
  });

  it('TCP crosses both sidecars over mTLS to a STRICT port; plaintext to it is closed', async () => {
    const r = await tcpRoundTrip(ports.tcpOut, 'ping');
    assert.equal(r.data, 'echo:ping');
    await waitFor('client TCP access log with the upstream principal', () => clientLog.some((e) => e.upstreamCluster === 'tcp' && e.upstreamPeerPrincipal === SERVER_ID));
    await waitFor('server TCP access log with the downstream principal', () => serverLog.some((e) => e.upstreamCluster === 'inbound|tcp' && e.downstreamPeerPrincipal === CLIENT_ID));
    const plain = await tcpRoundTrip(ports.tcpPlain, 'ping');
    assert.equal(plain.data, '', 'a STRICT port must not serve plaintext');
    // istio_tcp_* carry the principals like the request metrics: inbound the verified peer
    // and this proxy over mutual_tls; outbound this proxy and the verified upstream, policy unknown.
    const line = (text: string, metric: string, reporter: string): string => text.split('\n')
      .find((l) => l.startsWith(`${metric}{`) && l.includes(`reporter="${reporter}"`) && !l.includes('response_flags="UF"')) ?? '';
    const serverText = await server.metrics.registry.metrics();
    for (const metric of ['istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total', 'istio_tcp_received_bytes_total', 'istio_tcp_sent_bytes_total']) {
      const inbound = line(serverText, metric, 'destination');
      assert.match(inbound, new RegExp(`source_principal="${CLIENT_ID}"`), `${metric} inbound: ${inbound}`);
      assert.match(inbound, new RegExp(`destination_principal="${SERVER_ID}"`), metric);
      assert.match(inbound, /connection_security_policy="mutual_tls"/, metric);
    }
    const clientText = await client.metrics.registry.metrics();
    const outbound = line(clientText, 'istio_tcp_connections_closed_total', 'source');
    assert.match(outbound, new RegExp(`source_principal="${CLIENT_ID}"`), `outbound: ${outbound}`);
    assert.match(outbound, new RegExp(`destination_principal="${SERVER_ID}"`));
    assert.match(outbound, /connection_security_policy="unknown"/);
  });

  it('a TCP server whose SAN is not the expected identity is closed with UF', async () => {
    const r = await tcpRoundTrip(ports.tcpWrongSan, 'ping');
    assert.equal(r.data, '');
    await waitFor('UF in the client access log', () => clientLog.some((e) => e.upstreamCluster === 'tcp-wrongsan' && e.responseFlags === 'UF'));
  });
});
