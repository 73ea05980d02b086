import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildServiceRules } from '../../cluster/network/service-rules.js';
import type { Endpoints, Service } from '../../cluster/network/kube-types.js';

const svc = (name: string, spec: Service['spec']): Service => ({ metadata: { name, namespace: 'shop' }, spec });
const ep = (name: string, subsets: Endpoints['subsets']): Endpoints => ({ metadata: { name, namespace: 'shop' }, subsets });

describe('buildServiceRules', () => {
  it('chains a ClusterIP port to each ready endpoint with equal probability, matching endpoint ports by name', () => {
    const { restore, skipped } = buildServiceRules({
      prefix: 'tr',
      services: [svc('api', { clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80 }, { name: 'grpc', port: 90 }] })],
      endpoints: new Map([
        ['shop/api', ep('api', [{
          addresses: [{ ip: '10.244.0.7' }, { ip: '10.244.0.8' }, { ip: '10.244.0.9' }],
          notReadyAddresses: [{ ip: '10.244.0.99' }],
          ports: [{ name: 'grpc', port: 9090 }, { name: 'http', port: 8080 }],
        }])],
      ]),
    });
    assert.deepEqual(skipped, []);
    const lines = restore.split('\n');
    const jumps = lines.filter((l) => l.startsWith('-A TR-SERVICES'));
    assert.equal(jumps.length, 2);
    assert.match(jumps[0], /^-A TR-SERVICES -d 10\.96\.0\.5\/32 -p tcp -m tcp --dport 80 .* -j TR-SVC-[A-Z2-7]{12}$/);
    const svcChain = jumps[0].split(' -j ')[1];
    const picks = lines.filter((l) => l.startsWith(`-A ${svcChain} `));
    assert.equal(picks.length, 3);
    assert.match(picks[0], /--probability 0\.3333333333/);
    assert.match(picks[1], /--probability 0\.5000000000/);
    assert.doesNotMatch(picks[2], /probability/);
    const dnats = lines.filter((l) => l.includes('DNAT'));
    assert.deepEqual(dnats.map((l) => l.split('--to-destination ')[1]).sort(), [
      '10.244.0.7:8080', '10.244.0.7:9090', '10.244.0.8:8080', '10.244.0.8:9090', '10.244.0.9:8080', '10.244.0.9:9090',
    ]);
    assert.ok(!restore.includes('10.244.0.99'), 'not-ready addresses get no traffic');
    for (const l of lines.filter((x) => x.startsWith('-A TR-SEP-') && x.includes('MARK-MASQ'))) assert.match(l, /-j TR-MARK-MASQ$/);
  });

  it('rejects ports without endpoints in filter, skips headless and ExternalName, redirects DNS first', () => {
    const { restore } = buildServiceRules({
      prefix: 'tr',
      services: [
        svc('lonely', { clusterIP: '10.96.0.6', ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }),
        svc('db', { clusterIP: 'None', ports: [{ port: 5432 }] }),
        svc('ext', { type: 'ExternalName', externalName: 'example.invalid' }),
      ],
      endpoints: [ep('db', [{ addresses: [{ ip: '10.244.0.3' }], ports: [{ port: 5432 }] }])],
      dns: { serviceIP: '10.96.0.10', targetIP: '10.244.0.1' },
    });
    const [nat, filter] = restore.split('*filter');
    assert.match(filter, /-A TR-SERVICES -d 10\.96\.0\.6\/32 -p tcp -m tcp --dport 80 .*-j REJECT --reject-with tcp-reset/);
    assert.match(filter, /-A TR-SERVICES -d 10\.96\.0\.6\/32 -p udp -m udp --dport 53 .*-j REJECT --reject-with icmp-port-unreachable/);
    assert.ok(!restore.includes('10.244.0.3'), 'headless services get no rules');
    const natRules = nat.split('\n').filter((l) => l.startsWith('-A TR-SERVICES'));
    assert.match(natRules[0], /-d 10\.96\.0\.10\/32 -p udp -m udp --dport 53 .*-j DNAT --to-destination 10\.244\.0\.1:53/);
    assert.match(natRules[1], /-p tcp -m tcp --dport 53 .*--to-destination 10\.244\.0\.1:53/);
  });

  it('deletes stale SVC/SEP chains of the prefix only, after rewriting SERVICES', () => {
    const { restore, fingerprint } = buildServiceRules({
      prefix: 'tr', services: [], endpoints: [],
      existingNatChains: ['TR-SERVICES', 'TR-SVC-AAAAAAAAAAAA', 'TR-SEP-BBBBBBBBBBBB', 'TR-POSTROUTING'],
    });
    const lines = restore.split('\n');
    assert.ok(lines.includes(':TR-SVC-AAAAAAAAAAAA - [0:0]'));
    assert.ok(lines.includes('-X TR-SVC-AAAAAAAAAAAA'));
    assert.ok(lines.includes('-X TR-SEP-BBBBBBBBBBBB'));
    assert.ok(!lines.includes('-X TR-SERVICES'));
    assert.ok(lines.indexOf('-X TR-SVC-AAAAAAAAAAAA') > lines.indexOf(':TR-SERVICES - [0:0]'));
    assert.ok(!fingerprint.includes('-X'));
  });

  it('keeps names from API objects out of the restore syntax and reports bad fields', () => {
    const { restore, skipped } = buildServiceRules({
      prefix: 'tr',
      services: [
        svc('bad"\nname', { clusterIP: '10.96.0.7', ports: [{ name: 'x"y', port: 80 }] }),
        svc('v6', { clusterIP: 'fd00::1', ports: [{ port: 80 }] }),
        svc('weird', { clusterIP: '10.96.0.8', ports: [{ port: 70000 }, { port: 80, protocol: 'ICMP' }] }),
      ],
      endpoints: [],
    });
    for (const l of restore.split('\n')) assert.ok((l.match(/"/g) ?? []).length % 2 === 0, `balanced quotes: ${l}`);
    assert.deepEqual(skipped, [
      'service shop/v6: spec.clusterIP "fd00::1" is not an IPv4 address',
      'service shop/weird: spec.ports[0].port 70000 is not a valid port',
      'service shop/weird: spec.ports[1].protocol "ICMP" is not supported',
    ]);
  });

  it('sends node ports of NodePort and LoadBalancer services to the service chain, from local sources to local addresses only', () => {
    const { restore, skipped } = buildServiceRules({
      prefix: 'tr',
      services: [
        svc('np', { type: 'NodePort', clusterIP: '10.96.0.9', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
        svc('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ port: 53, protocol: 'UDP', nodePort: 30053 }] }),
        svc('plain', { clusterIP: '10.96.0.11', ports: [{ port: 80, nodePort: 30081 }] }),
        svc('bad', { type: 'NodePort', clusterIP: '10.96.0.12', ports: [{ port: 80, nodePort: 0 }] }),
      ],
      endpoints: [
        ep('np', [{ addresses: [{ ip: '10.244.0.7' }], ports: [{ name: 'http', port: 8080 }] }]),
        ep('lb', [{ addresses: [{ ip: '10.244.0.8' }], ports: [{ port: 5353, protocol: 'UDP' }] }]),
        ep('plain', [{ addresses: [{ ip: '10.244.0.9' }], ports: [{ port: 8080 }] }]),
        ep('bad', [{ addresses: [{ ip: '10.244.0.9' }], ports: [{ port: 8080 }] }]),
      ],
      bridge: 'tr-br0',
    });
    assert.deepEqual(skipped, ['service shop/bad: spec.ports[0].nodePort 0 is not a valid port']);
    const lines = restore.split('\n');
    const services = lines.filter((l) => l.startsWith('-A TR-SERVICES'));
    assert.match(services[services.length - 1], /-m addrtype --src-type LOCAL --dst-type LOCAL .*-j TR-NODEPORTS$/, 'node ports are matched last');
    const nodePorts = lines.filter((l) => l.startsWith('-A TR-NODEPORTS'));
    assert.equal(nodePorts.length, 2, nodePorts.join('\n'));
    const npJump = services.find((l) => l.includes('10.96.0.9/32'))?.split(' -j ')[1];
    assert.match(nodePorts.find((l) => l.includes('--dport 30080')) ?? '', new RegExp(`-p tcp -m tcp --dport 30080 .*-j ${npJump}$`));
    assert.match(nodePorts.find((l) => l.includes('--dport 30053')) ?? '', /-p udp -m udp --dport 30053 /);
    assert.ok(!restore.includes('30081'), 'a ClusterIP service has no node port even if one is written');
    assert.match(restore, /-A TR-LOCALNET -i tr-br0 -d 127\.0\.0\.0\/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT .*-j DROP/);
  });

  it('pins a client to its endpoint with the recent module for ClientIP affinity', () => {
    const { restore } = buildServiceRules({
      prefix: 'tr',
      services: [
        svc('sticky', { clusterIP: '10.96.0.20', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 42 } }, ports: [{ port: 80 }] }),
        svc('default', { clusterIP: '10.96.0.21', sessionAffinity: 'ClientIP', ports: [{ port: 80 }] }),
        svc('none', { clusterIP: '10.96.0.22', ports: [{ port: 80 }] }),
      ],
      endpoints: ['sticky', 'default', 'none'].map((n) => ep(n, [{ addresses: [{ ip: '10.244.0.7' }, { ip: '10.244.0.8' }], ports: [{ port: 8080 }] }])),
    });
    const lines = restore.split('\n');
    const chainOf = (ip: string): string => lines.find((l) => l.startsWith('-A TR-SERVICES') && l.includes(`${ip}/32`))?.split(' -j ')[1] ?? '';
    const sticky = lines.filter((l) => l.startsWith(`-A ${chainOf('10.96.0.20')} `));
    assert.equal(sticky.length, 4);
    // First the "seen before" checks, one per endpoint, then the random pick.
    for (const l of sticky.slice(0, 2)) {
      const sep = l.split(' -j ')[1];
      assert.match(l, new RegExp(`-m recent --rcheck --seconds 42 --reap --name ${sep} --mask 255\\.255\\.255\\.255 --rsource -j ${sep}$`));
      assert.match(lines.find((x) => x.startsWith(`-A ${sep} -p tcp`)) ?? '', new RegExp(`-m recent --set --name ${sep} --mask 255\\.255\\.255\\.255 --rsource -m tcp -j DNAT`));
    }
    assert.match(sticky[2], /--probability 0\.5/);
    assert.ok(lines.some((l) => l.startsWith(`-A ${chainOf('10.96.0.21')} `) && l.includes('--seconds 10800')), 'default timeout is 3 hours');
    assert.ok(!lines.some((l) => l.startsWith(`-A ${chainOf('10.96.0.22')} `) && l.includes('recent')), 'no affinity by default');
  });
});
