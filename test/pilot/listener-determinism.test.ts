// "A push that changes nothing changes nothing": the proxy drains connections of filter
// chains whose content changed, so pilot must encode unchanged listeners byte for byte the
// same. Generated twice from the same inputs, from the same inputs listed in another order
// (informer caches have no stable order after churn), and after a change that does not
// concern the listeners (another pod's readiness, a replica replaced), LDS bytes are equal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packAny } from '../../api/xds/protos.js';
import type { Pod } from '../../api/kube/index.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import type { ConfigInputs } from '../../pilot/model/inputs.js';
import { generatorFor } from '../../pilot/xds/generators/index.js';
import { TYPE_URL } from '../../api/xds/protos.js';
import { loadInputs } from './security-fixtures.js';
import { GW_NODE_ID, gateway, gatewayVs, httpServer, withGateway } from './gateway-fixtures.js';
import { REVIEWS, V1_NODE_ID } from './fixtures.js';

const WEB_A = 'sidecar~10.244.0.30~web-a.default~default.svc.cluster.local';
const DB = 'sidecar~10.244.0.40~db-0.default~default.svc.cluster.local';

/** Every listener a node gets, encoded as pilot sends it, by name. */
function ldsBytes(inputs: ConfigInputs, nodeId: string): Map<string, string> {
  const push = PushContext.build(inputs, { version: String(Math.random()), security: { enabled: true } });
  const proxy = resolveProxy(parseNodeId(nodeId), push);
  const lds = generatorFor(TYPE_URL.listener);
  assert.ok(lds);
  const out = new Map<string, string>();
  for (const r of lds.generate(push, proxy)) out.set(r.name, packAny(TYPE_URL.listener, r.resource as Record<string, unknown>).value.toString('base64'));
  return out;
}

/** The same objects, every list in reverse order and every object's keys reversed. */
function reordered(inputs: ConfigInputs): ConfigInputs {
  const flip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(flip);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, flip(x)]));
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const [k, list] of Object.entries(inputs)) out[k] = Array.isArray(list) ? [...list].reverse().map(flip) : list;
  return out as unknown as ConfigInputs;
}

function assertSame(a: Map<string, string>, b: Map<string, string>, what: string): void {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), `${what}: the same listener names`);
  for (const [name, bytes] of a) assert.equal(b.get(name), bytes, `${what}: listener ${name} encodes to the same bytes`);
}

const securityInputs = (): ConfigInputs => loadInputs('mesh.yaml', 'authz.yaml');

test('LDS bytes of a sidecar do not change when nothing relevant changed (same inputs, reordered inputs, another pod not ready, a replica replaced)', () => {
  for (const node of [WEB_A, DB]) {
    const base = ldsBytes(securityInputs(), node);
    assertSame(base, ldsBytes(securityInputs(), node), `${node}: generated twice`);
    assertSame(base, ldsBytes(reordered(securityInputs()), node), `${node}: inputs in another order`);

    // web-b stops being ready: its endpoint moves to notReadyAddresses.
    const notReady = securityInputs();
    const web = notReady.endpoints.find((e) => e.metadata.name === 'web');
    assert.ok(web?.subsets?.[0]);
    const [b, ...rest] = web.subsets[0].addresses ?? [];
    web.subsets[0] = { ...web.subsets[0], addresses: rest, notReadyAddresses: [b] };
    const pod = notReady.pods.find((p) => p.metadata.name === 'web-b') as Pod;
    pod.status = { ...pod.status, conditions: [{ type: 'Ready', status: 'False' }] };
    assertSame(base, ldsBytes(notReady, node), `${node}: web-b not ready`);

    // db-0 replaced by db-1 (pod churn, a new IP) as the informer would list it: last.
    const churn = securityInputs();
    const old = churn.pods.findIndex((p) => p.metadata.name === 'db-0');
    const dbPod = churn.pods[old];
    if (node !== DB) {
      churn.pods.splice(old, 1);
      churn.pods.push({ ...dbPod, metadata: { ...dbPod.metadata, name: 'db-1' }, status: { ...dbPod.status, podIP: '10.244.0.41' } });
      const dbEp = churn.endpoints.find((e) => e.metadata.name === 'db');
      assert.ok(dbEp?.subsets?.[0]);
      dbEp.subsets[0] = { ...dbEp.subsets[0], addresses: [{ ip: '10.244.0.41', targetRef: { kind: 'Pod', name: 'db-1', namespace: 'default' } }] };
      assertSame(base, ldsBytes(churn, node), `${node}: db replica replaced`);
    }
  }
});

test('LDS bytes of a gateway do not change when nothing relevant changed', () => {
  const inputs = (): ConfigInputs => withGateway(
    [gateway('gw', [httpServer(['*'])])],
    [gatewayVs('ingress', ['*'], ['gw'], [{ route: [{ destination: { host: REVIEWS, subset: 'v1' }, weight: 80 }, { destination: { host: REVIEWS, subset: 'v2' }, weight: 20 }] }])],
  );
  const base = ldsBytes(inputs(), GW_NODE_ID);
  assert.ok(base.size > 0, 'the gateway has a listener');
  assertSame(base, ldsBytes(inputs(), GW_NODE_ID), 'gateway: generated twice');
  assertSame(base, ldsBytes(reordered(inputs()), GW_NODE_ID), 'gateway: inputs in another order');
  const sidecar = ldsBytes(inputs(), V1_NODE_ID);
  assertSame(sidecar, ldsBytes(reordered(inputs()), V1_NODE_ID), 'reviews-v1 sidecar: inputs in another order');
});

test('a relevant change does change the bytes (the comparison can fail)', () => {
  const base = ldsBytes(securityInputs(), WEB_A);
  const strict = loadInputs('mesh.yaml', 'authz.yaml', 'strict-mesh.yaml');
  assert.notEqual(ldsBytes(strict, WEB_A).get('virtualInbound'), base.get('virtualInbound'), 'mesh STRICT changes virtualInbound');
});
