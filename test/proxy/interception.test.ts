// Real interception: `istio-iptables` writes nat rules in a pod's network namespace, the
// sidecar runs there as UID 1337, and traffic from the app (to a service IP that exists
// only in xDS) and from another pod (to the app's port) is captured and routed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TYPE_URL } from '../../api/xds/protos.js';
import { repoRoot } from '../../proxy/interception/original-dst.js';
import { TestAdsServer } from './ads-server.js';
import {
  assignment, edsCluster, originalDstCluster, outboundCluster, routeConfiguration, serviceListener, staticCluster,
  virtualHost, virtualInbound, virtualOutbound, waitFor,
} from './fixtures.js';
import { BRIDGE_IP, missingPrerequisite, runIn, startIn, stop, TestNetwork, type Pod, type Started } from './netns.js';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'dist', 'proxy', 'cli.js');
const ADDON = path.join(ROOT, 'proxy', 'native', 'build', 'Release', 'original_dst.node');
const SERVICE_IP = '10.252.0.200';
const SVC_B = { fqdn: 'svc-b.tpx.svc.cluster.local', port: 80, clusterIP: SERVICE_IP };

// An app that says who it is and who called it (the caller's address shows whether the proxy was in the path).
const APP = (name: string, port: number): string[] => ['node', '-e', `
require('http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ app: '${name}', remote: req.socket.remoteAddress, path: req.url, host: req.headers.host }));
}).listen(${port}, '0.0.0.0', () => console.log('listening'));`];

const FETCH = (url: string): string[] => ['node', '-e', `
fetch(${JSON.stringify(url)}).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))
  .catch((e) => { console.log(JSON.stringify({ error: String(e.cause ?? e) })); process.exit(1); });`];

const TCP_ROUNDTRIP = (host: string, port: number): string[] => ['node', '-e', `
const s = require('net').connect(${port}, ${JSON.stringify(host)}, () => s.write('GET /tcp HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n'));
let out = ''; s.on('data', (c) => out += c); s.on('end', () => console.log(JSON.stringify({ raw: out })));
s.on('error', (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });`];

const skip = missingPrerequisite() ?? (fs.existsSync(ADDON) ? undefined : `native addon not built (${ADDON})`)
  ?? (fs.existsSync(CLI) ? undefined : `${CLI} not built`);

