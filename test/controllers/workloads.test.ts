// Job, StatefulSet and DaemonSet controllers through a real apiserver. No kubelet runs: the
// test plays it (pod phases, readiness). The apiserver serves batch/v1 jobs and apps/v1
// statefulsets/daemonsets; against one that does not (a trimmed real cluster), a
// CustomResourceDefinition with the same group, version and names stands in.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { R, type KubeClient, type Node, type Pod } from '../../api/kube/index.js';
import { WR, startControllers, type CoreEvent, type DaemonSet, type Job, type StatefulSet } from '../../cluster/controllers/index.js';
import { resourcesOf } from '../../cluster/controllers/discovery.js';
import { markReady, startCluster, waitFor, type Cluster } from './harness.js';

const NS = 'default';
const BACKOFF_MS = 400;

async function served(client: KubeClient, groupVersion: string, resource: string): Promise<boolean> {
  try { return (await resourcesOf(client, groupVersion)).some((r) => r.resource === resource); } catch { return false; }
}

/** A CRD standing in for a built-in kind the apiserver does not serve (yet). */
async function ensureKind(client: KubeClient, group: string, plural: string, kind: string, shortNames: string[]): Promise<void> {
  if (await served(client, `${group}/v1`, plural)) return;
  const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  await client.create(R.customResourceDefinitions, {
    metadata: { name: `${plural}.${group}` },
    spec: {
      group, scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, shortNames },
      versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } } }],
    },
  });
  await waitFor(`${group}/v1 ${plural} served`, () => served(client, `${group}/v1`, plural));
}

