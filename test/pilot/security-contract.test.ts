// The contract between pilot and the proxy, checked from pilot's side: the security config
// pilot generates, encoded as Envoy protos and decoded the way the proxy receives it, is
// accepted by the proxy's resource decoders (no NACK): inbound TLS chains, XFCC and the
// RBAC filters pilot translates AuthorizationPolicy into; outbound transport socket matches
// and metadata.
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
import { runRbac } from '../../proxy/http/rbac-stage.js';
import type { RbacAttributes } from '../../proxy/xds/resources/rbac.js';

type Obj = Record<string, unknown>;
const wire = (typeUrl: string, r: object): Obj => {
  const { '@type': _t, ...body } = unpackAny<Obj>(packAny(typeUrl, r));
  return body;
};

for (const files of [[], ['strict-mesh.yaml'], ['ns-disable.yaml'], ['dr-tls.yaml'], ['authz.yaml']]) {
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
    if (files.includes('authz.yaml')) {
      // The RBAC filters were decoded, not skipped: HTTP chains carry LOG, DENY, ALLOW and the
      // TCP port 9000 its network RBAC filters, and they decide as pilot meant.
      const chains = (l.value?.filterChains ?? []);
      const http = chains.find((c) => c.filter.kind === 'http' && c.match.destinationPort === 8080 && c.tls);
      assert.ok(http && http.filter.kind === 'http');
      assert.deepEqual(http.filter.rbac.map((r) => r.action), ['LOG', 'DENY', 'ALLOW']);
      const attrs = (principal: string | undefined, path: string, user: string): RbacAttributes => ({
        headers: { ':method': 'GET', ':path': path, 'x-user': user }, path, destinationIp: '10.244.0.30', destinationPort: 8080, sourceIp: '10.244.0.9', principal,
      });
      const allowed = (a: RbacAttributes): boolean => runRbac(http.filter.kind === 'http' ? http.filter.rbac : [], a) === undefined;
      assert.equal(allowed(attrs('spiffe://cluster.local/ns/default/sa/a', '/x', 'alice1')), true);
      assert.equal(allowed(attrs('spiffe://cluster.local/ns/default/sa/b', '/x', 'alice1')), false);
      assert.equal(allowed(attrs('spiffe://cluster.local/ns/ops/sa/x', '/x', '')), true);
      assert.equal(allowed({ ...attrs('spiffe://cluster.local/ns/ops/sa/x', '/admin', ''), sourceIp: '192.0.2.1' }), false);
      assert.equal(allowed(attrs(undefined, '/x', 'alice1')), false);
      const tcp = chains.find((c) => c.filter.kind === 'tcp' && c.match.destinationPort === 9000);
      assert.ok(tcp && tcp.networkRbac.length > 0, 'port 9000 carries network RBAC');
    }
    for (const c of generateClusters(push, proxy)) {
      // SIMPLE/MUTUAL name files that do not exist here; only their shape is checked elsewhere.
      if (c.transportSocket && !(c.transportSocket.typedConfig.commonTlsContext as Obj).tlsCertificateSdsSecretConfigs) continue;
      assert.deepEqual(decodeCluster(wire(TYPE_URL.cluster, c)).errors, [], c.name);
    }
    for (const e of generateEndpoints(push, 'default')) assert.deepEqual(decodeLoadAssignment(wire(TYPE_URL.clusterLoadAssignment, e)).errors, [], e.clusterName);
  });
}