describe('interception in network namespaces', { skip }, () => {
  const net = new TestNetwork();
  const ads = new TestAdsServer();
  const started: Started[] = [];
  let podA: Pod;
  let podB: Pod;
  let sidecar: Started | undefined;
  let iptablesOut = '';

  before(async () => {
    net.setUp();
    podA = net.addPod('a', '10.252.0.10');
    podB = net.addPod('b', '10.252.0.11');
    const adsPort = await ads.listen(BRIDGE_IP, 0);
    const c = outboundCluster(80, SVC_B.fqdn);
    ads.setAll('1', {
      [TYPE_URL.cluster]: [
        edsCluster(c), originalDstCluster('PassthroughCluster'), originalDstCluster('InboundPassthroughCluster'),
        staticCluster('inbound|8080||', '127.0.0.1', 8080),
      ],
      [TYPE_URL.clusterLoadAssignment]: [assignment(c, [[podB.ip, 9090]])],
      [TYPE_URL.listener]: [virtualOutbound('0.0.0.0', 15001), serviceListener(80), virtualInbound('0.0.0.0', 15006, [8080])],
      [TYPE_URL.routeConfiguration]: [routeConfiguration(80, [virtualHost(SVC_B, { cluster: c })])],
    });

    // The init container step, as root in the pod's namespace.
    const init = runIn(podA.ns, ['node', CLI, 'istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337',
      '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020,15000']);
    assert.equal(init.status, 0, `istio-iptables failed: ${init.stderr}`);
    iptablesOut = init.stdout;

    started.push(startIn(podA.ns, APP('app-a', 8080)), startIn(podB.ns, APP('app-b', 9090)));
    sidecar = startIn(podA.ns, ['setpriv', '--reuid', '1337', '--regid', '1337', '--clear-groups', 'node', CLI, 'proxy', 'sidecar'], {
      PILOT_ADDRESS: `${BRIDGE_IP}:${adsPort}`,
      POD_NAME: 'app-a-1',
      POD_NAMESPACE: 'tpx',
      INSTANCE_IP: podA.ip,
      SERVICE_ACCOUNT: 'app-a',
      ISTIO_META_WORKLOAD_NAME: 'app-a',
      TRELLIS_POD_LABELS: JSON.stringify({ app: 'app-a', version: 'v7' }),
    });
    started.push(sidecar);
    // Readiness is reachable from outside the pod: 15021 is excluded from capture.
    await waitFor('sidecar ready', async () => {
      try {
        return (await fetch(`http://${podA.ip}:15021/healthz/ready`)).status === 200;
      } catch {
        return false;
      }
    }, 20_000).catch((e: Error) => { throw new Error(`${e.message}\nsidecar output:\n${sidecar?.output()}`); });
    await waitFor('apps listening', () => started.slice(0, 2).every((s) => s.output().includes('listening')));
  });

  after(async () => {
    for (const s of started) await stop(s).catch(() => undefined);
    await ads.close().catch(() => undefined);
    net.tearDown();
  });

  it('istio-iptables applied Istio-shaped nat rules and printed them', () => {
    assert.match(iptablesOut, /-A PREROUTING -p tcp -j ISTIO_INBOUND/);
    assert.match(iptablesOut, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    const rules = runIn(podA.ns, ['iptables', '-t', 'nat', '-S']).stdout;
    for (const want of [
      '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    ]) assert.ok(rules.includes(want), `missing rule: ${want}\n${rules}`);
  });

  it('captures the app\'s request to a service IP known only to xDS and routes it (SO_ORIGINAL_DST)', () => {
    const r = runIn(podA.ns, FETCH(`http://${SERVICE_IP}/hello`));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const reply = JSON.parse(r.stdout) as { status: number; body: string };
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body) as { app: string; remote: string; host: string };
    assert.equal(body.app, 'app-b');
    assert.equal(body.host, SERVICE_IP, 'Host header kept');
    assert.equal(body.remote, podA.ip);
  });

  it('passes traffic to an address without a listener straight through (as UID 1337, not re-captured)', () => {
    const r = runIn(podA.ns, TCP_ROUNDTRIP(podB.ip, 9090));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match((JSON.parse(r.stdout) as { raw: string }).raw, /"app":"app-b"/);
  });

  it('sends inbound traffic from another namespace through 15006 to the app on loopback', () => {
    const r = runIn(podB.ns, FETCH(`http://${podA.ip}:8080/in`));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const reply = JSON.parse(r.stdout) as { status: number; body: string };
    assert.equal(reply.status, 200);
    const body = JSON.parse(reply.body) as { app: string; remote: string };
    assert.equal(body.app, 'app-a');
    assert.equal(body.remote, '127.0.0.1', 'the app was called by the proxy on loopback');
  });

  it('counts both directions in istio_requests_total', async () => {
    const text = await (await fetch(`http://${podA.ip}:15090/stats/prometheus`)).text();
    assert.match(text, /istio_requests_total\{reporter="source",source_workload="app-a",source_workload_namespace="tpx",[^}]*destination_service="svc-b.tpx.svc.cluster.local"[^}]*response_code="200"[^}]*\} 1/);
    assert.match(text, /istio_requests_total\{reporter="destination",[^}]*destination_workload="app-a"[^}]*destination_version="v7"[^}]*response_code="200"[^}]*\} 1/);
    assert.match(text, /istio_tcp_connections_opened_total\{reporter="source"[^}]*\} 1/);
    assert.match(sidecar?.output() ?? '', /"GET \/hello HTTP\/1.1" 200 - .*outbound\|80\|\|svc-b.tpx.svc.cluster.local/);
  });

  it('cleanup removes the rules', () => {
    const r = runIn(podA.ns, ['node', CLI, 'cleanup']);
    assert.equal(r.status, 0, r.stderr);
    const rules = runIn(podA.ns, ['iptables', '-t', 'nat', '-S']).stdout;
    assert.ok(!rules.includes('ISTIO'), rules);
  });
});
