import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildNatRules, parseInterceptionFlags } from '../../proxy/interception/iptables-rules.js';

describe('istio-iptables flags and rules', () => {
  it('parses Istio\'s flags (short and long forms)', () => {
    const cfg = parseInterceptionFlags(['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '',
      '-b', '*', '-d', '15090,15021,15020,15000', '--istio-local-outbound-ports-exclude=15443']);
    assert.deepEqual(cfg.inboundExcludePorts, ['15090', '15021', '15020', '15000']);
    assert.deepEqual(cfg.outboundExcludeCidrs, []);
    assert.deepEqual(cfg.outboundExcludePorts, ['15443']);
  });

  it('rejects bad values naming the flag', () => {
    assert.throws(() => parseInterceptionFlags(['-p', 'x']), /-p: "x" is not a port/);
    assert.throws(() => parseInterceptionFlags(['-m', 'TPROXY']), /-m: mode "TPROXY" is not supported/);
    assert.throws(() => parseInterceptionFlags(['-x', '10.0.0.0/33']), /-x: "10.0.0.0\/33" is not an IPv4 CIDR/);
    assert.throws(() => parseInterceptionFlags(['-q', '1']), /unknown flag -q/);
  });

  it('builds the nat chains in Istio\'s order', () => {
    const rules = buildNatRules(parseInterceptionFlags(['-d', '15090,15021', '-x', '10.96.0.1/32', '-o', '22']));
    const lines = rules.trim().split('\n');
    assert.equal(lines[0], '*nat');
    assert.equal(lines.at(-1), 'COMMIT');
    const idx = (l: string): number => lines.indexOf(l);
    for (const l of [
      ':ISTIO_INBOUND - [0:0]', '-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT', '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A OUTPUT -p tcp -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -p tcp --dport 22 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN', '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN', '-A ISTIO_OUTPUT -d 10.96.0.1/32 -j RETURN', '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    ]) assert.ok(idx(l) > 0, `missing ${l}`);
    // Exclusions come before the catch-all redirect.
    assert.ok(idx('-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN') < idx('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT'));
    assert.ok(idx('-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN') < idx('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
    assert.ok(idx('-A ISTIO_OUTPUT -d 10.96.0.1/32 -j RETURN') < idx('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
  });

  it('captures only listed ports and CIDRs when not "*"', () => {
    const rules = buildNatRules(parseInterceptionFlags(['-b', '8080,9090', '-d', '9090', '-i', '10.96.0.0/16']));
    assert.match(rules, /-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT/);
    assert.doesNotMatch(rules, /--dport 9090 -j ISTIO_IN_REDIRECT/);
    assert.match(rules, /-A ISTIO_OUTPUT -d 10.96.0.0\/16 -j ISTIO_REDIRECT/);
    assert.doesNotMatch(rules, /-A ISTIO_OUTPUT -j ISTIO_REDIRECT/);
  });
});
