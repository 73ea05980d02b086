// Cross-reference analysis: the messages (Istio's codes and texts), pilot writing them into
// VirtualService status.validationMessages through the real API server only when they
// change, and `trellis analyze` (the real CLI) reading the live cluster with its exit code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeClient, R, type Endpoints, type Pod, type Service } from '../../api/kube/index.js';
import type { VirtualService } from '../../api/istio/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { analyze, formatMessage } from '../../pilot/analysis/analyze.js';
import { bookinfo, reviewsVs, slicesFor } from './fixtures.js';
import { networkingCrd } from './crds.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/trellis.js');
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } } });

/** reviews: 80 -> v1, 20 -> `subset2`; plus a route to a host that does not exist. */
function brokenVs(subset2: string, extraHost?: string): VirtualService {
  const vs = reviewsVs(80, 20, subset2);
  if (extraHost) vs.spec.http?.unshift({ match: [{ uri: { prefix: '/x' } }], route: [{ destination: { host: extraHost } }] });
  return vs;
}

test('analyze: missing host, missing subset, weight on a subset without ready endpoints', () => {
  const world = bookinfo([brokenVs('v3', 'nosuch')]);
  let lines = analyze(world).map(formatMessage);
  assert.deepEqual(lines, [
    'Error [IST0101] (VirtualService reviews.default) Referenced host not found: "nosuch" (spec.http[0].route[0].destination)',
    'Error [IST0101] (VirtualService reviews.default) Referenced host+subset in destinationrule not found: "reviews+v3" (spec.http[1].route[1].destination)',
  ]);
  // v2 is defined but its only pod is gone: the 20 % there have nowhere to go.
  const noV2 = bookinfo([reviewsVs(80, 20)]);
  noV2.endpoints[0] = { ...noV2.endpoints[0], subsets: [{ addresses: [{ ip: '10.244.0.11', targetRef: { kind: 'Pod', name: 'reviews-v1-abc', namespace: 'default' } }], ports: [{ name: 'http', port: 9080, protocol: 'TCP' }] }] } as Endpoints;
  noV2.pods = noV2.pods.filter((p) => p.metadata.name !== 'reviews-v2-def');
  lines = analyze(noV2).map(formatMessage);
  assert.deepEqual(lines, ['Warning [IST0173] (VirtualService reviews.default) Weight 20 goes to subset v2 of "reviews", which has no ready endpoints. Until it has some, its share goes to the other destinations of the rule (503 UH if none has endpoints). (spec.http[0].route[1])']);
  // A weight of 0 on it is not a problem; a healthy world has no messages.
  noV2.virtualServices = [reviewsVs(100, 0)];
  assert.deepEqual(analyze(noV2), []);
  assert.deepEqual(analyze(bookinfo()), []);
});


function trellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('pilot writes the findings into VirtualService status when they change; trellis analyze reports them and exits 79', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-analyze-'));
  cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const api: ApiServer = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  cleanups.push(() => api.close());
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  cleanups.push(() => client.close());
  await client.create(R.customResourceDefinitions, networkingCrd('virtualservices', 'VirtualService', ['v1'], { status: true }));
  await client.create(R.customResourceDefinitions, networkingCrd('destinationrules', 'DestinationRule', ['v1'], { status: true }));
  const world = bookinfo([brokenVs('v3')]);
  if (!(await client.find(R.namespaces, 'default'))) await client.create(R.namespaces, { metadata: { name: 'default' } });
  for (const s of world.services) {
    const { clusterIP: _ip, ...spec } = s.spec;
    await client.create<Service>(R.services, { ...s, spec });
  }
  for (const p of world.pods) {
    const created = await client.create<Pod>(R.pods, { metadata: p.metadata, spec: p.spec });
    await client.updateStatus<Pod>(R.pods, { ...created, status: p.status });
  }
  // Pilot reads EndpointSlices where served (no endpoints controller runs here: written by hand).
  for (const e of world.endpoints) for (const sl of slicesFor(e)) await client.create(R.endpointSlices, sl);
  for (const d of world.destinationRules) await client.create(R.destinationRules, d);
  for (const v of world.virtualServices) await client.create(R.virtualServices, v);

  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 50, maxMs: 300 });
  cleanups.push(() => pilot.stop());
  await pilot.start();
  type WithStatus = VirtualService & { status?: { validationMessages?: { type: { code: string; name: string }; level: string; description: string }[] } };
  const status = await until('validationMessages on the VirtualService', async () => {
    const vs = await client.get<WithStatus>(R.virtualServices, 'reviews', 'default');
    return vs.status?.validationMessages?.length ? vs.status : undefined;
  });
  assert.deepEqual(status.validationMessages?.map((m) => [m.type.code, m.type.name, m.level]), [['IST0101', 'ReferencedResourceNotFound', 'ERROR']]);
  assert.match(status.validationMessages?.[0].description ?? '', /Referenced host\+subset in destinationrule not found: "reviews\+v3" \(spec\.http\[0\]\.route\[1\]\.destination\)/);

  // Written once: the status update itself makes a new snapshot, which finds nothing to change.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(pilot.status?.writes, 1);

  const kubeconfig = ['--kubeconfig', api.kubeconfigPath];
  const res = await trellis(['analyze', ...kubeconfig]);
  assert.equal(res.code, 79, res.stderr);
  assert.equal(res.stdout.trim(), 'Error [IST0101] (VirtualService reviews.default) Referenced host+subset in destinationrule not found: "reviews+v3" (spec.http[0].route[1].destination)');
  const other = await trellis(['analyze', '-n', 'other', ...kubeconfig]);
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stdout, /No validation issues found when analyzing namespace: other/);
  const all = await trellis(['analyze', '-A', ...kubeconfig]);
  assert.equal(all.code, 79);

  // Fixed: the message goes away from the status, and analyze is clean.
  const current = await client.get<VirtualService>(R.virtualServices, 'reviews', 'default');
  await client.update(R.virtualServices, { ...current, spec: reviewsVs(80, 20).spec });
  await until('validationMessages to be cleared', async () => {
    const vs = await client.get<WithStatus>(R.virtualServices, 'reviews', 'default');
    return vs.status?.validationMessages?.length ? undefined : true;
  });
  const clean = await trellis(['analyze', ...kubeconfig]);
  assert.equal(clean.code, 0, clean.stdout);
  assert.match(clean.stdout, /✔ No validation issues found when analyzing namespace: default\./);
});
