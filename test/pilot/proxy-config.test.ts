// `trellis proxy-config` as a user runs it (the real CLI in a child process) against a real
// pilot XdsServer and debug server, for a proxy connected over ADS: the four tables, -o json,
// filters, and a clear error for a pod that is not connected.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TYPE_URL } from '../../api/xds/protos.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { XdsServer } from '../../pilot/xds/server.js';
import { DebugServer } from '../../pilot/debug.js';
import { AdsClient } from './ads-client.js';
import { REVIEWS, V1_NODE_ID, bookinfo } from './fixtures.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/trellis.js');
const cleanups: (() => unknown)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

function trellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('trellis proxy-config: clusters, endpoints, listeners and routes of a connected proxy, as pilot sent them', async () => {
  const xds = new XdsServer({ host: '127.0.0.1', port: 0 });
  const port = await xds.start();
  xds.update(PushContext.build(bookinfo(), { version: '1' }));
  const debug = new DebugServer({
    ready: () => true, snapshot: () => xds.snapshot, syncz: () => xds.syncz(), metrics: xds.metrics,
    configDump: (id) => xds.configDump(id), pushStatus: () => xds.pushStatus(),
  }, { host: '127.0.0.1', port: 0 });
  const debugPort = await debug.start();
  cleanups.push(() => xds.stop(), () => debug.stop());
  const c = new AdsClient(`127.0.0.1:${port}`, { id: V1_NODE_ID });
  cleanups.push(() => c.close());
  c.request(TYPE_URL.cluster);
  const cds = await c.next();
  c.ack(cds);
  const edsNames = cds.resources.filter((r) => r.type === 'EDS').map((r) => String(r.name));
  c.request(TYPE_URL.clusterLoadAssignment, { names: edsNames });
  c.ack(await c.next(), edsNames);
  c.request(TYPE_URL.listener);
  c.ack(await c.next());
  c.request(TYPE_URL.routeConfiguration, { names: ['9080'] });
  c.ack(await c.next(), ['9080']);

  const pilot = ['--pilot', `http://127.0.0.1:${debugPort}`];
  const clusters = await trellis(['proxy-config', 'clusters', 'reviews-v1-abc.default', ...pilot]);
  assert.equal(clusters.code, 0, clusters.stderr);
  const lines = clusters.stdout.trim().split('\n');
  assert.match(lines[0], /^SERVICE FQDN\s+PORT\s+SUBSET\s+DIRECTION\s+TYPE$/);
  assert.ok(lines.some((l) => /^reviews\.default\.svc\.cluster\.local\s+9080\s+v1\s+outbound\s+EDS$/.test(l)), clusters.stdout);
  assert.ok(lines.some((l) => /^\s+9080\s+-\s+inbound\s+STATIC$/.test(l)), clusters.stdout);
  assert.ok(lines.some((l) => /^PassthroughCluster\s+-\s+-\s+-\s+ORIGINAL_DST$/.test(l)), clusters.stdout);

  const filtered = await trellis(['proxy-config', 'clusters', 'reviews-v1-abc', '--fqdn', 'reviews.default', '--subset', 'v2', ...pilot]);
  assert.deepEqual(filtered.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0] + ' ' + l.split(/\s+/)[2]), [`${REVIEWS} v2`]);

  const eps = await trellis(['proxy-config', 'endpoints', 'reviews-v1-abc', '-n', 'default', '--cluster', `outbound|9080|v2|${REVIEWS}`, ...pilot]);
  assert.equal(eps.code, 0, eps.stderr);
  assert.deepEqual(eps.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)), [['10.244.0.12:9080', 'HEALTHY', 'OK', `outbound|9080|v2|${REVIEWS}`]]);

  const listeners = await trellis(['proxy-config', 'listeners', 'reviews-v1-abc.default', ...pilot]);
  assert.match(listeners.stdout, /^ADDRESSES\s+PORT\s+MATCH\s+DESTINATION/);
  assert.match(listeners.stdout, /0\.0\.0\.0\s+9080\s+ALL\s+Route: 9080/);

  const routes = await trellis(['proxy-config', 'routes', 'reviews-v1-abc.default', ...pilot]);
  assert.match(routes.stdout, /^NAME\s+VHOST NAME\s+DOMAINS\s+MATCH\s+VIRTUAL SERVICE/);
  assert.match(routes.stdout, new RegExp(`9080\\s+${REVIEWS.replace(/\./g, '\\.')}:9080\\s+${REVIEWS.replace(/\./g, '\\.')} \\+\\d+ more\\.\\.\\.\\s+/\\*`));

  const json = await trellis(['proxy-config', 'routes', 'reviews-v1-abc.default', '-o', 'json', ...pilot]);
  const parsed = JSON.parse(json.stdout) as { '@type': string; name: string }[];
  assert.deepEqual(parsed.map((r) => [r['@type'], r.name]), [[TYPE_URL.routeConfiguration, '9080']]);

  const missing = await trellis(['proxy-config', 'clusters', 'nobody.default', ...pilot]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /proxy nobody\.default is not connected to pilot/);
  const badKind = await trellis(['proxy-config', 'secrets', 'reviews-v1-abc', ...pilot]);
  assert.equal(badKind.code, 1);
  assert.match(badKind.stderr, /want one of listeners\|routes\|clusters\|endpoints, got 'secrets'/);
});
