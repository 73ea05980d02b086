// The sidecar's status port answers the app's rewritten probes by probing the app on its pod
// IP as the original probe asked (HTTP path, headers, scheme; TCP connect), through a real
// Sidecar and real sockets. The "pod IP" is 127.0.0.93 (any 127/8 address is local), and the
// apps listen only there: a probe sent to 127.0.0.1 would be refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Sidecar } from '../../proxy/sidecar.js';
import { legacyLocalhostFromEnv, parseAppProbers } from '../../proxy/health/app-probes.js';
import { generateServingCertificate } from '../../api/tls/serving-cert.js';
import { TestAdsServer } from './ads-server.js';
import { closeServer, freePort } from './fixtures.js';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

const POD_IP = '127.0.0.93';

function listen(server: net.Server, host = POD_IP): Promise<number> {
  return new Promise((r) => server.listen(0, host, () => r((server.address() as AddressInfo).port)));
}

describe('app probes through the sidecar status port', () => {
  const ads = new TestAdsServer();
  let sidecar: Sidecar;
  let appStatus = 200;
  const seen: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const sources: string[] = [];
  const app = http.createServer((req, res) => { seen.push(req.headers); paths.push(req.url ?? ''); sources.push(req.socket.remoteAddress ?? ''); res.writeHead(appStatus).end('app\n'); });
  const cert = generateServingCertificate({ dnsNames: ['localhost'], ipAddresses: [POD_IP], caName: 'probe-test-ca' });
  const tlsApp = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.writeHead(204).end());
  const tcpApp = net.createServer((s) => s.end());
  let closedPort = 0;

  before(async () => {
    const [appPort, tlsPort, tcpPort] = [await listen(app), await listen(tlsApp), await listen(tcpApp)];
    closedPort = await freePort();
    await ads.listen();
    const probers = parseAppProbers(JSON.stringify({
      '/app-health/web/livez': { httpGet: { path: '/live?deep=1', port: appPort, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, timeoutSeconds: 2 },
      '/app-health/web/startupz': { httpGet: { path: '/start', port: tlsPort, scheme: 'HTTPS' }, timeoutSeconds: 2 },
      '/app-health/web/readyz': { tcpSocket: { port: tcpPort }, timeoutSeconds: 2 },
      '/app-health/down/readyz': { tcpSocket: { port: closedPort }, timeoutSeconds: 1 },
    }));
    sidecar = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'probe-1', namespace: 'default', instanceIp: POD_IP, serviceAccount: 'p', workloadName: 'p', labels: {}, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined, log: () => undefined, onQuit: () => undefined,
      appProbes: probers,
    });
    await sidecar.start();
  });

  after(async () => {
    await sidecar?.stop();
    await ads.close();
    await Promise.all([closeServer(app), closeServer(tlsApp), closeServer(tcpApp)]);
  });

  it('forwards an HTTP probe with its path and headers and returns the app status', async () => {
    const port = sidecar.ports!.readiness;
    assert.equal((await get(port, '/app-health/web/livez')).status, 200);
    assert.equal(paths.at(-1), '/live?deep=1');
    assert.equal(seen.at(-1)?.['x-probe'], 'yes');
    appStatus = 503;
    assert.equal((await get(port, '/app-health/web/livez')).status, 503);
    appStatus = 200;
  });

  it('probes the pod IP from 127.0.0.6 (the source interception never captures), as Istio\'s agent does', async () => {
    assert.equal((await get(sidecar.ports!.readiness, '/app-health/web/livez')).status, 200);
    assert.equal(sources.at(-1), '127.0.0.6');
  });

  it('with REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION probes 127.0.0.1 instead, where an app bound to the pod IP is not', async () => {
    const legacy = new Sidecar({
      pilotAddress: `127.0.0.1:${ads.port}`,
      identity: { podName: 'probe-2', namespace: 'default', instanceIp: POD_IP, serviceAccount: 'p', workloadName: 'p', labels: {}, domain: 'cluster.local' },
      ports: { admin: 0, prometheus: 0, readiness: 0 },
      accessLog: () => undefined, log: () => undefined, onQuit: () => undefined,
      appProbes: parseAppProbers(JSON.stringify({ '/app-health/web/livez': { httpGet: { path: '/live', port: (app.address() as AddressInfo).port }, timeoutSeconds: 2 } })),
      legacyLocalhostProbes: legacyLocalhostFromEnv({ REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: 'true' }),
    });
    await legacy.start();
    try {
      const res = await get(legacy.ports!.readiness, '/app-health/web/livez');
      assert.equal(res.status, 500);
      assert.match(res.body, /ECONNREFUSED 127\.0\.0\.1:/);
    } finally {
      await legacy.stop();
    }
    assert.throws(() => legacyLocalhostFromEnv({ REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: 'yes please' }), /REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: "yes please" is not a boolean/);
  });

  it('probes an HTTPS app over TLS without verifying it, as the kubelet does', async () => {
    assert.equal((await get(sidecar.ports!.readiness, '/app-health/web/startupz')).status, 204);
  });

  it('answers a TCP probe by connecting: 200 when the port accepts, 500 when refused', async () => {
    assert.equal((await get(sidecar.ports!.readiness, '/app-health/web/readyz')).status, 200);
    const down = await get(sidecar.ports!.readiness, '/app-health/down/readyz');
    assert.equal(down.status, 500);
    assert.match(down.body, /ECONNREFUSED/);
  });

  it('404s a path with no registered probe, and keeps /healthz/ready', async () => {
    assert.equal((await get(sidecar.ports!.readiness, '/app-health/other/livez')).status, 404);
    assert.ok([200, 503].includes((await get(sidecar.ports!.readiness, '/healthz/ready')).status));
  });

  it('rejects a malformed ISTIO_KUBE_APP_PROBERS naming the entry and field', () => {
    assert.throws(() => parseAppProbers('{"/app-health/a/livez":{"httpGet":{"port":"x"}}}'), /\/app-health\/a\/livez\.httpGet\.port: must be a port number/);
    assert.throws(() => parseAppProbers('{"/x":{"tcpSocket":{"port":1}}}'), /does not start with \/app-health\//);
    assert.throws(() => parseAppProbers('{"/app-health/a/livez":{}}'), /needs httpGet or tcpSocket/);
  });
});
