// istio-iptables in a real network namespace (prefix tic, 10.249.0.0/24): the backend is
// chosen the iptables-wrapper way, the rules are written in one transaction that a re-run
// replaces rather than doubles, and --run-validation proves a connection is redirected to the
// capture port (and fails when the rules do not capture).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chooseBackend } from '../../proxy/interception/backend.js';
import { defaultGateway } from '../../proxy/interception/validate.js';
import { repoRoot } from '../../proxy/interception/original-dst.js';
import { missingPrerequisite, runIn, sh } from './netns.js';

const PREFIX = 'tic';
const GUARD = '10.249.0.0/24';
const BRIDGE = `${PREFIX}-br0`;
const BRIDGE_IP = '10.249.0.1';
const POD_IP = '10.249.0.10';
const NS = `${PREFIX}-a`;
const CLI = path.join(repoRoot(), 'dist', 'proxy', 'cli.js');
const ISTIO_ARGS = ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020,15000'];

function tearDown(): void {
  sh('ip', ['netns', 'del', NS], true);
  for (const line of sh('ip', ['-o', 'link', 'show'], true).split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name?.startsWith(`${PREFIX}-`)) sh('ip', ['link', 'del', name], true);
  }
  if (sh('ip', ['route', 'show', 'type', 'unreachable'], true).includes(GUARD)) sh('ip', ['route', 'del', 'unreachable', GUARD], true);
}

