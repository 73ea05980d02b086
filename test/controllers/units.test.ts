// Pure pieces of the controllers and scheduler: template hashing, rollout arithmetic,
// endpoint resolution, scheduler filters and messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Deployment, Node, Pod, Service } from '../../api/kube/index.js';
import { podTemplateHash, proportionalScale, resolveIntOrPercent, surgeAndUnavailable } from '../../cluster/controllers/deployment-util.js';
import { targetNodeOf } from '../../cluster/controllers/daemonset.js';
import { ordinalOf } from '../../cluster/controllers/statefulset.js';
import { endpointGroups, resolveTargetPort } from '../../cluster/controllers/endpoint-addresses.js';
import { compareForDeletion } from '../../cluster/controllers/pod-util.js';
import { filterNode, fitErrorMessage, tolerates } from '../../cluster/scheduler/predicates.js';
import { scoreNodes } from '../../cluster/scheduler/score.js';
import type { Placement } from '../../cluster/scheduler/spread.js';
import { parseQuantity, toAmount } from '../../cluster/scheduler/quantity.js';

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'x' }] } };

function deployment(replicas: number, ru?: { maxSurge?: number | string; maxUnavailable?: number | string }): Deployment {
  return { metadata: { name: 'd' }, spec: { replicas, selector: { matchLabels: { app: 'web' } }, template, strategy: { type: 'RollingUpdate', rollingUpdate: ru } } };
}

