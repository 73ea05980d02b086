// The proxy's delta ADS client and config store against the real pilot (its delta server
// and translation of a bookinfo-like mesh): every type ACKed (pilot's /debug/syncz says
// so), a VirtualService change updating the proxy's route, and a removed Service removing
// its cluster, assignment, listener and route from the proxy's config.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TYPE_URL } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { DebugServer } from '../../pilot/debug.js';
import { DeltaAdsClient } from '../../proxy/xds/delta-ads-client.js';
import { XdsConfig } from '../../proxy/xds/xds-config.js';
import { buildNode } from '../../proxy/xds/node.js';
import { RATINGS, REVIEWS, V1_IP, bookinfo, reviewsVs } from '../pilot/fixtures.js';
import { waitFor } from './fixtures.js';

const stops: Array<() => unknown> = [];
after(async () => { for (const s of stops.reverse()) await s(); });

test('delta ADS client against the real pilot: ACKed sync, route change, Service removal', async () => {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  let push = PushContext.build(bookinfo(), { version: '1' });
  xds.update(push);
  const debug = new DebugServer({ ready: () => true, snapshot: () => push, syncz: () => xds.syncz(), metrics: xds.metrics }, { host: '127.0.0.1', port: 0 });
  const debugPort = await debug.start();
  stops.push(() => xds.stop(), () => debug.stop());
  const setPush = (p: PushContext): void => { push = p; xds.update(p); };

  const config = new XdsConfig();
  const node = buildNode({ podName: 'reviews-v1-abc', namespace: 'default', instanceIp: V1_IP, serviceAccount: 'reviews', workloadName: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, domain: 'cluster.local' });
  const client: DeltaAdsClient = new DeltaAdsClient({
    address: `127.0.0.1:${port}`, node,
    onResponse: (typeUrl, resources, version, delta) => {
      const error = config.apply(typeUrl, resources, version, delta);
      if (error) return error;
      if (typeUrl === TYPE_URL.cluster) client.subscribe(TYPE_URL.clusterLoadAssignment, config.edsNames());
      if (typeUrl === TYPE_URL.listener) client.subscribe(TYPE_URL.routeConfiguration, config.rdsNames());
      return undefined;
    },
  });
  stops.push(() => client.stop());
  client.subscribe(TYPE_URL.cluster, undefined);
  client.subscribe(TYPE_URL.listener, undefined);
  client.start();

  const syncz = async () => (await (await fetch(`http://127.0.0.1:${debugPort}/debug/syncz`)).json()) as { mode: string; types: Record<string, { status: string; lastNack?: { message: string } }> }[];
  await waitFor('all types ACKed in pilot syncz', async () => {
    const s = await syncz();
    return s.length === 1 && ['cds', 'eds', 'lds', 'rds'].every((t) => s[0].types[t]?.status === 'ACKED');
  });
  assert.equal((await syncz())[0].mode, 'delta');
  assert.equal(client.stats.nacks, 0);
  const ratingsCluster = `outbound|8080||${RATINGS}`;
  const s1 = config.current;
  assert.ok(s1.clusters.has(ratingsCluster));
  assert.ok(s1.assignments.has(`outbound|9080|v2|${REVIEWS}`));
  assert.deepEqual([...s1.listeners.keys()].sort(), ['0.0.0.0_8080', '0.0.0.0_9080', 'virtualInbound', 'virtualOutbound']);
  assert.deepEqual([...s1.routes.keys()].sort(), ['8080', '9080']);
  assert.equal(s1.routes.get('9080')?.version, client.heldVersions(TYPE_URL.routeConfiguration)['9080']);

  // 80/20 -> 50/50 reaches the proxy's route table.
  const weights = () => JSON.stringify(config.current.routes.get('9080')?.raw).match(/"weight":\{"value":(\d+)\}/g)?.join(',');
  const before = weights();
  setPush(PushContext.build(bookinfo([reviewsVs(50, 50)]), { version: '2' }));
  await waitFor('50/50 route applied', () => weights() !== before);
  assert.match(weights() ?? '', /50.*50/);

  // The ratings Service goes away: removals reach every type.
  const inputs = bookinfo([reviewsVs(50, 50)]);
  inputs.services = inputs.services.filter((s) => s.metadata.name !== 'ratings');
  inputs.endpoints = inputs.endpoints.filter((e) => e.metadata.name !== 'ratings');
  setPush(PushContext.build(inputs, { version: '3' }));
  await waitFor('ratings removed', () => !config.current.clusters.has(ratingsCluster) && !config.current.routes.has('8080'));
  assert.equal(config.current.assignments.has(ratingsCluster), false);
  assert.equal(config.current.listeners.has('0.0.0.0_8080'), false);
  await waitFor('still all ACKed', async () => { const st = (await syncz())[0]; return ['cds', 'eds', 'lds', 'rds'].every((t) => st.types[t]?.status === 'ACKED'); });
  assert.equal(client.stats.nacks, 0);
});
