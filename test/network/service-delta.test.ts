import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildServiceRules, type Ruleset } from '../../cluster/network/service-rules.js';
import { ruleDelta } from '../../cluster/network/service-delta.js';
import type { Endpoints, Service } from '../../cluster/network/kube-types.js';

const svc = (name: string, ip: string): Service => ({ metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }] } });
const ep = (name: string, ips: string[]): Endpoints => ({
  metadata: { name, namespace: 'shop' }, subsets: ips.length ? [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'http', port: 8080 }] }] : [],
});
const rules = (services: Service[], endpoints: Endpoints[]): Ruleset =>
  buildServiceRules({ prefix: 'tr', services, endpoints, bridges: ['tr-br0'] }).tables;

type Kernel = Record<'nat' | 'filter', Map<string, string[]>>;

/**
 * A model of `iptables-restore --noflush` on the proxy's chains: declaring flushes or
 * creates, -A appends (its jump target must exist), -X needs an empty, unreferenced chain.
 */
function applyRestore(kernel: Kernel, restore: string): void {
  let table: Map<string, string[]> | undefined;
  const target = (rule: string): string | undefined => / -j (TR-\S+)/.exec(rule)?.[1];
  for (const line of restore.split('\n')) {
    if (line === '' || line === 'COMMIT') continue;
    if (line.startsWith('*')) table = kernel[line.slice(1) as 'nat' | 'filter'];
    else if (!table) throw new Error(`rule outside a table: ${line}`);
    else if (line.startsWith(':')) table.set(line.slice(1).split(' ')[0], []);
    else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1];
      const to = target(line);
      if (to && !table.has(to)) throw new Error(`jump to missing chain ${to}: ${line}`);
      const rulesOf = table.get(chain);
      if (!rulesOf) throw new Error(`append to missing chain ${chain}`);
      rulesOf.push(line);
    } else if (line.startsWith('-X ')) {
      const chain = line.slice(3);
      if ((table.get(chain) ?? []).length > 0) throw new Error(`delete of non-empty chain ${chain}`);
      for (const [c, rs] of table) if (rs.some((r) => target(r) === chain)) throw new Error(`delete of ${chain}, still referenced from ${c}`);
      table.delete(chain);
    } else throw new Error(`unexpected line ${line}`);
  }
}

const snapshot = (r: Ruleset): Record<string, Record<string, string[]>> => ({
  nat: Object.fromEntries([...r.nat].map(([c, rs]) => [c, [...rs]])),
  filter: Object.fromEntries([...r.filter].map(([c, rs]) => [c, [...rs]])),
});
const kernelSnapshot = (k: Kernel): Record<string, Record<string, string[]>> => ({ nat: Object.fromEntries(k.nat), filter: Object.fromEntries(k.filter) });

describe('ruleDelta', () => {
  const services = [svc('a', '10.96.0.5'), svc('b', '10.96.0.6'), svc('c', '10.96.0.7')];
  const base = rules(services, [ep('a', ['10.244.0.7']), ep('b', ['10.244.0.8']), ep('c', ['10.244.0.9'])]);

  it('a full rewrite declares every wanted chain and deletes the proxy chains no longer wanted', () => {
    const d = ruleDelta({ desired: base, existing: { nat: ['TR-SERVICES', 'TR-SVC-AAAAAAAAAAAA', 'TR-SEP-BBBBBBBBBBBB'], filter: ['TR-SERVICES'] } });
    const lines = d.restore.split('\n');
    for (const c of [...base.nat.keys()]) assert.ok(lines.includes(`:${c} - [0:0]`), c);
    assert.deepEqual(d.deleted, ['nat/TR-SEP-BBBBBBBBBBBB', 'nat/TR-SVC-AAAAAAAAAAAA']);
    assert.ok(lines.indexOf('-X TR-SVC-AAAAAAAAAAAA') > Math.max(...lines.map((l, i) => (l.startsWith('-A TR-SERVICES') ? i : -1))), 'deleted after SERVICES is rewritten');
  });

  it('nothing changed: no restore at all', () => {
    const d = ruleDelta({ written: base, desired: rules(services, [ep('c', ['10.244.0.9']), ep('b', ['10.244.0.8']), ep('a', ['10.244.0.7'])]) });
    assert.equal(d.restore, '');
  });

  it('an endpoint added to one service rewrites only that service chain and adds the endpoint chain', () => {
    const next = rules(services, [ep('a', ['10.244.0.7']), ep('b', ['10.244.0.8', '10.244.0.18']), ep('c', ['10.244.0.9'])]);
    const d = ruleDelta({ written: base, desired: next });
    const svcB = [...next.nat.keys()].filter((c) => !base.nat.has(c));
    assert.equal(svcB.length, 1, 'one new SEP chain');
    assert.equal(d.rewritten.length, 2, d.rewritten.join(' '));
    assert.ok(d.rewritten.includes(`nat/${svcB[0]}`));
    assert.ok(d.rewritten.some((c) => c.startsWith('nat/TR-SVC-')));
    assert.ok(!d.restore.includes('TR-SERVICES -'), 'SERVICES untouched');
    assert.ok(!d.restore.includes('*filter'), 'filter table untouched');
    assert.deepEqual(d.deleted, []);
  });

  it('the last endpoint gone: SERVICES drops the jump, the chains are deleted and filter rejects', () => {
    const next = rules(services, [ep('a', ['10.244.0.7']), ep('b', []), ep('c', ['10.244.0.9'])]);
    const d = ruleDelta({ written: base, desired: next });
    assert.equal(d.deleted.length, 2, d.deleted.join(' '));
    assert.deepEqual(d.rewritten.sort(), ['filter/TR-SERVICES', 'nat/TR-SERVICES']);
    assert.match(d.restore, /-A TR-SERVICES -d 10\.96\.0\.6\/32 .*-j REJECT/);
  });

  it('applied one after another, the deltas always leave exactly the wanted rules and never a dangling jump', () => {
    const kernel: Kernel = { nat: new Map(), filter: new Map() };
    applyRestore(kernel, ruleDelta({ desired: base }).restore);
    let written = base;
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let step = 0; step < 200; step++) {
      const svcs = services.filter(() => rand(5) > 0);
      const eps = svcs.map((s) => ep(s.metadata.name ?? '', Array.from({ length: rand(4) }, (_, i) => `10.244.${rand(3)}.${10 + i}`)));
      const desired = rules(svcs, eps);
      applyRestore(kernel, ruleDelta({ written, desired }).restore);
      assert.deepEqual(kernelSnapshot(kernel), snapshot(desired), `step ${step}`);
      written = desired;
    }
  });
});