describe('deployment arithmetic', () => {
  it('hashes templates stably, ignoring key order and the hash label', () => {
    const a = podTemplateHash(template);
    const b = podTemplateHash({ spec: { containers: [{ image: 'x', name: 'c' }] }, metadata: { labels: { app: 'web', 'pod-template-hash': a } } });
    assert.equal(a, b);
    assert.match(a, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
    assert.notEqual(a, podTemplateHash({ ...template, spec: { containers: [{ name: 'c', image: 'y' }] } }));
    assert.notEqual(a, podTemplateHash(template, 1));
  });

  it('rounds surge up and unavailable down, as Kubernetes', () => {
    assert.deepEqual(surgeAndUnavailable(deployment(3)), { maxSurge: 1, maxUnavailable: 0 });
    assert.deepEqual(surgeAndUnavailable(deployment(10)), { maxSurge: 3, maxUnavailable: 2 });
    assert.deepEqual(surgeAndUnavailable(deployment(4, { maxSurge: 0, maxUnavailable: 0 })), { maxSurge: 0, maxUnavailable: 1 });
    assert.equal(resolveIntOrPercent('50%', 5, true, '25%'), 3);
    assert.throws(() => resolveIntOrPercent('x%', 5, true, '25%'), /int-or-percent/);
  });
});

describe('pod ranking for scale-down', () => {
  it('prefers unscheduled, then not ready, then newest', () => {
    const pod = (name: string, node: string | undefined, ready: boolean, created: string): Pod => ({
      metadata: { name, creationTimestamp: created }, spec: { nodeName: node, containers: [] },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    });
    const pods = [pod('old-ready', 'n', true, '2024-01-01T00:00:00Z'), pod('new-ready', 'n', true, '2024-01-02T00:00:00Z'),
      pod('unready', 'n', false, '2024-01-01T00:00:00Z'), pod('unscheduled', undefined, true, '2024-01-01T00:00:00Z')];
    assert.deepEqual([...pods].sort(compareForDeletion).map((p) => p.metadata.name), ['unscheduled', 'unready', 'new-ready', 'old-ready']);
  });
});

describe('endpoint resolution', () => {
  const pod = (name: string, ip: string | undefined, ready: boolean, port = 8080, deleting = false): Pod => ({
    metadata: { name, namespace: 'ns', uid: `u-${name}`, labels: { app: 'web' }, deletionTimestamp: deleting ? '2024-01-01T00:00:00Z' : undefined },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: port }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  const svc: Service = { metadata: { name: 's', namespace: 'ns' }, spec: { selector: { app: 'web' }, ports: [{ name: 'web', port: 80, targetPort: 'http', appProtocol: 'http' }] } };

  it('resolves named target ports per pod and groups by port set', () => {
    assert.equal(resolveTargetPort(pod('a', '1.1.1.1', true), { port: 80, targetPort: 'http' }), 8080);
    assert.equal(resolveTargetPort(pod('a', '1.1.1.1', true), { port: 80, targetPort: 'nope' }), undefined);
    assert.equal(resolveTargetPort(pod('a', '1.1.1.1', true), { port: 80 }), 80);
    const groups = endpointGroups(svc, [pod('a', '10.0.0.2', true), pod('b', '10.0.0.3', false), pod('c', '10.0.0.4', true, 9090), pod('d', undefined, true), pod('e', '10.0.0.5', true, 8080, true)]);
    assert.equal(groups.length, 2);
    const g8080 = groups.find((g) => g.ports[0].port === 8080);
    assert.deepEqual(g8080?.ports, [{ name: 'web', port: 8080, protocol: 'TCP', appProtocol: 'http' }]);
    assert.deepEqual(g8080?.endpoints.map((e) => [e.ip, e.ready, e.terminating]), [['10.0.0.2', true, false], ['10.0.0.3', false, false], ['10.0.0.5', false, true]]);
  });

  it('gives a pod whose subdomain names the Service its hostname (StatefulSet DNS)', () => {
    const named = (sub: string): Pod => { const p = pod('db-0', '10.0.0.9', true); Object.assign(p.spec, { hostname: 'db-0', subdomain: sub }); return p; };
    assert.equal(endpointGroups(svc, [named('s')])[0].endpoints[0].address.hostname, 'db-0');
    assert.equal(endpointGroups(svc, [named('other')])[0].endpoints[0].address.hostname, undefined);
  });
});

describe('scheduler filters', () => {
  const node = (name: string, extra: Partial<Node> = {}): Node => ({
    metadata: { name, labels: { zone: 'a' } },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu: '2', memory: '1Gi', pods: '110' } },
    ...extra,
  });
  const pod = (spec: Partial<Pod['spec']> = {}): Pod => ({ metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }], ...spec } });

  it('parses quantities', () => {
    assert.equal(toAmount('cpu', '250m'), 250);
    assert.equal(toAmount('cpu', '1.5'), 1500);
    assert.equal(parseQuantity('128Mi'), 128 * 1024 * 1024);
    assert.equal(parseQuantity('1e3'), 1000);
    assert.throws(() => parseQuantity('abc', 'spec.containers[0].resources.requests.cpu'), /spec.containers\[0\].resources.requests.cpu/);
  });

  it('checks readiness, selector, taints and resources', () => {
    assert.deepEqual(filterNode(pod(), node('n'), {}), []);
    assert.deepEqual(filterNode(pod({ nodeSelector: { zone: 'b' } }), node('n'), {}), ["node(s) didn't match Pod's node affinity/selector"]);
    assert.deepEqual(filterNode(pod(), node('n', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }), {}), ['node(s) had untolerated taint {node.kubernetes.io/not-ready: }']);
    const tainted = node('n', { spec: { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } });
    assert.deepEqual(filterNode(pod(), tainted, {}), ['node(s) had untolerated taint {dedicated: gpu}']);
    assert.deepEqual(filterNode(pod({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }), tainted, {}), []);
    assert.equal(tolerates({ operator: 'Exists' }, { key: 'any', effect: 'NoSchedule' }), true);
    assert.deepEqual(filterNode(pod({ containers: [{ name: 'c', resources: { requests: { cpu: '3', memory: '2Gi' } } }] }), node('n'), {}), ['Insufficient cpu', 'Insufficient memory']);
    assert.deepEqual(filterNode(pod(), node('n'), { pods: 110 }), ['Too many pods']);
    assert.deepEqual(filterNode(pod(), node('n', { spec: { unschedulable: true } }), {}), ['node(s) were unschedulable']);
  });

  it('formats the FitError as kube-scheduler does', () => {
    assert.equal(fitErrorMessage(1, [["node(s) didn't match Pod's node affinity/selector"]]), "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.");
    assert.equal(fitErrorMessage(3, [['Insufficient cpu'], ['node(s) were unschedulable'], ['Insufficient cpu']]), '0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.');
  });
});

