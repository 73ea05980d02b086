// Deployment rollouts beyond the basics, through a real apiserver: events, rollout history
// and undo (as kubectl does it in apps/v1), pause/resume, minReadySeconds,
// progressDeadlineSeconds and revisionHistoryLimit. No kubelet runs; the test marks pods ready.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { R, type Deployment, type Pod, type ReplicaSet } from '../../api/kube/index.js';
import { EventRecorder, startControllers, type CoreEvent } from '../../cluster/controllers/index.js';
import { isReady, markReady, startCluster, waitFor, type Cluster } from './harness.js';

const NS = 'default';
const REV = 'deployment.kubernetes.io/revision';

describe('deployment rollouts', () => {
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

  const listPods = async (app: string) => (await cluster.client.list<Pod>(R.pods, { namespace: NS, labelSelector: `app=${app}` })).items
    .filter((p) => !p.metadata.deletionTimestamp);
  const listRS = async (app: string) => (await cluster.client.list<ReplicaSet>(R.replicaSets, { namespace: NS, labelSelector: `app=${app}` })).items;
  const getDeploy = (name: string) => cluster.client.get<Deployment>(R.deployments, name, NS);
  const eventsFor = async (kind: string, name: string) => (await cluster.client.list<CoreEvent>(R.events, {
    namespace: NS, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  })).items;

  function deployment(name: string, image: string, spec: Partial<Deployment['spec']> = {}): Deployment {
    return {
      metadata: { name, namespace: NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
        ...spec,
      },
    };
  }
  const setImage = (name: string, image: string) =>
    cluster.client.patch(R.deployments, name, NS, { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } }, 'merge');

  /** Plays the kubelet until the Deployment reports a completed rollout. */
  async function settle(name: string): Promise<Deployment> {
    return waitFor(`${name} rollout complete`, async () => {
      for (const p of await listPods(name)) if (!isReady(p)) await markReady(cluster.client, p);
      const d = await getDeploy(name);
      const c = d.status?.conditions?.find((x) => x.type === 'Progressing');
      return c?.reason === 'NewReplicaSetAvailable' && d.status?.updatedReplicas === d.spec.replicas
        && d.status?.replicas === d.spec.replicas && d.status?.observedGeneration === d.metadata.generation && d;
    }, 15_000);
  }

  it('records ScalingReplicaSet and SuccessfulCreate events', async () => {
    await cluster.client.create(R.deployments, deployment('ev', 'v1', { replicas: 2 }));
    const [rs] = await waitFor('ReplicaSet', async () => { const l = await listRS('ev'); return l.length === 1 && l; });
    const scaling = await waitFor('ScalingReplicaSet event', async () => (await eventsFor('Deployment', 'ev')).find((e) => e.reason === 'ScalingReplicaSet'));
    assert.equal(scaling.message, `Scaled up replica set ${rs.metadata.name} from 0 to 2`);
    assert.equal(scaling.type, 'Normal');
    assert.equal(scaling.source?.component, 'deployment-controller');
    assert.equal(scaling.count, 1);
    assert.ok(scaling.firstTimestamp && scaling.lastTimestamp);
    const created = await waitFor('2 SuccessfulCreate events', async () => {
      const l = (await eventsFor('ReplicaSet', rs.metadata.name as string)).filter((e) => e.reason === 'SuccessfulCreate');
      return l.length === 2 && l;
    });
    const pods = await listPods('ev');
    assert.deepEqual(created.map((e) => e.message).sort(), pods.map((p) => `Created pod: ${p.metadata.name}`).sort());
    assert.equal(created[0].involvedObject.uid, rs.metadata.uid);
    assert.equal(created[0].involvedObject.apiVersion, 'apps/v1');

    await cluster.client.patch(R.deployments, 'ev', NS, { spec: { replicas: 1 } }, 'merge');
    const del = await waitFor('SuccessfulDelete', async () => (await eventsFor('ReplicaSet', rs.metadata.name as string)).find((e) => e.reason === 'SuccessfulDelete'));
    assert.match(del.message ?? '', new RegExp(`^Deleted pod: ${rs.metadata.name}-`));
    await waitFor('scaled down event', async () => (await eventsFor('Deployment', 'ev'))
      .some((e) => e.message === `Scaled down replica set ${rs.metadata.name} to 1 from 2`));
  });

  it('an EventRecorder aggregates a repeated event into one Event with a count', async () => {
    const cm = await cluster.client.create(R.configMaps, { metadata: { name: 'agg', namespace: NS }, data: {} });
    const rec = new EventRecorder(cluster.client, { component: 'test-component', host: 'node-1' });
    for (let i = 0; i < 3; i++) rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Warning', 'Flapping', 'it happened');
    rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Normal', 'Other', 'something else');
    await rec.flush();
    const evs = await eventsFor('ConfigMap', 'agg');
    assert.equal(evs.length, 2);
    const flap = evs.find((e) => e.reason === 'Flapping') as CoreEvent;
    assert.equal(flap.count, 3);
    assert.deepEqual(flap.source, { component: 'test-component', host: 'node-1' });
    assert.ok(Date.parse(flap.lastTimestamp as string) >= Date.parse(flap.firstTimestamp as string));
    // A deleted Event is started afresh.
    await cluster.client.delete(R.events, flap.metadata.name as string, NS);
    rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Warning', 'Flapping', 'it happened');
    await rec.flush();
    const again = (await eventsFor('ConfigMap', 'agg')).find((e) => e.reason === 'Flapping');
    assert.equal(again?.count, 1);
  });

  it('rollout undo re-uses the old ReplicaSet under a new revision, keeping revision-history', async () => {
    await cluster.client.create(R.deployments, deployment('hist', 'v1', { revisionHistoryLimit: 1 }));
    await settle('hist');
    const [rs1] = await listRS('hist');
    assert.equal(rs1.metadata.annotations?.[REV], '1');
    await setImage('hist', 'v2');
    const d2 = await settle('hist');
    assert.equal(d2.metadata.annotations?.[REV], '2');
    assert.equal((await listRS('hist')).length, 2);

    // kubectl rollout undo (apps/v1): the Deployment's template becomes revision 1's, minus pod-template-hash.
    const template = structuredClone(rs1.spec.template);
    delete template.metadata?.labels?.['pod-template-hash'];
    await cluster.client.patch(R.deployments, 'hist', NS, [
      { op: 'replace', path: '/spec/template', value: template },
    ], 'json');
    const d3 = await settle('hist');
    assert.equal(d3.metadata.annotations?.[REV], '3');
    const all = await listRS('hist');
    assert.equal(all.length, 2, 'no new ReplicaSet for a template that already has one');
    const back = all.find((r) => r.metadata.uid === rs1.metadata.uid) as ReplicaSet;
    assert.equal(back.metadata.annotations?.[REV], '3');
    assert.equal(back.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1');
    assert.equal(back.spec.replicas, 1);
    const pods = await listPods('hist');
    assert.ok(pods.length === 1 && pods[0].metadata.labels?.['pod-template-hash'] === rs1.metadata.labels?.['pod-template-hash']);

    // revisionHistoryLimit 1: a third template leaves the new ReplicaSet and one old one.
    await setImage('hist', 'v3');
    await settle('hist');
    const left = await waitFor('history trimmed to 1', async () => { const l = await listRS('hist'); return l.length === 2 && l; });
    assert.deepEqual(left.map((r) => r.metadata.annotations?.[REV]).sort(), ['3', '4']);
  });

  it('a paused Deployment scales but does not roll out until resumed', async () => {
    await cluster.client.create(R.deployments, deployment('pz', 'v1'));
    await settle('pz');
    const [rs1] = await listRS('pz');
    await cluster.client.patch(R.deployments, 'pz', NS, { spec: { paused: true } }, 'merge');
    await setImage('pz', 'v2');
    await cluster.client.patch(R.deployments, 'pz', NS, { spec: { replicas: 3 } }, 'merge');
    await waitFor('old ReplicaSet scaled to 3', async () => (await cluster.client.get<ReplicaSet>(R.replicaSets, rs1.metadata.name as string, NS)).spec.replicas === 3);
    const paused = await waitFor('Progressing DeploymentPaused', async () => {
      const d = await getDeploy('pz');
      return d.status?.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'DeploymentPaused') && d;
    });
    assert.equal(paused.status?.observedGeneration, paused.metadata.generation);
    assert.equal((await listRS('pz')).length, 1, 'no ReplicaSet for the new template while paused');

    await cluster.client.patch(R.deployments, 'pz', NS, { spec: { paused: false } }, 'merge');
    await settle('pz');
    const rss = await listRS('pz');
    assert.equal(rss.length, 2);
    assert.equal(rss.find((r) => r.metadata.uid === rs1.metadata.uid)?.spec.replicas, 0);
    assert.equal((await listPods('pz')).length, 3);
  });

  it('minReadySeconds delays availability', async () => {
    await cluster.client.create(R.deployments, deployment('slow', 'v1', { minReadySeconds: 2 }));
    const [pod] = await waitFor('pod', async () => { const l = await listPods('slow'); return l.length === 1 && l; });
    const readyAt = Date.now();
    await markReady(cluster.client, pod);
    await waitFor('ready counted', async () => (await getDeploy('slow')).status?.readyReplicas === 1);
    assert.equal((await getDeploy('slow')).status?.availableReplicas ?? 0, 0, 'ready but not yet available');
    await waitFor('available after minReadySeconds', async () => (await getDeploy('slow')).status?.availableReplicas === 1, 5_000);
    assert.ok(Date.now() - readyAt >= 1_900, `available after ${Date.now() - readyAt} ms`);
  });

  it('progressDeadlineSeconds turns Progressing False with ProgressDeadlineExceeded', async () => {
    await cluster.client.create(R.deployments, deployment('stuck', 'v1', { progressDeadlineSeconds: 1 }));
    const cond = await waitFor('deadline exceeded', async () => (await getDeploy('stuck')).status?.conditions
      ?.find((c) => c.type === 'Progressing' && c.status === 'False'), 6_000);
    assert.equal(cond.reason, 'ProgressDeadlineExceeded');
    assert.match(cond.message ?? '', /has timed out progressing/);
  });
});