describe('workload controllers', () => {
  let cluster: Cluster;
  let stopControllers: (() => void) | undefined;

  before(async () => {
    cluster = await startCluster();
    await ensureKind(cluster.client, 'batch', 'jobs', 'Job', []);
    await ensureKind(cluster.client, 'apps', 'statefulsets', 'StatefulSet', ['sts']);
    await ensureKind(cluster.client, 'apps', 'daemonsets', 'DaemonSet', ['ds']);
    const ctl = await startControllers({ client: cluster.client, rootCAPem: cluster.api.caCertPem, jobPodFailureBackoffMs: BACKOFF_MS });
    stopControllers = () => ctl.stop();
  });
  after(async () => {
    stopControllers?.();
    await cluster?.close();
  });

  const pods = async (selector: string) => (await cluster.client.list<Pod>(R.pods, { namespace: NS, labelSelector: selector })).items
    .filter((p) => !p.metadata.deletionTimestamp);
  const setPhase = async (p: Pod, phase: 'Succeeded' | 'Failed') => {
    const live = await cluster.client.get<Pod>(R.pods, p.metadata.name as string, NS);
    await cluster.client.updateStatus(R.pods, { ...live, status: { ...(live.status ?? {}), phase } });
  };
  const getJob = (name: string) => cluster.client.get<Job>(WR.jobs, name, NS);
  const job = (name: string, spec: Partial<Job['spec']>): Job => ({
    metadata: { name, namespace: NS },
    spec: { template: { metadata: { labels: { app: name } }, spec: { restartPolicy: 'Never', containers: [{ name: 'work', image: 'busybox' }] } }, ...spec },
  });

  it('a Job runs completions pods, parallelism at a time, then is Complete', async () => {
    const created = await cluster.client.create(WR.jobs, job('pi', { completions: 3, parallelism: 2 }));
    let done = 0;
    await waitFor('3 succeeded', async () => {
      const active = (await pods('app=pi')).filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
      assert.ok(active.length <= 2, `at most parallelism (2) pods active, saw ${active.length}`);
      for (const p of active) {
        assert.equal(p.metadata.labels?.['job-name'], 'pi');
        assert.equal(p.metadata.labels?.['batch.kubernetes.io/controller-uid'], created.metadata.uid);
        assert.equal(p.spec.restartPolicy, 'Never');
        assert.deepEqual(p.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.controller]), [['Job', 'pi', true]]);
        if (done < 3) { await setPhase(p, 'Succeeded'); done++; }
      }
      return (await getJob('pi')).status?.succeeded === 3;
    });
    const j = await waitFor('Complete', async () => { const x = await getJob('pi'); return x.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') && x; });
    assert.equal(j.status?.active, 0);
    assert.equal(j.status?.failed ?? 0, 0);
    assert.ok(j.status?.startTime && j.status.completionTime);
    assert.ok(Date.parse(j.status.completionTime) >= Date.parse(j.status.startTime));
    assert.equal((await pods('app=pi')).length, 3, 'no pod beyond completions');
    await waitFor('Completed event', async () => (await cluster.client.list<CoreEvent>(R.events, { namespace: NS, fieldSelector: 'involvedObject.name=pi,reason=Completed' })).items.length === 1);
  });

  it('a Job whose pods fail more than backoffLimit fails with BackoffLimitExceeded', async () => {
    await cluster.client.create(WR.jobs, job('flaky', { backoffLimit: 1 }));
    const failedAt = new Map<string, number>();
    const createdAt: number[] = [];
    const j = await waitFor('Failed', async () => {
      for (const p of await pods('app=flaky')) {
        if (!failedAt.has(p.metadata.uid as string) && (!p.status?.phase || p.status.phase === 'Pending')) {
          createdAt.push(Date.now());
          await setPhase(p, 'Failed'); failedAt.set(p.metadata.uid as string, Date.now());
        }
      }
      const x = await getJob('flaky');
      return x.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True') && x;
    });
    const cond = j.status?.conditions?.find((c) => c.type === 'Failed');
    assert.equal(cond?.reason, 'BackoffLimitExceeded');
    assert.equal(j.status?.failed, 2);
    assert.equal(failedAt.size, 2, 'a replacement pod after the first failure, none after the second');
    // The replacement waited out the back-off (base delay for the first failure).
    assert.ok(createdAt[1] - createdAt[0] >= BACKOFF_MS - 50, `replacement after ${createdAt[1] - createdAt[0]} ms`);
    assert.equal(j.status?.active, 0);
  });

  it('a Job running past activeDeadlineSeconds fails with DeadlineExceeded and its pods are deleted', async () => {
    await cluster.client.create(WR.jobs, job('slow', { activeDeadlineSeconds: 1, parallelism: 2, completions: 4 }));
    await waitFor('2 pods', async () => (await pods('app=slow')).length === 2);
    const j = await waitFor('DeadlineExceeded', async () => {
      const x = await getJob('slow');
      return x.status?.conditions?.find((c) => c.type === 'Failed' && c.reason === 'DeadlineExceeded') && x;
    }, 5_000);
    assert.equal(j.status?.active, 0);
    await waitFor('pods deleted', async () => (await pods('app=slow')).length === 0);
  });

  it('a StatefulSet creates <name>-0.. in order, each after the previous is Ready, and scales down in reverse', async () => {
    const set: StatefulSet = {
      metadata: { name: 'db', namespace: NS },
      spec: {
        replicas: 3, serviceName: 'db', selector: { matchLabels: { app: 'db' } },
        template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'x' }] } },
      },
    };
    await cluster.client.create(WR.statefulSets, set);
    for (let i = 0; i < 3; i++) {
      const p = await waitFor(`db-${i}`, () => cluster.client.find<Pod>(R.pods, `db-${i}`, NS));
      const spec = p.spec as Pod['spec'] & { hostname?: string; subdomain?: string };
      assert.equal(spec.hostname, `db-${i}`);
      assert.equal(spec.subdomain, 'db');
      assert.equal(p.metadata.labels?.['statefulset.kubernetes.io/pod-name'], `db-${i}`);
      // The next ordinal waits for this one.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await pods('app=db')).length, i + 1, `only ${i + 1} pod(s) before db-${i} is ready`);
      await markReady(cluster.client, p);
    }
    await waitFor('3 ready', async () => (await cluster.client.get<StatefulSet>(WR.statefulSets, 'db', NS)).status?.readyReplicas === 3);

    await cluster.client.patch(WR.statefulSets, 'db', NS, { spec: { replicas: 1 } }, 'merge');
    const seen: string[] = [];
    await waitFor('scaled to 1', async () => {
      const names = (await pods('app=db')).map((p) => p.metadata.name as string).sort();
      if (names.length === 2) seen.push(names.join(','));
      return names.length === 1 && names[0] === 'db-0';
    });
    for (const s of seen) assert.equal(s, 'db-0,db-1', 'db-2 goes before db-1');
  });

  it('a DaemonSet runs one pod per eligible node, pinned by node affinity', async () => {
    const mkNode = async (name: string, taints?: { key: string; effect: string }[]) => {
      const n = await cluster.client.create<Node>(R.nodes, { metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: taints ? { taints } : {} });
      await cluster.client.updateStatus(R.nodes, { ...n, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    };
    await mkNode('n1'); await mkNode('n2'); await mkNode('n3', [{ key: 'dedicated', effect: 'NoSchedule' }]);
    const ds: DaemonSet = {
      metadata: { name: 'agent', namespace: NS },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'a', image: 'x' }] } } },
    };
    await cluster.client.create(WR.daemonSets, ds);
    const target = (p: Pod) => (p.spec as { affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: { matchFields?: { values?: string[] }[] }[] } } } })
      .affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.[0]?.values?.[0];
    const two = await waitFor('2 daemon pods', async () => { const l = await pods('app=agent'); return l.length === 2 && l; });
    assert.deepEqual(two.map(target).sort(), ['n1', 'n2'], 'the tainted node gets none');
    const st = await waitFor('status', async () => { const x = await cluster.client.get<DaemonSet>(WR.daemonSets, 'agent', NS); return x.status?.desiredNumberScheduled === 2 && x.status.currentNumberScheduled === 2 && x; });
    assert.equal(st.status?.numberMisscheduled, 0);
    assert.equal(st.status?.observedGeneration, st.metadata.generation);

    await cluster.client.patch(R.nodes, 'n3', undefined, { spec: { taints: null } }, 'merge');
    await waitFor('3 daemon pods', async () => { const l = await pods('app=agent'); return l.length === 3 && l.map(target).sort().join() === 'n1,n2,n3'; });
    // A node turning NotReady keeps its daemon (only NoExecute taints evict); a NoExecute taint removes it.
    const n1 = await cluster.client.get<Node>(R.nodes, 'n1');
    await cluster.client.updateStatus(R.nodes, { ...n1, status: { conditions: [{ type: 'Ready', status: 'False' }] } });
    await waitFor('n1 no longer desired', async () => (await cluster.client.get<DaemonSet>(WR.daemonSets, 'agent', NS)).status?.desiredNumberScheduled === 2);
    assert.equal((await pods('app=agent')).length, 3, 'the NotReady node keeps its daemon pod');
    await cluster.client.patch(R.nodes, 'n1', undefined, { spec: { taints: [{ key: 'evict', effect: 'NoExecute' }] } }, 'merge');
    await waitFor('n1 pod evicted', async () => (await pods('app=agent')).map(target).sort().join() === 'n2,n3');
        await cluster.client.delete(R.nodes, 'n2');
    await waitFor('n2 pod removed', async () => { const l = await pods('app=agent'); return l.length === 1 && l.map(target).join() === 'n3'; });
    // Owner references make the garbage collector remove the pods with their DaemonSet.
    await cluster.client.delete(WR.daemonSets, 'agent', NS);
    await waitFor('daemon pods collected', async () => (await pods('app=agent')).length === 0);
  });
});
