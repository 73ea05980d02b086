// The controllers end to end, through a real apiserver over HTTPS: no kubelet runs, so the
// test marks pods ready itself where a kubelet would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  R, isNotFound, type ConfigMap, type Deployment, type Endpoints, type Namespace, type Pod, type ReplicaSet, type ServiceAccount,
} from '../../api/kube/index.js';
import { startControllers } from '../../cluster/controllers/index.js';
import type { EndpointSlice } from '../../cluster/controllers/endpoints.js';
import { isReady, markReady, startCluster, waitFor, type Cluster } from './harness.js';

const NS = 'default';

describe('controllers', () => {
  let cluster: Cluster;
  let stopControllers: (() => void) | undefined;

  before(async () => {
    cluster = await startCluster();
    const ctl = await startControllers({ client: cluster.client, rootCAPem: cluster.api.caCertPem });
    stopControllers = () => ctl.stop();
  });
  after(async () => {
    stopControllers?.();
    await cluster?.close();
  });

  const listPods = async (selector: string) => (await cluster.client.list<Pod>(R.pods, { namespace: NS, labelSelector: selector })).items;
  const listRS = async (selector: string) => (await cluster.client.list<ReplicaSet>(R.replicaSets, { namespace: NS, labelSelector: selector })).items;
  const getDeploy = () => cluster.client.get<Deployment>(R.deployments, 'web', NS);

  function webDeployment(replicas: number, image: string): Deployment {
    return {
      metadata: { name: 'web', namespace: NS },
      spec: {
        replicas,
        selector: { matchLabels: { app: 'web' } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'app', image, ports: [{ name: 'http', containerPort: 8080 }] }] },
        },
      },
    };
  }

  it('a Deployment of 3 creates one ReplicaSet and 3 owned pods, and reports availability', async () => {
    const d = await cluster.client.create(R.deployments, webDeployment(3, 'trellis/sample-http:0.1.0'));
    const [rs] = await waitFor('one ReplicaSet', async () => { const l = await listRS('app=web'); return l.length === 1 && l; });
    const hash = rs.metadata.labels?.['pod-template-hash'];
    assert.ok(hash, 'pod-template-hash label on the ReplicaSet');
    assert.equal(rs.metadata.name, `web-${hash}`);
    assert.equal(rs.spec.selector.matchLabels?.['pod-template-hash'], hash);
    assert.equal(rs.spec.template.metadata?.labels?.['pod-template-hash'], hash);
    assert.equal(rs.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
    assert.deepEqual(rs.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['Deployment', 'web', d.metadata.uid, true]]);

    const pods = await waitFor('3 pods', async () => { const p = await listPods('app=web'); return p.length === 3 && p; });
    for (const p of pods) {
      assert.ok(p.metadata.name?.startsWith(`web-${hash}-`), `pod name ${p.metadata.name}`);
      assert.equal(p.metadata.labels?.['pod-template-hash'], hash);
      assert.deepEqual(p.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['ReplicaSet', rs.metadata.name, rs.metadata.uid, true]]);
    }
    // No extra pods appear after the burst of events settles (expectations).
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await listPods('app=web')).length, 3);

    for (const p of pods) await markReady(cluster.client, p);
    const done = await waitFor('deployment complete', async () => {
      const cur = await getDeploy();
      const prog = cur.status?.conditions?.find((c) => c.type === 'Progressing');
      return cur.status?.availableReplicas === 3 && prog?.reason === 'NewReplicaSetAvailable' && cur;
    });
    assert.equal(done.status?.observedGeneration, done.metadata.generation);
    assert.equal(done.status?.replicas, 3);
    assert.equal(done.status?.updatedReplicas, 3);
    assert.equal(done.status?.readyReplicas, 3);
    assert.equal(done.status?.unavailableReplicas, 0);
    const avail = done.status?.conditions?.find((c) => c.type === 'Available');
    assert.deepEqual([avail?.status, avail?.reason], ['True', 'MinimumReplicasAvailable']);
    const rsNow = await cluster.client.get<ReplicaSet>(R.replicaSets, rs.metadata.name as string, NS);
    assert.deepEqual([rsNow.status?.replicas, rsNow.status?.readyReplicas, rsNow.status?.availableReplicas, rsNow.status?.fullyLabeledReplicas], [3, 3, 3, 3]);
  });

  it('scaling to 1 deletes 2 pods', async () => {
    await cluster.client.patch(R.deployments, 'web', NS, { spec: { replicas: 1 } }, 'merge');
    await waitFor('1 pod left', async () => (await listPods('app=web')).length === 1);
    const [rs] = await listRS('app=web');
    assert.equal(rs.spec.replicas, 1);
    await waitFor('status of 1', async () => { const d = await getDeploy(); return d.status?.replicas === 1 && d.status.availableReplicas === 1; });
    // Back to 4 for the rollout.
    await cluster.client.patch(R.deployments, 'web', NS, { spec: { replicas: 4 } }, 'merge');
    const pods = await waitFor('4 pods', async () => { const p = await listPods('app=web'); return p.length === 4 && p; });
    for (const p of pods) if (!isReady(p)) await markReady(cluster.client, p);
    await waitFor('4 available', async () => (await getDeploy()).status?.availableReplicas === 4);
  });

  it('a template change rolls to a new ReplicaSet within maxUnavailable', async () => {
    const [oldRS] = await listRS('app=web');
    await cluster.client.patch(R.deployments, 'web', NS, { spec: { template: { spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.2.0', ports: [{ name: 'http', containerPort: 8080 }] }] } } } }, 'merge');
    const newRS = await waitFor('a new ReplicaSet with a pod', async () => {
      const l = (await listRS('app=web')).filter((r) => r.metadata.uid !== oldRS.metadata.uid);
      return l.length === 1 && (l[0].spec.replicas ?? 0) >= 1 && l[0];
    });
    assert.equal(newRS.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
    // Hold the new pod unready: with maxUnavailable 1 and maxSurge 0 the old ReplicaSet must stay at 3.
    await new Promise((r) => setTimeout(r, 700));
    const held = await cluster.client.get<ReplicaSet>(R.replicaSets, oldRS.metadata.name as string, NS);
    assert.equal(held.spec.replicas, 3);
    assert.equal((await listPods('app=web')).length, 4);
    const prog = (await getDeploy()).status?.conditions?.find((c) => c.type === 'Progressing');
    assert.equal(prog?.status, 'True');
    assert.ok(['ReplicaSetUpdated', 'NewReplicaSetCreated'].includes(prog?.reason ?? ''), `Progressing reason ${prog?.reason}`);

    // Now play the kubelet, checking the invariants at every step.
    const newHash = newRS.metadata.labels?.['pod-template-hash'];
    await waitFor('rollout complete', async () => {
      const pods = (await listPods('app=web')).filter((p) => !p.metadata.deletionTimestamp);
      assert.ok(pods.length <= 4, `at most 4 pods (maxSurge 0), saw ${pods.length}`);
      assert.ok(pods.filter(isReady).length >= 3, `at least 3 ready pods (maxUnavailable 1), saw ${pods.filter(isReady).length}`);
      for (const p of pods) if (!isReady(p)) await markReady(cluster.client, p);
      const d = await getDeploy();
      const c = d.status?.conditions?.find((x) => x.type === 'Progressing');
      return pods.length === 4 && pods.every((p) => p.metadata.labels?.['pod-template-hash'] === newHash)
        && d.status?.updatedReplicas === 4 && d.status.availableReplicas === 4 && d.status.replicas === 4 && c?.reason === 'NewReplicaSetAvailable';
    }, 20_000);
    const old = await cluster.client.get<ReplicaSet>(R.replicaSets, oldRS.metadata.name as string, NS);
    assert.equal(old.spec.replicas, 0);
    assert.equal((await getDeploy()).metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
  });

  it('Recreate removes every old pod before the new ReplicaSet gets any', async () => {
    const d: Deployment = {
      metadata: { name: 'rec', namespace: NS },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'rec' } }, strategy: { type: 'Recreate' },
        template: { metadata: { labels: { app: 'rec' } }, spec: { containers: [{ name: 'app', image: 'v1' }] } },
      },
    };
    await cluster.client.create(R.deployments, d);
    const pods = await waitFor('2 pods', async () => { const p = await listPods('app=rec'); return p.length === 2 && p; });
    for (const p of pods) await markReady(cluster.client, p);
    await cluster.client.patch(R.deployments, 'rec', NS, { spec: { template: { spec: { containers: [{ name: 'app', image: 'v2' }] } } } }, 'merge');
    const oldHash = pods[0].metadata.labels?.['pod-template-hash'];
    await waitFor('2 new pods', async () => {
      const now = await listPods('app=rec');
      const hashes = new Set(now.map((p) => p.metadata.labels?.['pod-template-hash']));
      assert.ok(!(hashes.has(oldHash) && hashes.size > 1), 'old and new pods never coexist');
      return now.length === 2 && !hashes.has(oldHash);
    });
    await cluster.client.delete(R.deployments, 'rec', NS);
  });

  it('Endpoints list only ready pods, with named target ports resolved', async () => {
    const mkPod = (name: string, port: number): Pod => ({
      metadata: { name, namespace: NS, labels: { app: 'ep' } },
      spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', ports: [{ name: 'web', containerPort: port }] }] },
    });
    const a = await cluster.client.create(R.pods, mkPod('ep-a', 9080));
    const b = await cluster.client.create(R.pods, mkPod('ep-b', 9080));
    const c = await cluster.client.create(R.pods, mkPod('ep-c', 9080));
    const ra = await markReady(cluster.client, a);
    const rb = await markReady(cluster.client, b);
    const rc = await markReady(cluster.client, c, false);
    await cluster.client.create(R.services, {
      metadata: { name: 'ep', namespace: NS },
      spec: { selector: { app: 'ep' }, ports: [{ name: 'http', port: 80, targetPort: 'web', appProtocol: 'http' }] },
    });
    const ep = await waitFor('endpoints with 2 ready', async () => {
      const e = await cluster.client.find<Endpoints>(R.endpoints, 'ep', NS);
      return e?.subsets?.[0]?.addresses?.length === 2 && e;
    });
    assert.equal(ep.subsets?.length, 1);
    const s = ep.subsets?.[0];
    assert.deepEqual(s?.ports, [{ name: 'http', port: 9080, protocol: 'TCP', appProtocol: 'http' }]);
    assert.deepEqual(s?.addresses?.map((x) => x.ip).sort(), [ra.status?.podIP, rb.status?.podIP].sort());
    assert.deepEqual(s?.notReadyAddresses?.map((x) => [x.ip, x.targetRef?.kind, x.targetRef?.name]), [[rc.status?.podIP, 'Pod', 'ep-c']]);

    const slice = await waitFor('endpointslice', async () => {
      const l = await cluster.client.list<EndpointSlice>(R.endpointSlices, { namespace: NS, labelSelector: 'kubernetes.io/service-name=ep' });
      return l.items.length === 1 && l.items[0].endpoints.length === 3 && l.items[0];
    });
    assert.equal(slice.addressType, 'IPv4');
    assert.deepEqual(slice.ports, [{ name: 'http', port: 9080, protocol: 'TCP', appProtocol: 'http' }]);
    const cond = Object.fromEntries(slice.endpoints.map((e) => [e.targetRef?.name, e.conditions.ready]));
    assert.deepEqual(cond, { 'ep-a': true, 'ep-b': true, 'ep-c': false });

    // An unrelated pod change leaves the Endpoints object alone (no blind PUT).
    const rv = ep.metadata.resourceVersion;
    await cluster.client.patch(R.pods, 'ep-a', NS, { metadata: { annotations: { touched: 'yes' } } }, 'merge');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await cluster.client.get<Endpoints>(R.endpoints, 'ep', NS)).metadata.resourceVersion, rv);

    // A pod being deleted is not ready: deleting ep-a removes it from addresses.
    await cluster.client.delete(R.pods, 'ep-a', NS);
    await waitFor('ep-a gone from endpoints', async () => {
      const e = await cluster.client.get<Endpoints>(R.endpoints, 'ep', NS);
      return e.subsets?.[0]?.addresses?.length === 1 && e.subsets[0].addresses[0].targetRef?.name === 'ep-b';
    });
  });

  it('a new namespace gets the default ServiceAccount and kube-root-ca.crt', async () => {
    await cluster.client.create<Namespace>(R.namespaces, { metadata: { name: 'team-a' } });
    await waitFor('default SA', () => cluster.client.find<ServiceAccount>(R.serviceAccounts, 'default', 'team-a'));
    const cm = await waitFor('root CA', () => cluster.client.find<ConfigMap>(R.configMaps, 'kube-root-ca.crt', 'team-a'));
    assert.equal(cm.data?.['ca.crt'], cluster.api.caCertPem);
    // The publisher repairs what is deleted or edited.
    await cluster.client.delete(R.configMaps, 'kube-root-ca.crt', 'team-a');
    await cluster.client.delete(R.serviceAccounts, 'default', 'team-a');
    await waitFor('root CA republished', async () => (await cluster.client.find<ConfigMap>(R.configMaps, 'kube-root-ca.crt', 'team-a'))?.data?.['ca.crt'] === cluster.api.caCertPem);
    await waitFor('default SA recreated', () => cluster.client.find<ServiceAccount>(R.serviceAccounts, 'default', 'team-a'));
  });

  it('deleting a namespace deletes its content, then the namespace', async () => {
    await cluster.client.create<ConfigMap>(R.configMaps, { metadata: { name: 'cfg', namespace: 'team-a' }, data: { a: 'b' } });
    await cluster.client.create<Pod>(R.pods, { metadata: { name: 'p', namespace: 'team-a' }, spec: { containers: [{ name: 'c', image: 'x' }] } });
    await cluster.client.delete(R.namespaces, 'team-a');
    await waitFor('namespace gone', async () => {
      try { await cluster.client.get(R.namespaces, 'team-a'); return false; } catch (e) { return isNotFound(e); }
    }, 15_000);
  });

  it('deleting a Deployment garbage-collects its ReplicaSets and pods', async () => {
    assert.ok((await listRS('app=web')).length >= 1);
    await cluster.client.delete(R.deployments, 'web', NS);
    await waitFor('ReplicaSets gone', async () => (await listRS('app=web')).length === 0);
    await waitFor('pods gone', async () => (await listPods('app=web')).length === 0);
  });
});
