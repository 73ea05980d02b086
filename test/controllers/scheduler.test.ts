// The scheduler end to end: binds to a Ready node through pods/binding, and reports why a
// pod fits nowhere, retrying when nodes change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { R, type Node, type Pod } from '../../api/kube/index.js';
import { startScheduler } from '../../cluster/scheduler/index.js';
import type { CoreEvent } from '../../cluster/controllers/index.js';
import { startCluster, waitFor, type Cluster } from './harness.js';

const NS = 'default';

describe('scheduler', () => {
  let cluster: Cluster;
  let stopScheduler: (() => void) | undefined;

  before(async () => {
    cluster = await startCluster();
    const s = await startScheduler({ client: cluster.client });
    stopScheduler = () => s.stop();
    const node = await cluster.client.create<Node>(R.nodes, { metadata: { name: 'node-1', labels: { 'kubernetes.io/hostname': 'node-1' } } });
    await cluster.client.updateStatus(R.nodes, {
      ...node,
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: new Date().toISOString() }],
        allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
        capacity: { cpu: '2', memory: '4Gi', pods: '110' },
      },
    });
  });
  after(async () => {
    stopScheduler?.();
    await cluster?.close();
  });

  const podEvents = async (name: string) => (await cluster.client.list<CoreEvent>(R.events, {
    namespace: NS, fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}`,
  })).items;

  const pod = (name: string, spec: Partial<Pod['spec']> = {}): Pod => ({
    metadata: { name, namespace: NS },
    spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: '100m', memory: '64Mi' } } }], ...spec },
  });

  it('binds a pod to the Ready node', async () => {
    await cluster.client.create(R.pods, pod('fits'));
    const bound = await waitFor('pod bound', async () => { const p = await cluster.client.get<Pod>(R.pods, 'fits', NS); return p.spec.nodeName ? p : undefined; });
    assert.equal(bound.spec.nodeName, 'node-1');
    const ev = await waitFor('Scheduled event', async () => (await podEvents('fits')).find((e) => e.reason === 'Scheduled'));
    assert.equal(ev.message, 'Successfully assigned default/fits to node-1');
    assert.equal(ev.source?.component, 'default-scheduler');
    assert.equal(ev.involvedObject.uid, bound.metadata.uid);
  });

  it('marks a pod no node fits Unschedulable, and binds it once a node matches', async () => {
    await cluster.client.create(R.pods, pod('picky', { nodeSelector: { disktype: 'ssd' } }));
    const cond = await waitFor('PodScheduled=False', async () => {
      const p = await cluster.client.get<Pod>(R.pods, 'picky', NS);
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    assert.equal(cond.reason, 'Unschedulable');
    assert.equal(cond.message, "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.");
    assert.equal((await cluster.client.get<Pod>(R.pods, 'picky', NS)).spec.nodeName, undefined);
    const failed = await waitFor('FailedScheduling event', async () => (await podEvents('picky')).find((e) => e.reason === 'FailedScheduling'));
    assert.equal(failed.type, 'Warning');
    assert.equal(failed.message, cond.message);
    // Another failed attempt (a node change retries) bumps the same Event's count.
    await cluster.client.patch(R.nodes, 'node-1', undefined, { metadata: { labels: { unrelated: 'x' } } }, 'merge');
    await waitFor('FailedScheduling count 2', async () => {
      const l = (await podEvents('picky')).filter((e) => e.reason === 'FailedScheduling');
      return l.length === 1 && l[0].count === 2;
    });

    await cluster.client.patch(R.nodes, 'node-1', undefined, { metadata: { labels: { disktype: 'ssd' } } }, 'merge');
    await waitFor('picky bound after the node changed', async () => (await cluster.client.get<Pod>(R.pods, 'picky', NS)).spec.nodeName === 'node-1');
  });

  it('does not overcommit: a pod asking for more cpu than is left waits', async () => {
    await cluster.client.create(R.pods, pod('big', { containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: '1900m' } } }] }));
    const cond = await waitFor('big unschedulable', async () => {
      const p = await cluster.client.get<Pod>(R.pods, 'big', NS);
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    assert.equal(cond.message, '0/1 nodes are available: 1 Insufficient cpu.');
  });
});