function setUp(): void {
  tearDown();
  // Nothing for 10.249.0.0/24 leaves the machine; the bridge's /25 sits on top.
  sh('ip', ['route', 'add', 'unreachable', GUARD]);
  sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${BRIDGE_IP}/25`, 'dev', BRIDGE]);
  sh('ip', ['link', 'set', BRIDGE, 'up']);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', `${PREFIX}-a-h`, 'type', 'veth', 'peer', 'name', `${PREFIX}-a-c`]);
  sh('ip', ['link', 'set', `${PREFIX}-a-c`, 'netns', NS]);
  sh('ip', ['link', 'set', `${PREFIX}-a-h`, 'master', BRIDGE]);
  sh('ip', ['link', 'set', `${PREFIX}-a-h`, 'up']);
  const inNs = (...args: string[]): string => sh('ip', ['netns', 'exec', NS, 'ip', ...args]);
  inNs('link', 'set', `${PREFIX}-a-c`, 'name', 'eth0');
  inNs('addr', 'add', `${POD_IP}/25`, 'dev', 'eth0');
  inNs('link', 'set', 'eth0', 'up');
  inNs('link', 'set', 'lo', 'up');
  inNs('route', 'add', 'default', 'via', BRIDGE_IP);
}

function natRules(backend: 'nft' | 'legacy'): string[] {
  return runIn(NS, [`iptables-${backend}-save`, '-t', 'nat']).stdout.split('\n').filter((l) => l.startsWith('-A'));
}

const skip = missingPrerequisite() ?? (fs.existsSync(CLI) ? undefined : `${CLI} not built`)
  ?? (['iptables-legacy-save', 'iptables-nft-save'].every((b) => sh('sh', ['-c', `command -v ${b} || true`]).trim() !== '') ? undefined : 'needs iptables-legacy-save and iptables-nft-save');

describe('iptables backend choice (iptables-wrapper rules)', () => {
  it('honours the override, then the kubelet canary, then the rule counts; nft when empty', () => {
    assert.equal(chooseBackend({ legacy: '-A X\n-A Y\n', nft: '' }, 'nft').backend, 'nft');
    assert.throws(() => chooseBackend({ legacy: '', nft: '' }, 'iptables'), /IPTABLES_BACKEND: "iptables" is not an iptables backend/);
    assert.equal(chooseBackend({ legacy: '-A X\n-A Y\n', nft: '-A Z\n', nftMangle: ':KUBE-IPTABLES-HINT - [0:0]\n' }).backend, 'nft');
    assert.equal(chooseBackend({ legacy: '', nft: '-A Z\n', legacyMangle: ':KUBE-KUBELET-CANARY - [0:0]\n' }).backend, 'legacy');
    assert.equal(chooseBackend({ legacy: '-A X\n-A Y\n', nft: '-A Z\n' }).backend, 'legacy');
    assert.equal(chooseBackend({ legacy: '-A X\n', nft: '-A Z\n-A W\n' }).backend, 'nft');
    assert.equal(chooseBackend({ legacy: '', nft: '' }).backend, 'nft');
  });

  it('reads the default gateway from /proc/net/route', () => {
    const table = 'Iface\tDestination\tGateway \tFlags\nteth0\t00F9090A\t00000000\t0001\neth0\t00000000\t0100F90A\t0003\n';
    assert.equal(defaultGateway(table), '10.249.0.1');
    assert.equal(defaultGateway('Iface\tDestination\tGateway\n'), undefined);
  });
});

describe('istio-iptables in a network namespace', { skip }, () => {
  before(setUp);
  after(tearDown);

  it('writes the rules with the backend the namespace uses and validates the redirect', () => {
    const r = runIn(NS, ['node', CLI, ...ISTIO_ARGS, '--run-validation']);
    assert.equal(r.status, 0, `istio-iptables failed: ${r.stderr}${r.stdout}`);
    // Empty namespace: no rules in either backend, so nft (the wrapper's default).
    assert.match(r.stdout, /applied with iptables-nft \(0 nft rules vs 0 legacy rules\)/);
    assert.match(r.stdout, /validation passed: a connection to 10\.249\.0\.1 arrived at the capture port 15001/);
    const rules = natRules('nft');
    assert.ok(rules.includes('-A PREROUTING -p tcp -j ISTIO_INBOUND'), rules.join('\n'));
    assert.ok(rules.includes('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001'), rules.join('\n'));
    assert.deepEqual(natRules('legacy'), [], 'nothing written to the other backend');
  });

  it('replaces, not doubles, on a re-run (a restarted init container)', () => {
    const before = natRules('nft');
    const r = runIn(NS, ['node', CLI, ...ISTIO_ARGS]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /replacing 2 existing jumps/);
    assert.deepEqual(natRules('nft'), before);
  });

  it('fails validation when the capture does not cover the target', () => {
    // Capture only 10.96.0.0/12: the gateway is not redirected, so nothing reaches 15001.
    const args = ISTIO_ARGS.map((a, i) => (ISTIO_ARGS[i - 1] === '-i' ? '10.96.0.0/12' : a));
    const skipped = runIn(NS, ['node', CLI, ...args, '--run-validation']);
    assert.equal(skipped.status, 0, skipped.stderr);
    assert.match(skipped.stdout, /validation skipped: 10\.249\.0\.1 is not captured/);
    // Rules that exempt the validating user (root given as the proxy UID) do not redirect it:
    // the connection goes to the bridge, is refused there, and the init container fails.
    const exempt = runIn(NS, ['node', CLI, ...ISTIO_ARGS.map((a, i) => (ISTIO_ARGS[i - 1] === '-u' ? '0' : a)), '--run-validation']);
    assert.notEqual(exempt.status, 0, exempt.stdout);
    assert.match(exempt.stderr, /validation failed: connect to 10\.249\.0\.1:15002: connect ECONNREFUSED.*traffic would bypass the proxy/);
  });

  it('honours --iptables-backend legacy and cleanup removes everything', () => {
    const r = runIn(NS, ['node', CLI, ...ISTIO_ARGS, '--iptables-backend', 'legacy']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /applied with iptables-legacy \(--iptables-backend\)/);
    assert.ok(natRules('legacy').includes('-A OUTPUT -p tcp -j ISTIO_OUTPUT'));
    const c1 = runIn(NS, ['env', 'IPTABLES_BACKEND=legacy', 'node', CLI, 'cleanup']);
    assert.equal(c1.status, 0, c1.stderr);
    assert.deepEqual(natRules('legacy'), []);
    const c2 = runIn(NS, ['node', CLI, 'cleanup']);
    assert.equal(c2.status, 0, c2.stderr);
    assert.deepEqual(natRules('nft'), []);
  });
});
