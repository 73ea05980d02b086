// Workloads across two nodes of one embedded cluster (started once for the file): each node
// is a kubelet with its own bridge and /24, routed to the other inside the machine; a pod on
// node-1 reaches a pod on node-0 by service name; a Deployment rolls out behind a Service under
// steady traffic without a failed request, and rolls back; a Job with a native sidecar
// completes; a StatefulSet pod has a DNS name through its headless service.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Applier, KubeClient, R, parseManifests, type KubeObject, type Node, type Pod } from '../../api/kube/index.js';
import { trellisHome } from '../../cli/paths.js';
import { startEmbeddedCluster, type EmbeddedCluster } from '../../cluster/embedded.js';
import { hasCommand, leftovers, networkSkipReason } from '../support/host.js';

const PREFIX = 'tmn';
const POD_CIDR = '10.247.0.0/16';
const SERVICE_CIDR = '10.99.0.0/16';
const API_PORT = 16471;
const NS = 'wl';
const skip = networkSkipReason();
const kubectlSkip = hasCommand('kubectl') ? false : 'kubectl is not installed';
const run = promisify(execFile);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One GET on a fresh connection; resolves with status and body (status 0 and the error otherwise). */
function get(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: 0, body: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

const httpContainer = (name: string, version: string): string => `
      - name: ${name}
        image: trellis/sample-http:0.1.0
        env:
        - { name: PORT, value: "8080" }
        - { name: VERSION, value: "${version}" }
        - { name: SERVICE_NAME, value: "${name}" }
        ports:
        - { containerPort: 8080, name: http }
        readinessProbe:
          httpGet: { path: /healthz, port: 8080 }
          periodSeconds: 1`;

describe('workloads on a cluster of two nodes', { skip, timeout: 600_000 }, () => {
  const home = trellisHome();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-workloads-'));
  let cluster: EmbeddedCluster | undefined;
  let client: KubeClient;
  let applier: Applier;
  let kubeconfig = '';

  const apply = async (yaml: string): Promise<void> => {
    for (const o of parseManifests(yaml, 'test')) await applier.apply(o as KubeObject);
  };
  const kubectl = async (...args: string[]): Promise<string> => (await run('kubectl', ['--kubeconfig', kubeconfig, '-n', NS, ...args], { timeout: 120_000 })).stdout;
  const podsOf = async (selector: string): Promise<Pod[]> => (await client.list<Pod>(R.pods, { namespace: NS, labelSelector: selector })).items;
  const readyPods = async (selector: string, n: number): Promise<Pod[] | undefined> => {
    const pods = (await podsOf(selector)).filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return pods.length === n ? pods : undefined;
  };
  const serviceIP = async (name: string): Promise<string> => (await client.get<KubeObject & { spec: { clusterIP: string } }>(R.services, name, NS)).spec.clusterIP;

  before(async () => {
    cluster = await startEmbeddedCluster({
      name: PREFIX, dataDir, apiPort: API_PORT, podCIDR: POD_CIDR, serviceCIDR: SERVICE_CIDR, nodes: 2,
      imageCatalogs: [path.join(home, 'samples', 'images.yaml')],
    });
    kubeconfig = cluster.kubeconfigPath;
    client = KubeClient.fromKubeconfig(kubeconfig, 'workloads-test');
    applier = new Applier(client, NS);
    await apply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`);
    await waitFor('default service account', () => client.find(R.serviceAccounts, 'default', NS));
  });

  after(async () => {
    await client?.close();
    await cluster?.stop();
    const left = leftovers(PREFIX, [POD_CIDR, SERVICE_CIDR]);
    fs.rmSync(dataDir, { recursive: true, force: true });
    assert.deepEqual(left, [], 'stopping the cluster leaves no network object of the prefix');
  });

  it('registers node-0 and node-1, each with its own /24 and bridge, routed to each other', async () => {
    const nodes = (await client.list<Node>(R.nodes)).items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
    assert.deepEqual(nodes.map((n) => [n.metadata.name, n.spec?.podCIDR, n.metadata.labels?.['kubernetes.io/hostname']]), [
      ['node-0', '10.247.0.0/24', 'node-0'], ['node-1', '10.247.1.0/24', 'node-1'],
    ]);
    for (const n of nodes) assert.ok(n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), `${n.metadata.name} Ready`);
    const routes = (await run('ip', ['-o', 'route', 'show', 'root', POD_CIDR])).stdout;
    assert.match(routes, /^10\.247\.0\.0\/24 dev tmn-br0 /m, routes);
    assert.match(routes, /^10\.247\.1\.0\/24 dev tmn-br1 /m, routes);
    assert.match(routes, /^unreachable 10\.247\.0\.0\/16 /m, 'the cluster CIDR stays unreachable below the bridges');
    const forward = (await run('iptables', ['-S', 'TMN-FORWARD'])).stdout;
    assert.match(forward, /-i tmn-br\+ ! -o tmn-br\+ .*-j DROP/, 'pod traffic never leaves our bridges');
  });

  it('a pod on node-1 reaches a pod on node-0 by service name (cluster DNS and ClusterIP)', async () => {
    await apply(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      nodeSelector: { kubernetes.io/hostname: node-0 }
      containers:${httpContainer('web', 'v1')}
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080, name: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: caller, labels: { app: caller } }
spec:
  nodeSelector: { kubernetes.io/hostname: node-1 }
  containers:
  - name: client
    image: trellis/sample-client:0.1.0
    env: [{ name: PORT, value: "8080" }]
    readinessProbe:
      httpGet: { path: /healthz, port: 8080 }
      periodSeconds: 1
`);
    const [web] = await waitFor('web ready', () => readyPods('app=web', 1));
    const [caller] = await waitFor('caller ready', () => readyPods('app=caller', 1));
    assert.equal(web.spec.nodeName, 'node-0');
    assert.equal(caller.spec.nodeName, 'node-1');
    assert.match(web.status?.podIP ?? '', /^10\.247\.0\./);
    assert.match(caller.status?.podIP ?? '', /^10\.247\.1\./);
    // The service proxy programs iptables shortly after the Endpoints change: wait for it.
    const webIP = await serviceIP('web');
    await waitFor('web answers on its ClusterIP', async () => (await get(`http://${webIP}/`)).status === 200);
    const r = await get(`http://${caller.status?.podIP}:8080/fanout?url=${encodeURIComponent('http://web/')}&n=20&concurrency=2`, 30_000);
    assert.equal(r.status, 200, r.body);
    const tally = JSON.parse(r.body) as { ok: number; byVersion: Record<string, number>; errorSamples: string[] };
    assert.equal(tally.ok, 20, `all 20 requests from node-1 answered: ${r.body}`);
    assert.deepEqual(tally.byVersion, { v1: 20 });
  });

  it('spreads the replicas of a Deployment over both nodes', async () => {
    await apply(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: spread }
spec:
  replicas: 4
  selector: { matchLabels: { app: spread } }
  template:
    metadata: { labels: { app: spread } }
    spec:
      containers:
      - { name: sleep, image: busybox, command: [sleep, "3600"] }
`);
    const pods = await waitFor('4 spread pods bound', async () => {
      const ps = (await podsOf('app=spread')).filter((p) => p.spec.nodeName);
      return ps.length === 4 ? ps : undefined;
    });
    const perNode = new Map<string, number>();
    for (const p of pods) perNode.set(p.spec.nodeName as string, (perNode.get(p.spec.nodeName as string) ?? 0) + 1);
    assert.deepEqual([...perNode.entries()].sort(), [['node-0', 2], ['node-1', 2]], 'two replicas on each node');
    await client.delete(R.deployments, 'spread', NS);
  });

  it('rolls a Deployment behind a Service under steady traffic with no failed request, then rolls it back', { skip: kubectlSkip }, async () => {
    await apply(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: roll }
spec:
  replicas: 2
  selector: { matchLabels: { app: roll } }
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  template:
    metadata: { labels: { app: roll } }
    spec:
      terminationGracePeriodSeconds: 20
      containers:${httpContainer('roll', 'v1')}
        lifecycle:
          # Serve until the service proxy has dropped the endpoint (kube-proxy's advice too);
          # its incremental syncs take well under a second even on a loaded machine.
          preStop: { exec: { command: [sleep, "2"] } }
---
apiVersion: v1
kind: Service
metadata: { name: roll }
spec:
  selector: { app: roll }
  ports: [{ port: 80, targetPort: 8080, name: http }]
`);
    await kubectl('wait', '--for=condition=Available', 'deployment/roll', '--timeout=120s');
    await waitFor('2 ready roll pods', () => readyPods('app=roll', 2));
    const ip = await serviceIP('roll');
    const served = async (): Promise<string> => (JSON.parse((await get(`http://${ip}/`)).body) as { version: string }).version;
    await waitFor('roll serves v1', async () => (await served()) === 'v1');

    // What happened when, to explain a failed request.
    const timeline: string[] = [];
    // Steady traffic from the host to the ClusterIP, a new connection per request.
    let stopTraffic = false;
    const failures: string[] = [];
    const versions = new Map<string, number>();
    const traffic = (async () => {
      while (!stopTraffic) {
        const r = await get(`http://${ip}/`);
        if (r.status !== 200) { failures.push(`${r.status} ${r.body}`); timeline.push(`${Date.now()} request failed: ${r.body}`); }
        else {
          const v = (JSON.parse(r.body) as { version: string }).version;
          versions.set(v, (versions.get(v) ?? 0) + 1);
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const watches = [
      client.watch(R.endpoints, { namespace: NS, fieldSelector: 'metadata.name=roll' }, (e) => {
        const subsets = (e.object as { subsets?: { addresses?: { ip: string }[] }[] }).subsets ?? [];
        timeline.push(`${Date.now()} endpoints ${e.type}: ready ${subsets.flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).join(',')}`);
      }),
      client.watch(R.pods, { namespace: NS, labelSelector: 'app=roll' }, (e) => {
        const p = e.object as Pod;
        const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status;
        timeline.push(`${Date.now()} pod ${e.type} ${p.metadata.name} ${p.status?.podIP ?? '-'} ready=${ready ?? '-'}${p.metadata.deletionTimestamp ? ' deleting' : ''}`);
      }),
    ];
    try {
      await kubectl('set', 'env', 'deployment/roll', '-c', 'roll', 'VERSION=v2');
      await kubectl('rollout', 'status', 'deployment/roll', '--timeout=180s');
      await waitFor('old pods gone', async () => (await podsOf('app=roll')).length === 2);
      await new Promise((res) => setTimeout(res, 1000));
    } finally {
      stopTraffic = true;
      await traffic;
      for (const w of watches) w.stop();
    }
    assert.deepEqual(failures, [], `no failed request during the rollout (${JSON.stringify(Object.fromEntries(versions))}):\n${timeline.join('\n')}`);
    assert.ok((versions.get('v1') ?? 0) > 0 && (versions.get('v2') ?? 0) > 0, `both versions served: ${JSON.stringify(Object.fromEntries(versions))}`);
    assert.equal(await served(), 'v2');

    const history = await kubectl('rollout', 'history', 'deployment/roll');
    assert.match(history, /^1\s/m, history);
    assert.match(history, /^2\s/m, history);
    await kubectl('rollout', 'undo', 'deployment/roll');
    await kubectl('rollout', 'status', 'deployment/roll', '--timeout=180s');
    await kubectl('wait', '--for=condition=Available', 'deployment/roll', '--timeout=120s');
    await waitFor('rolled back to v1', async () => (await podsOf('app=roll')).length === 2 && (await served()) === 'v1');
    for (let i = 0; i < 10; i++) assert.equal(await served(), 'v1', 'every replica serves v1 again');
    const after = await kubectl('rollout', 'history', 'deployment/roll');
    // The undo re-uses revision 1's ReplicaSet, which becomes revision 3.
    assert.match(after, /^2\s/m, after);
    assert.match(after, /^3\s/m, after);
    const rsTemplates = (await client.list<KubeObject & { spec: { template: unknown } }>(R.replicaSets, { namespace: NS, labelSelector: 'app=roll' })).items
      .map((rs) => `${rs.metadata.name} ${JSON.stringify(rs.spec.template)}`).join('\n');
    assert.doesNotMatch(after, /^1\s/m, `${after}\n${rsTemplates}`);
  });

  it('completes a Job whose pod carries a native sidecar (init container with restartPolicy Always)', async () => {
    await apply(`
apiVersion: batch/v1
kind: Job
metadata: { name: with-sidecar }
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - { name: sidecar, image: busybox, restartPolicy: Always, command: [sleep, "3600"] }
      containers:
      - { name: main, image: busybox, command: [sh, -c, "sleep 1; echo done"] }
`);
    const job = await waitFor('job complete', async () => {
      const j = await client.get<KubeObject & { status?: { succeeded?: number; conditions?: { type: string; status: string }[] } }>(R.jobs, 'with-sidecar', NS);
      if (j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) throw new Error(`job failed: ${JSON.stringify(j.status)}`);
      return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
    }, 120_000);
    assert.equal(job.status?.succeeded, 1);
    const [pod] = await podsOf('job-name=with-sidecar');
    assert.equal(pod.status?.phase, 'Succeeded', 'the pod finished although its sidecar never exits by itself');
  });

  it('answers DNS for a StatefulSet pod through its headless service', async () => {
    await apply(`
apiVersion: v1
kind: Service
metadata: { name: db }
spec:
  clusterIP: None
  selector: { app: db }
  ports: [{ port: 8080, name: http }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db }
spec:
  serviceName: db
  replicas: 1
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      containers:${httpContainer('db', 'v1')}
`);
    const [db] = await waitFor('db-0 ready', () => readyPods('app=db', 1));
    assert.equal(db.metadata.name, 'db-0');
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    resolver.setServers([`${cluster?.nodes[0].gatewayIP}:53`]);
    const addrs = await waitFor('db-0.db A record', async () => {
      const a = await resolver.resolve4(`db-0.db.${NS}.svc.cluster.local`);
      return a.includes(db.status?.podIP ?? '-') ? a : undefined;
    }, 30_000);
    assert.deepEqual(addrs, [db.status?.podIP]);
    // And from a pod on the other node, by the short name through its search path.
    const [caller] = await waitFor('caller ready', () => readyPods('app=caller', 1));
    const r = await get(`http://${caller.status?.podIP}:8080/fanout?url=${encodeURIComponent('http://db-0.db:8080/')}&n=3&concurrency=1`, 30_000);
    assert.equal((JSON.parse(r.body) as { ok: number }).ok, 3, r.body);
  });
});