describe('scheduler plugins: node affinity, host ports, topology spread, scoring', () => {
  const node = (name: string, labels: Record<string, string> = {}, extra: Partial<Node> = {}): Node => ({
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu: '2', memory: '2Gi', pods: '110' } },
    ...extra,
  });
  const pod = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}): Pod =>
    ({ metadata: { name, namespace: 'ns', labels }, spec: { containers: [{ name: 'c' }], ...spec } as Pod['spec'] });
  const placed = (nodes: Node[], pods: Record<string, Pod[]> = {}): Placement => ({ nodes, podsOn: (n) => pods[n] ?? [] });
  const required = (...exprs: { key: string; operator: string; values?: string[] }[]) =>
    ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: exprs }] } } } });
  const AFFINITY = "node(s) didn't match Pod's node affinity/selector";

  it('matches required node affinity with In, NotIn, Exists, DoesNotExist, Gt and Lt', () => {
    const n = node('n', { disk: 'ssd', cores: '8' });
    const fits = (...exprs: { key: string; operator: string; values?: string[] }[]) => filterNode(pod('p', required(...exprs)), n, {}).length === 0;
    assert.equal(fits({ key: 'disk', operator: 'In', values: ['ssd', 'nvme'] }), true);
    assert.equal(fits({ key: 'disk', operator: 'In', values: ['hdd'] }), false);
    assert.equal(fits({ key: 'disk', operator: 'NotIn', values: ['hdd'] }), true);
    assert.equal(fits({ key: 'gpu', operator: 'NotIn', values: ['x'] }), true, 'NotIn matches a node without the label');
    assert.equal(fits({ key: 'disk', operator: 'Exists' }), true);
    assert.equal(fits({ key: 'gpu', operator: 'DoesNotExist' }), true);
    assert.equal(fits({ key: 'disk', operator: 'DoesNotExist' }), false);
    assert.equal(fits({ key: 'cores', operator: 'Gt', values: ['4'] }), true);
    assert.equal(fits({ key: 'cores', operator: 'Lt', values: ['4'] }), false);
    assert.equal(fits({ key: 'disk', operator: 'Gt', values: ['4'] }), false, 'Gt on a value that is not an integer matches nothing');
    assert.equal(fits({ key: 'disk', operator: 'Exists' }, { key: 'cores', operator: 'Lt', values: ['4'] }), false, 'requirements are ANDed');
    assert.deepEqual(filterNode(pod('p', required({ key: 'disk', operator: 'In', values: ['hdd'] })), n, {}), [AFFINITY]);
  });

  it('prefers nodes by the weights of the preferred terms they match', () => {
    const a = node('a', { disk: 'ssd' });
    const b = node('b', { disk: 'hdd' });
    const p = pod('p', { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 10, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['hdd'] }] } },
      { weight: 1, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } },
    ] } } });
    const s = scoreNodes(p, { pods: 1 }, [a, b], placed([a, b]), () => ({}));
    assert.ok((s.get('b') ?? 0) > (s.get('a') ?? 0), JSON.stringify([...s]));
  });

  it('refuses a node whose host port is taken (same protocol, overlapping host IP)', () => {
    const n = node('n');
    const withPort = (name: string, hostPort: number, protocol = 'TCP', hostIP?: string) =>
      pod(name, { containers: [{ name: 'c', ports: [{ containerPort: 80, hostPort, protocol, hostIP }] }] });
    const busy = placed([n], { n: [withPort('old', 8080)] });
    assert.deepEqual(filterNode(withPort('new', 8080), n, {}, busy), ["node(s) didn't have free ports for the requested pod ports"]);
    assert.deepEqual(filterNode(withPort('new', 8080, 'UDP'), n, {}, busy), [], 'another protocol');
    assert.deepEqual(filterNode(withPort('new', 8081), n, {}, busy), [], 'another port');
    assert.deepEqual(filterNode(withPort('new', 8080, 'TCP', '127.0.0.2'), n, {}, busy), ["node(s) didn't have free ports for the requested pod ports"], '0.0.0.0 takes every address');
    assert.deepEqual(filterNode(withPort('new', 8080, 'TCP', '127.0.0.2'), n, {}, placed([n], { n: [withPort('old', 8080, 'TCP', '127.0.0.3')] })), []);
  });

  it('keeps topologySpreadConstraints within maxSkew on kubernetes.io/hostname', () => {
    const a = node('a');
    const b = node('b');
    const spread = { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }] };
    const web = (name: string) => pod(name, spread, { app: 'web' });
    const state = placed([a, b], { a: [web('w1'), web('w2')], b: [web('w3')] });
    assert.deepEqual(filterNode(web('w4'), a, {}, state), ["node(s) didn't match pod topology spread constraints"]);
    assert.deepEqual(filterNode(web('w4'), b, {}, state), []);
    assert.deepEqual(filterNode(web('w4'), node('c', {}, { metadata: { name: 'c', labels: {} } }), {}, state),
      ["node(s) didn't match pod topology spread constraints (missing required label)"]);
    assert.equal(fitErrorMessage(2, [["node(s) didn't match pod topology spread constraints"], ["node(s) didn't match pod topology spread constraints"]]),
      "0/2 nodes are available: 2 node(s) didn't match pod topology spread constraints.");
  });

  it('spreads the pods of one controller by default and scores least allocated', () => {
    const a = node('a');
    const b = node('b');
    const owned = (name: string) => ({ ...pod(name), metadata: { name, namespace: 'ns', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true }] } }) as Pod;
    const s = scoreNodes(owned('p3'), { pods: 1 }, [a, b], placed([a, b], { a: [owned('p1'), owned('p2')], b: [pod('other')] }), () => ({}));
    assert.ok((s.get('b') ?? 0) > (s.get('a') ?? 0), `the node without the controller's pods wins: ${JSON.stringify([...s])}`);
    const la = scoreNodes(pod('p'), { cpu: 500, pods: 1 }, [a, b], placed([a, b]), (n): Record<string, number> => (n === 'a' ? { cpu: 1500, memory: 1 << 30 } : {}));
    assert.ok((la.get('b') ?? 0) > (la.get('a') ?? 0), `the emptier node wins: ${JSON.stringify([...la])}`);
  });
});

