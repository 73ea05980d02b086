// Filter chain selection (Envoy's hierarchy: port, IP, SNI, transport, ALPN, source) with
// the tls_inspector / http_inspector, and downstream TLS termination from a chain's
// DownstreamTlsContext (SDS default/ROOTCA, client certificates, SAN checks, ALPN, XFCC,
// rotation), through a real ADS server, real TLS and real HTTP/1.1 and HTTP/2.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import { TYPE_URL } from '../../api/xds/protos.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort, startApp, staticCluster, waitFor } from './fixtures.js';
import { makeTestCA, TestCertSource, type TestCA } from './test-ca.js';

const SDS = { apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }] }, resourceApiVersion: 'V3' };
const ROUTER = [{ name: 'envoy.filters.http.router', typedConfig: { '@type': TYPE_URL.router } }];
const SERVER_ID = 'spiffe://cluster.local/ns/test/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/test/sa/client';

function downstreamTls(requireClientCertificate: boolean, alpn: string[] = ['h2', 'http/1.1']): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': TYPE_URL.downstreamTlsContext,
      requireClientCertificate: { value: requireClientCertificate },
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: [{ name: 'default', sdsConfig: SDS }],
        combinedValidationContext: {
          defaultValidationContext: { matchSubjectAltNames: [{ prefix: 'spiffe://cluster.local/' }] },
          validationContextSdsSecretConfig: { name: 'ROOTCA', sdsConfig: SDS },
        },
        alpnProtocols: alpn,
      },
    },
  };
}

function directChain(name: string, match: object, transportSocket?: object): object {
  return {
    name, filterChainMatch: match, ...(transportSocket ? { transportSocket } : {}),
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: name,
        routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, directResponse: { status: 200, body: { inlineString: name } } }] }] },
        httpFilters: ROUTER,
      },
    }],
  };
}

function appChain(name: string, match: object, xfcc: string, transportSocket?: object): object {
  return {
    name, filterChainMatch: match, ...(transportSocket ? { transportSocket } : {}),
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typedConfig: {
        '@type': TYPE_URL.httpConnectionManager, statPrefix: name, forwardClientCertDetails: xfcc,
        setCurrentClientCertDetails: { subject: { value: true }, dns: true, uri: true },
        routeConfig: { name, virtualHosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
        httpFilters: ROUTER,
      },
    }],
  };
}

interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

function readReply(res: http.IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    res.on('error', reject);
  });
}

