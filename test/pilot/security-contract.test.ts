// The contract between pilot and the proxy, checked from pilot's side: the security config
// pilot generates, encoded as Envoy protos and decoded the way the proxy receives it, is
// accepted by the proxy's resource decoders (no NACK) where the proxy already implements
// that part (inbound TLS chains and XFCC; outbound transport socket matches and metadata).
// RBAC filters are not in these cases: the proxy does not implement them yet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { generateClusters, generateEndpoints, generateListeners } from '../../pilot/xds/generators/index.js';
import { decodeListener } from '../../proxy/xds/resources/listener.js';
import { decodeCluster } from '../../proxy/xds/resources/cluster.js';
import { decodeLoadAssignment } from '../../proxy/xds/resources/endpoint.js';
import { loadInputs } from './security-fixtures.js';

type Obj = Record<string, unknown>;
const wire = (typeUrl: string, r: object): Obj => {
  const { '@type': _t, ...body } = unpackAny<Obj>(packAny(typeUrl, r));
  return body;
};

for (const files of [[], ['strict-mesh.yaml'], ['ns-disable.yaml'], ['dr-tls.yaml']]) {
  test(`the proxy accepts pilot's security config (${files.join(', ') || 'no policy'})`, () => {
    const push = PushContext.build(loadInputs('mesh.yaml', ...files), { version: '1', security: { enabled: true } });
    const proxy = resolveProxy(parseNodeId('sidecar~10.244.0.30~web-a.default~default.svc.cluster.local'), push);
    const inbound = generateListeners(push, proxy).find((l) => l.name === 'virtualInbound');
    assert.ok(inbound);
    const l = decodeListener(wire(TYPE_URL.listener, inbound));
    assert.deepEqual(l.errors, [], 'virtualInbound');
    // The proxy selects chains by what pilot meant: same ports and transport protocols.
    const decoded = (l.value?.filterChains ?? []) as unknown as { match: { destinationPort?: number; transportProtocol?: string } }[];
    assert.deepEqual(decoded.map((c) => `${c.match.destinationPort ?? '*'}/${c.match.transportProtocol ?? 'any'}`),
      inbound.filterChains.map((c) => `${c.filterChainMatch?.destinationPort?.value ?? '*'}/${c.filterChainMatch?.transportProtocol ?? 'any'}`));
    for (const c of generateClusters(push, proxy)) {
      // SIMPLE/MUTUAL name files that do not exist here; only their shape is checked elsewhere.
      if (c.transportSocket && !(c.transportSocket.typedConfig.commonTlsContext as Obj).tlsCertificateSdsSecretConfigs) continue;
      assert.deepEqual(decodeCluster(wire(TYPE_URL.cluster, c)).errors, [], c.name);
    }
    for (const e of generateEndpoints(push, 'default')) assert.deepEqual(decodeLoadAssignment(wire(TYPE_URL.clusterLoadAssignment, e)).errors, [], e.clusterName);
  });
}