describe('workload arithmetic', () => {
  it('scales paused ReplicaSets in proportion, leftovers to the newest', () => {
    assert.deepEqual(proportionalScale([2, 2], 6), [3, 3]);
    assert.deepEqual(proportionalScale([3, 1], 6), [4, 2]);
    assert.deepEqual(proportionalScale([1, 1], 3), [1, 2]);
    assert.deepEqual(proportionalScale([0, 0], 2), [0, 2]);
    assert.deepEqual(proportionalScale([4, 2], 0), [0, 0]);
  });

  it('reads StatefulSet ordinals and DaemonSet target nodes', () => {
    assert.equal(ordinalOf('db', 'db-0'), 0);
    assert.equal(ordinalOf('db', 'db-12'), 12);
    assert.equal(ordinalOf('db', 'db-01'), -1);
    assert.equal(ordinalOf('db', 'dbx-1'), -1);
    assert.equal(ordinalOf('db', 'db-web-1'), -1);
    const pinned: Pod = { metadata: {}, spec: { containers: [], affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }] } } } } as Pod['spec'] };
    assert.equal(targetNodeOf(pinned), 'n1');
    assert.equal(targetNodeOf({ ...pinned, spec: { ...pinned.spec, nodeName: 'n2' } }), 'n2');
  });
});