describe('filter chain matching and downstream TLS', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let ca: TestCA;
  let other: TestCA;
  let source: TestCertSource;
  let app: Awaited<ReturnType<typeof startApp>>;
  let port = 0;
  // The test's "original destination": chosen by the client's source address.
  const dstBySource = new Map<string, { address: string; port: number }>();
  let clientCert: { certPem: string; keyPem: string };
  let foreignCert: { certPem: string; keyPem: string };
  let wrongSanCert: { certPem: string; keyPem: string };

  const to = (srcIp: string, dstPort: number, dstIp = '127.0.0.1'): { localAddress: string } => {
    dstBySource.set(srcIp, { address: dstIp, port: dstPort });
    return { localAddress: srcIp };
  };

  function plainGet(src: string, dstPort: number, headers: Record<string, string> = {}, dstIp?: string): Promise<Reply> {
    const { localAddress } = to(src, dstPort, dstIp);
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, localAddress, path: '/', headers: { host: 'svc', ...headers }, agent: false }, (res) => { readReply(res).then(resolve, reject); });
      req.on('error', reject);
      req.end();
    });
  }

  function tlsOptions(cert: { certPem: string; keyPem: string } | undefined, extra: tls.ConnectionOptions = {}): tls.ConnectionOptions {
    return {
      ca: [ca.rootPem], ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      // Workload certificates carry only a SPIFFE URI: check that instead of a host name.
      checkServerIdentity: (_h, c) => (c.subjectaltname?.includes(SERVER_ID) ? undefined : new Error(`unexpected server ${c.subjectaltname}`)),
      ...extra,
    };
  }

  function tlsGet(src: string, dstPort: number, cert: { certPem: string; keyPem: string } | undefined, extra: tls.ConnectionOptions = {}, headers: Record<string, string> = {}): Promise<Reply & { alpn: string | false | null; serial: string }> {
    const { localAddress } = to(src, dstPort);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), ...tlsOptions(cert, extra) });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        const serial = socket.getPeerCertificate().serialNumber;
        const alpn = socket.alpnProtocol;
        const req = http.request({ createConnection: () => socket, path: '/', headers: { host: 'svc', ...headers } }, (res) => {
          readReply(res).then((r) => { socket.destroy(); resolve({ ...r, alpn, serial }); }, reject);
        });
        req.on('error', reject);
        req.end();
      });
    });
  }

  /** Resolves 'closed' if the proxy closes the connection without answering. */
  function expectClosed(socket: net.Socket, write?: string): Promise<string> {
    return new Promise((resolve) => {
      let got = '';
      socket.on('data', (c: Buffer) => { got += c.toString(); });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(got === '' ? 'closed' : got));
      if (write) socket.write(write);
    });
  }

  before(async () => {
    [ca, other] = await Promise.all([makeTestCA(), makeTestCA('other.domain')]); 
    source = new TestCertSource(SERVER_ID, ca);
    await source.rotate();
    [clientCert, foreignCert, wrongSanCert] = await Promise.all([
      ca.issue([CLIENT_ID]), other.issue([CLIENT_ID]), ca.issue(['spiffe://evil.example/ns/x/sa/y']),
    ]);
    app = await startApp('app'); 
    port = await freePort();
    const adsPort = await ads.listen();
    const listener = {
      name: 'virtualInbound', address: { socketAddress: { address: '127.0.0.1', portValue: port } }, trafficDirection: 'INBOUND',
      listenerFilters: [
        { name: 'envoy.filters.listener.original_dst' }, { name: 'envoy.filters.listener.tls_inspector' }, { name: 'envoy.filters.listener.http_inspector' },
      ],
      listenerFiltersTimeout: { nanos: 400_000_000 },
      filterChains: [
        appChain('permissive-tls', { destinationPort: { value: 9080 }, transportProtocol: 'tls' }, 'APPEND_FORWARD', downstreamTls(true)),
        appChain('permissive-plain', { destinationPort: { value: 9080 }, transportProtocol: 'raw_buffer' }, 'SANITIZE'),
        directChain('strict-tls', { destinationPort: { value: 9090 }, transportProtocol: 'tls' }, downstreamTls(true)),
        directChain('sni-exact', { destinationPort: { value: 9100 }, serverNames: ['api.example.com'] }, downstreamTls(false)),
        directChain('sni-wildcard', { destinationPort: { value: 9100 }, serverNames: ['*.example.com'] }, downstreamTls(false)),
        directChain('sni-none', { destinationPort: { value: 9100 }, transportProtocol: 'tls' }, downstreamTls(false)),
        directChain('alpn-h2c', { destinationPort: { value: 9200 }, applicationProtocols: ['h2c'] }),
        directChain('alpn-http11', { destinationPort: { value: 9200 }, applicationProtocols: ['http/1.1'] }),
        directChain('ip-8', { destinationPort: { value: 9300 }, prefixRanges: [{ addressPrefix: '127.0.0.0', prefixLen: { value: 8 } }] }),
        directChain('ip-32', { destinationPort: { value: 9300 }, prefixRanges: [{ addressPrefix: '127.0.0.1', prefixLen: { value: 32 } }] }),
        directChain('src-4', { destinationPort: { value: 9400 }, sourcePrefixRanges: [{ addressPrefix: '127.0.0.4', prefixLen: { value: 32 } }] }),
        directChain('src-any', { destinationPort: { value: 9400 } }),
        directChain('portless', {}),
      ],
    };
    ads.setAll('1', { [TYPE_URL.cluster]: [staticCluster('app', '127.0.0.1', app.port)], [TYPE_URL.listener]: [listener] });
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${adsPort}`,
      identity: { podName: 'server-1', namespace: 'test', instanceIp: '127.0.0.1', serviceAccount: 'server', workloadName: 'server', labels: { app: 'server' }, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined,
      log: () => undefined,
      tlsSecrets: source,
      originalDst: (s) => dstBySource.get((s.remoteAddress ?? '').replace(/^::ffff:/, '')) ?? { address: '127.0.0.1', port: s.localPort ?? 0 },
    });
    await sidecar.start(); 
    await waitFor('listener ACK', () => ads.acked(TYPE_URL.listener, '1'));
    
    await sidecar.settled();
    
  });

  after(async () => {
    await sidecar?.stop();
    await ads.close();
    if (app) await closeServer(app.server);
  });

  it('PERMISSIVE port: plaintext takes the raw_buffer chain, whose XFCC is sanitized', async () => {
    const r = await plainGet('127.0.0.2', 9080, { 'x-forwarded-client-cert': 'By=spiffe://forged' });
    assert.equal(r.status, 200);
    assert.match(r.body, /^app GET \//);
    assert.equal(app.seen.at(-1)?.['x-forwarded-client-cert'], undefined);
  });

  it('PERMISSIVE port: mTLS takes the tls chain and the app sees XFCC (APPEND_FORWARD)', async () => {
    const r = await tlsGet('127.0.0.2', 9080, clientCert, { ALPNProtocols: ['http/1.1'] }, { 'x-forwarded-client-cert': 'By=spiffe://earlier;Hash=00' });
    assert.equal(r.status, 200);
    assert.equal(r.alpn, 'http/1.1');
    const hash = createHash('sha256').update(new X509Certificate(clientCert.certPem).raw).digest('hex');
    assert.equal(app.seen.at(-1)?.['x-forwarded-client-cert'], `By=spiffe://earlier;Hash=00,By=${SERVER_ID};Hash=${hash};Subject="";URI=${CLIENT_ID}`);
  });

  it('STRICT port: plaintext matches no chain and is closed (no fallback to the port-less chain)', async () => {
    const { localAddress } = to('127.0.0.3', 9090);
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    assert.equal(await expectClosed(socket, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 'closed');
    // A port without chains of its own does use the port-less chain.
    assert.equal((await plainGet('127.0.0.3', 7777)).body, 'portless');
  });

  it('STRICT port: mTLS is served; no client cert, a foreign root or a wrong SAN is refused', async () => {
    assert.equal((await tlsGet('127.0.0.3', 9090, clientCert)).body, 'strict-tls');
    await assert.rejects(tlsGet('127.0.0.3', 9090, undefined));
    await assert.rejects(tlsGet('127.0.0.3', 9090, foreignCert));
    await assert.rejects(tlsGet('127.0.0.3', 9090, wrongSanCert));
  });

  it('server names: exact beats wildcard, wildcard needs a subdomain, no SNI falls to the chain without names', async () => {
    assert.equal((await tlsGet('127.0.0.5', 9100, undefined, { servername: 'api.example.com' })).body, 'sni-exact');
    assert.equal((await tlsGet('127.0.0.5', 9100, undefined, { servername: 'web.example.com' })).body, 'sni-wildcard');
    assert.equal((await tlsGet('127.0.0.5', 9100, undefined, { servername: 'example.com' })).body, 'sni-none');
    assert.equal((await tlsGet('127.0.0.5', 9100, undefined)).body, 'sni-none');
  });

  it('ALPN: h2 over TLS reaches the HTTP connection manager; a client ALPN with no overlap still completes the handshake', async () => {
    const { localAddress } = to('127.0.0.6', 9090);
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ...tlsOptions(clientCert), ALPNProtocols: ['h2'],
      createConnection: () => tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), ...tlsOptions(clientCert), ALPNProtocols: ['h2'] }),
    });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':path': '/', ':authority': 'svc' });
        let b = '';
        s.on('data', (c: Buffer) => { b += c.toString(); });
        s.on('end', () => resolve(b));
        s.on('error', reject);
      });
      assert.equal(body, 'strict-tls');
      assert.equal((session.socket as tls.TLSSocket).alpnProtocol, 'h2');
    } finally {
      session.close();
    }
    const r = await tlsGet('127.0.0.6', 9090, clientCert, { ALPNProtocols: ['spdy/1'] });
    assert.equal(r.alpn, false);
    assert.equal(r.body, 'strict-tls');
  });

  it('application protocols from http_inspector: h2c and http/1.1 choose different chains', async () => {
    assert.equal((await plainGet('127.0.0.7', 9200)).body, 'alpn-http11');
    const { localAddress } = to('127.0.0.8', 9200);
    const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress }) });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        let b = '';
        s.on('data', (c: Buffer) => { b += c.toString(); });
        s.on('end', () => resolve(b));
        s.on('error', reject);
      });
      assert.equal(body, 'alpn-h2c');
    } finally {
      session.close();
    }
  });

  it('destination IP: the longest prefix wins; source IP: a matching source range beats none', async () => {
    assert.equal((await plainGet('127.0.0.9', 9300, {}, '127.0.0.1')).body, 'ip-32');
    assert.equal((await plainGet('127.0.0.9', 9300, {}, '127.0.0.77')).body, 'ip-8');
    assert.equal((await plainGet('127.0.0.4', 9400)).body, 'src-4');
    assert.equal((await plainGet('127.0.0.10', 9400)).body, 'src-any');
  });

  it('a connection that sends nothing is closed when listenerFiltersTimeout fires', async () => {
    const { localAddress } = to('127.0.0.11', 9080);
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    assert.equal(await expectClosed(socket), 'closed');
    assert.ok(Date.now() - started >= 300, 'closed by the inspector timeout, not at once');
  });

  it('a rotated certificate is used for new handshakes while an established connection keeps working', async () => {
    const { localAddress } = to('127.0.0.12', 9090);
    const socket = tls.connect({ socket: net.connect({ host: '127.0.0.1', port, localAddress }), ...tlsOptions(clientCert), ALPNProtocols: ['http/1.1'] });
    await new Promise<void>((resolve, reject) => { socket.once('secureConnect', () => resolve()); socket.once('error', reject); });
    const oldSerial = socket.getPeerCertificate().serialNumber;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: () => net.Socket }).createConnection = () => socket;
    const viaOld = (): Promise<Reply> => new Promise((resolve, reject) => {
      const req = http.request({ agent, path: '/', headers: { host: 'svc' } }, (res) => { readReply(res).then(resolve, reject); });
      req.on('error', reject);
      req.end();
    });
    assert.equal((await viaOld()).body, 'strict-tls');
    const rotated = await source.rotate();
    const fresh = await tlsGet('127.0.0.13', 9090, clientCert);
    assert.equal(fresh.serial.toLowerCase(), rotated.serialNumber.toLowerCase());
    assert.notEqual(fresh.serial, oldSerial);
    assert.equal((await viaOld()).body, 'strict-tls', 'the connection made before the rotation still works');
    assert.equal(socket.getPeerCertificate().serialNumber, oldSerial);
    agent.destroy();
    socket.destroy();
  });

  it('NACKs bad filter chain matches and TLS contexts with the field path, keeping the last good config', async () => {
    const bad = {
      name: 'bad', address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
      filterChains: [
        { ...(directChain('x', { serverNames: ['foo.*.com'], sourcePorts: [70000] }) as object) },
        { ...(directChain('y', {}, { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': TYPE_URL.downstreamTlsContext, commonTlsContext: { tlsCertificateSdsSecretConfigs: [{ name: 'file-cert:/x', sdsConfig: SDS }] } } }) as object) },
      ],
    };
    ads.set(TYPE_URL.listener, '2', [bad]);
    await waitFor('NACK', () => ads.nacks(TYPE_URL.listener).length > 0);
    const msg = ads.nacks(TYPE_URL.listener).at(-1)?.errorDetail?.message ?? '';
    assert.match(msg, /filterChains\[0\]\.filterChainMatch\.serverNames\[0\]/);
    assert.match(msg, /filterChains\[0\]\.filterChainMatch\.sourcePorts\[0\]/);
    assert.match(msg, /filterChains\[1\]\.transportSocket\.typedConfig\.commonTlsContext\.tlsCertificateSdsSecretConfigs\[0\]\.name/);
    assert.equal((await tlsGet('127.0.0.3', 9090, clientCert)).body, 'strict-tls');
  });
});
