// MeshConfig accessLogFile + accessLogEncoding JSON: pilot gives every sidecar HCM Envoy's
// file access logger with Istio's JSON fields, and the proxy accepts and renders it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL, packAny, unpackAny } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { parseNodeId, resolveProxy } from '../../pilot/model/proxy.js';
import { generateListeners } from '../../pilot/xds/generators/index.js';
import { decodeListener } from '../../proxy/xds/resources/listener.js';
import type { Obj } from '../../proxy/xds/resources/fields.js';
import { bookinfo, V1_NODE_ID } from './fixtures.js';

function decoded(mesh?: { accessLogFile: string; accessLogEncoding: 'TEXT' | 'JSON' }) {
  const push = PushContext.build(bookinfo(), { version: '1', mesh });
  const proxy = resolveProxy(parseNodeId(V1_NODE_ID), push);
  return generateListeners(push, proxy).map((l) => {
    // Through the wire, as the proxy receives it.
    const raw = unpackAny(packAny(TYPE_URL.listener, l as unknown as Record<string, unknown>)) as Obj;
    const d = decodeListener(raw);
    assert.deepEqual(d.errors, [], `listener ${l.name} is accepted`);
    return d.value;
  });
}

test('accessLogEncoding JSON: every HTTP connection manager logs one JSON object with Istio\'s fields to accessLogFile', () => {
  const listeners = decoded({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' });
  const hcms = listeners.flatMap((l) => l?.filterChains ?? []).flatMap((c) => (c.filter.kind === 'http' ? [c.filter] : []));
  assert.ok(hcms.length >= 2, 'outbound and inbound HCMs');
  for (const h of hcms) {
    assert.equal(h.accessLogs.length, 1);
    assert.equal(h.accessLogs[0].path, '/dev/stdout');
    const line = h.accessLogs[0].formatter.render({
      startTime: new Date(0), method: 'GET', path: '/p', protocol: 'HTTP/1.1', responseCode: 503, responseFlags: 'UF',
      bytesReceived: 0, bytesSent: 19, durationMs: 2.4, upstreamCluster: 'outbound|9080||reviews', downstreamPeerPrincipal: 'spiffe://cluster.local/ns/a/sa/b',
    });
    const e = JSON.parse(line) as Record<string, unknown>;
    assert.equal(e.response_code, 503);
    assert.equal(e.response_flags, 'UF');
    assert.equal(e.upstream_cluster, 'outbound|9080||reviews');
    assert.equal(e.downstream_peer_uri_san, 'spiffe://cluster.local/ns/a/sa/b');
    assert.equal(e.path, '/p');
    assert.equal(e.user_agent, null);
  }
});

test('no accessLogFile: no access_log config (the proxy keeps its default line)', () => {
  const hcms = decoded().flatMap((l) => l?.filterChains ?? []).flatMap((c) => (c.filter.kind === 'http' ? [c.filter] : []));
  assert.ok(hcms.length >= 2);
  for (const h of hcms) assert.deepEqual(h.accessLogs, []);
});
