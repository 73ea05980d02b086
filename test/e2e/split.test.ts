// The walking skeleton end to end: `trellis up` in a fresh data directory and name prefix
// starts a cluster, installs the mesh from install/ and the split sample; requests from the
// client pod to http://web go through both sidecars and split 80/20; a changed
// VirtualService is observed as 50/50 within 5 s with no process restarted; Ctrl-C leaves
// nothing behind on the machine.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Applier, KubeClient, R, readManifests, type Pod } from '../../api/kube/index.js';
import { trellisHome } from '../../cli/paths.js';
import { hasCommand, leftovers, networkSkipReason } from '../support/host.js';

const PREFIX = 'tte2e';
const POD_CIDR = '10.245.0.0/16';
const SERVICE_CIDR = '10.97.0.0/16';
const API_PORT = 16443;
const skip = networkSkipReason();

interface Fanout { total: number; ok: number; errors: number; byVersion: Record<string, number>; byStatus: Record<string, number>; errorSamples?: string[] }

describe('walking skeleton: trellis up, weighted split end to end', { skip, timeout: 600_000 }, () => {
  const home = trellisHome();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-e2e-'));
  let up: ChildProcess | undefined;
  let output = '';
  let client: KubeClient;
  let clientPodIP = '';

  before(async () => {
    up = await startUp([]);
    client = KubeClient.fromKubeconfig(path.join(dataDir, 'kubeconfig'), 'e2e-test');
  });

  /** Starts `trellis up` on this test's data dir and prefix; resolves once it prints READY. */
  async function startUp(extra: string[]): Promise<ChildProcess> {
    output = '';
    const proc = spawn(process.execPath, [path.join(home, 'dist/cli/trellis.js'), 'up', '--data-dir', dataDir, '--name', PREFIX,
      '--port', String(API_PORT), '--pod-cidr', POD_CIDR, '--service-cidr', SERVICE_CIDR, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`trellis up not READY after 240 s:\n${output.slice(-6000)}`)), 240_000);
      const check = (): void => { if (output.includes('READY')) { clearTimeout(timer); resolve(); } };
      proc.stdout?.on('data', check);
      proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`trellis up exited with ${code}:\n${output.slice(-6000)}`)); });
    });
    return proc;
  }

  async function stopUp(): Promise<number | null> {
    assert.ok(up);
    const proc = up;
    proc.kill('SIGINT');
    return new Promise<number | null>((r) => { if (proc.exitCode !== null) r(proc.exitCode); else proc.once('exit', (c) => r(c)); });
  }

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGINT');
      await new Promise((r) => { const t = setTimeout(r, 60_000); up?.once('exit', () => { clearTimeout(t); r(undefined); }); });
      if (up.exitCode === null) up.kill('SIGKILL');
    }
    // Also after a failure: nothing with the prefix may stay on the machine.
    try { execFileSync(process.execPath, [path.join(home, 'dist/cli/trellis.js'), 'down', '--purge', '--name', PREFIX], { stdio: 'ignore' }); } catch { /* reported below */ }
    await client?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('injects the sidecar and its init container into the sample pods', async () => {
    const pods = await client.list<Pod>(R.pods, { namespace: 'demo' });
    assert.equal(pods.items.length, 3, `three sample pods (client, web-v1, web-v2): ${pods.items.map((p) => p.metadata.name).join(', ')}`);
    for (const p of pods.items) {
      const inits = (p.spec.initContainers ?? []).map((c) => c.name);
      assert.ok(inits.includes('istio-init'), `${p.metadata.name} has istio-init`);
      assert.ok(inits.includes('istio-proxy'), `${p.metadata.name} has the istio-proxy sidecar`);
      assert.equal(p.status?.phase, 'Running', `${p.metadata.name} is running`);
      assert.match(p.status?.podIP ?? '', /^10\.245\.0\./);
    }
    const clientPod = pods.items.find((p) => p.metadata.labels?.app === 'client');
    assert.ok(clientPod?.status?.podIP);
    clientPodIP = clientPod.status.podIP;
  });

  it('splits 1000 requests 80/20 through both sidecars, over automatic mTLS', async () => {
    const before = await sidecarCounters();
    const res = await fanout(1000);
    assert.equal(res.ok, 1000, `all requests succeed: ${JSON.stringify(res)}`);
    const v1 = (res.byVersion.v1 ?? 0) / res.total;
    assert.ok(Math.abs(v1 - 0.8) <= 0.05, `v1 share ${v1} is 0.80 ± 0.05 (${JSON.stringify(res.byVersion)})`);
    const afterCounts = await sidecarCounters();
    assert.ok(afterCounts.source - before.source >= 1000, `the client's sidecar counted them outbound (${afterCounts.source - before.source})`);
    // The kubelet's readiness probes also pass through the inbound sidecar (probe rewriting
    // to the agent port is issue 7), so allow a few requests more than the client sent.
    for (const v of ['v1', 'v2']) {
      const inbound = afterCounts.destination[v] - before.destination[v];
      const sent = res.byVersion[v] ?? 0;
      assert.ok(inbound >= sent && inbound <= sent + 10, `web-${v} sidecar counted the ${sent} ${v} answers inbound (counted ${inbound})`);
    }
    const mtls = afterCounts.mutualTlsFromDemo - before.mutualTlsFromDemo;
    assert.ok(mtls >= 1000, `the 1000 requests arrived over mutual TLS with the client's SPIFFE identity, without any DestinationRule tls (counted ${mtls})`);
  });

  it('serves the sample from the host through the ingress gateway, split 80/20 by the Gateway-bound VirtualService', async (t) => {
    const url = /ingress gateway: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)?.[1];
    assert.ok(url, `trellis up prints the ingress gateway URL:\n${output.slice(-2000)}`);
    assert.match(output, new RegExp(`curl ${url.replace(/[.]/g, '\\.')}`), 'and how to curl it');
    const byVersion: Record<string, number> = {};
    const n = 400;
    for (let i = 0; i < n; i++) {
      const res: Response = await fetch(url);
      assert.equal(res.status, 200, `request ${i} through the gateway`);
      const reply = await res.json() as { service: string; version: string; namespace: string };
      assert.equal(reply.service, 'web');
      byVersion[reply.version] = (byVersion[reply.version] ?? 0) + 1;
    }
    const v1 = (byVersion.v1 ?? 0) / n;
    t.diagnostic(`ingress split: ${JSON.stringify(byVersion)} (v1 share ${v1})`);
    assert.ok(Math.abs(v1 - 0.8) <= 0.07, `v1 share ${v1} is 0.80 ± 0.07 (${JSON.stringify(byVersion)})`);
    const gw = (await client.list<Pod>(R.pods, { namespace: 'trellis-system' })).items.find((p) => p.metadata.labels?.istio === 'ingressgateway');
    assert.ok(gw, 'the gateway pod runs in trellis-system');
    assert.deepEqual((gw.spec.initContainers ?? []).map((c) => c.name), [], 'the gateway is not injected');
  });

  it('trellis proxy-status shows every sample proxy SYNCED on all four xDS types', () => {
    const out = execFileSync(process.execPath, [path.join(home, 'dist/cli/trellis.js'), 'proxy-status', '--kubeconfig', path.join(dataDir, 'kubeconfig')], { encoding: 'utf8' });
    for (const app of ['demo/client-', 'demo/web-v1-', 'demo/web-v2-']) {
      const line = out.split('\n').find((l) => l.startsWith(app));
      assert.ok(line, `a row for ${app}*:\n${out}`);
      assert.equal(line.split(/\s+/).slice(1, 5).join(' '), 'SYNCED SYNCED SYNCED SYNCED', line);
    }
  });

  it('answers kubectl: get -o wide, logs of the app and of the sidecar, rollout status, describe', { skip: hasCommand('kubectl') ? undefined : 'kubectl is not installed' }, () => {
    const kubectl = (...args: string[]): string => execFileSync('kubectl', ['--kubeconfig', path.join(dataDir, 'kubeconfig'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const wide = kubectl('get', 'pods', '-n', 'demo', '-o', 'wide');
    assert.match(wide, /web-v1-\S+\s+\d\/\d\s+Running/);
    assert.match(wide, /10\.245\.0\.\d+/);
    const web = kubectl('get', 'pods', '-n', 'demo', '-l', 'app=web,version=v1', '-o', 'jsonpath={.items[0].metadata.name}');
    assert.match(kubectl('logs', '-n', 'demo', web, '-c', 'web'), /sample-http web v1 listening/);
    assert.match(kubectl('logs', '-n', 'demo', web, '-c', 'istio-proxy', '--tail', '5'), /\S/);
    // The sidecar obtained its workload certificate from pilot's CA before it reported ready.
    assert.match(kubectl('logs', '-n', 'demo', web, '-c', 'istio-proxy'), /certificate issued for spiffe:\/\/cluster\.local\/ns\/demo\/sa\/default/);
    assert.match(kubectl('rollout', 'status', 'deployment/web-v1', '-n', 'demo', '--timeout', '30s'), /successfully rolled out/);
    assert.match(kubectl('describe', 'pod', '-n', 'demo', web), /istio-proxy/);
  });

  it('rejects an invalid VirtualService at apply time, naming the object and the field', async () => {
    const bad = {
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad-weights', namespace: 'demo' },
      spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web', subset: 'v1' }, weight: 70 }, { destination: { host: 'web', subset: 'v2' }, weight: 20 }] }] },
    };
    await assert.rejects(client.create(R.virtualServices, bad), (e: Error) => {
      assert.match(e.message, /bad-weights/);
      assert.match(e.message, /http\[0\]\.route/);
      return true;
    });
    assert.equal(await client.find(R.virtualServices, 'bad-weights', 'demo'), undefined, 'nothing was stored');
  });

  it('observes a changed VirtualService (50/50) within 5 s, with no process restarted', async () => {
    const podsBefore = await client.list<Pod>(R.pods, {});
    const manifest = path.join(home, 'samples/split/virtualservice-50-50.yaml');
    const changedAt = Date.now();
    // The way a user changes it: kubectl apply (the trellis applier where kubectl is absent).
    if (hasCommand('kubectl')) execFileSync('kubectl', ['--kubeconfig', path.join(dataDir, 'kubeconfig'), 'apply', '-f', manifest], { stdio: 'pipe' });
    else await new Applier(client).applyAll(readManifests(manifest));
    let seenAt = 0;
    while (Date.now() - changedAt < 10_000) {
      const probe = await fanout(100);
      if ((probe.byVersion.v2 ?? 0) >= 35) { seenAt = Date.now(); break; }
    }
    assert.ok(seenAt > 0 && seenAt - changedAt <= 5_000, `the new split was observed ${seenAt ? seenAt - changedAt : 'never'} ms after the change`);
    const res = await fanout(1000);
    const v1 = (res.byVersion.v1 ?? 0) / res.total;
    assert.equal(res.ok, 1000);
    assert.ok(Math.abs(v1 - 0.5) <= 0.05, `v1 share ${v1} is 0.50 ± 0.05`);
    const podsAfter = await client.list<Pod>(R.pods, {});
    const restarts = (ps: Pod[]): string => ps.map((p) => `${p.metadata.uid}:${[...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map((s) => s.restartCount).join(',')}`).sort().join(' ');
    assert.equal(restarts(podsAfter.items), restarts(podsBefore.items), 'same pods, same restart counts');
  });

  it('stops on Ctrl-C and leaves nothing behind', async () => {
    const code = await stopUp();
    assert.equal(code, 0, output.slice(-3000));
    assert.deepEqual(leftovers(PREFIX, [POD_CIDR, SERVICE_CIDR]), []);
  });

  it('starts again from its stored state: the changed VirtualService and the sample survive a restart', async () => {
    up = await startUp(['--no-sample']);
    const pods = await waitForDemoPods();
    clientPodIP = pods.find((p) => p.metadata.labels?.app === 'client')?.status?.podIP ?? '';
    // Pods report Ready before the Endpoints controller and pilot have pushed them to the
    // client's sidecar: wait for the mesh to converge (all of a small batch answered).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const probe = await fanout(50).catch(() => undefined);
      if (probe?.ok === 50) break;
      if (Date.now() > deadline) throw new Error(`the mesh did not converge after the restart: ${JSON.stringify(probe)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // This test's own keep-alive connections from before the restart were closed by the
    // sidecars' drain (an idle connection left open until the pod's network is torn down
    // stays pooled here, dead, and a request on it fails with ECONNRESET).
    const res = await fanout(1000);
    assert.equal(res.ok, 1000, JSON.stringify(res));
    const v1 = (res.byVersion.v1 ?? 0) / res.total;
    assert.ok(Math.abs(v1 - 0.5) <= 0.05, `after the restart the stored 50/50 split holds (v1 share ${v1})`);
    assert.equal(await stopUp(), 0, output.slice(-3000));
    assert.deepEqual(leftovers(PREFIX, [POD_CIDR, SERVICE_CIDR]), []);
  });

  /** The three sample pods Running and Ready again (re-created by the kubelet from the store). */
  async function waitForDemoPods(): Promise<Pod[]> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const pods = (await client.list<Pod>(R.pods, { namespace: 'demo' })).items;
      const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      if (pods.length === 3 && ready.length === 3) return pods;
      if (Date.now() > deadline) throw new Error(`demo pods not ready after restart: ${pods.map((p) => `${p.metadata.name}:${p.status?.phase}`).join(' ')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async function fanout(n: number): Promise<Fanout> {
    const res = await fetch(`http://${clientPodIP}:8080/fanout?url=${encodeURIComponent('http://web/')}&n=${n}&concurrency=8`);
    assert.equal(res.status, 200);
    return (await res.json()) as Fanout;
  }

  async function sidecarCounters(): Promise<{ source: number; destination: Record<string, number>; mutualTlsFromDemo: number }> {
    const pods = await client.list<Pod>(R.pods, { namespace: 'demo' });
    const out = { source: 0, destination: { v1: 0, v2: 0 } as Record<string, number>, mutualTlsFromDemo: 0 };
    for (const p of pods.items) {
      const text = await (await fetch(`http://${p.status?.podIP}:15090/stats/prometheus`)).text();
      for (const line of text.split('\n')) {
        if (!line.startsWith('istio_requests_total{')) continue;
        const value = Number(line.slice(line.lastIndexOf(' ') + 1));
        if (p.metadata.labels?.app === 'client' && line.includes('reporter="source"') && line.includes('destination_service_name="web"')) out.source += value;
        if (p.metadata.labels?.app === 'web' && line.includes('reporter="destination"')) out.destination[p.metadata.labels.version] += value;
        // Automatic mTLS: the web sidecars saw the client's SPIFFE identity on a verified peer certificate.
        if (p.metadata.labels?.app === 'web' && line.includes('reporter="destination"') && line.includes('connection_security_policy="mutual_tls"')
          && line.includes('source_principal="spiffe://cluster.local/ns/demo/sa/')) out.mutualTlsFromDemo += value;
      }
    }
    return out;
  }
});
