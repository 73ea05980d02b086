// The service proxy's incremental syncs against the kernel: endpoints change many times and
// after each sync the live nat/filter rules are read back and checked. Needs root; run under
// `flock /tmp/trellis-net.lock`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { ensureNodeNetwork, teardownNodeNetwork } from '../../cluster/network/node-network.js';
import { startServiceProxy, type ServiceProxy } from '../../cluster/network/service-proxy.js';
import { mustRun, runCommand } from '../../cluster/network/exec.js';
import type { Endpoints, Service } from '../../cluster/network/kube-types.js';
import { networkSkipReason } from './scaffold.js';

const PREFIX = 'tcg';
const GATEWAY = '10.235.0.1';
const SERVICE_IP = '10.105.0.20';
const PODS = ['10.235.0.10', '10.235.0.11', '10.235.0.12'];

const service: Service = { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: SERVICE_IP, ports: [{ name: 'http', port: 80 }] } };
const endpointsOf = (ips: string[]): Endpoints => ({
  metadata: { name: 'web', namespace: 'default' }, subsets: ips.length ? [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'http', port: 8080 }] }] : [],
});

/** The prefix's chains in one table of the live ruleset, chain -> rules. */
async function liveChains(table: 'nat' | 'filter'): Promise<Map<string, string[]>> {
  const saved = await mustRun('iptables-save', ['-t', table]);
  const chains = new Map<string, string[]>();
  for (const line of saved.split('\n')) {
    if (line.startsWith(':TCG-')) chains.set(line.slice(1).split(' ')[0], []);
    else if (line.startsWith('-A TCG-')) chains.get(line.split(' ')[1])?.push(line);
  }
  return chains;
}

/** Where the kernel sends SERVICE_IP:80 now: the DNAT targets reachable from SERVICES, or 'reject'. */
async function kernelTargets(): Promise<{ targets: string[]; reject: boolean; svcSep: number }> {
  const nat = await liveChains('nat');
  const filter = await liveChains('filter');
  const jump = (nat.get('TCG-SERVICES') ?? []).find((l) => l.includes(`-d ${SERVICE_IP}/32`));
  const targets: string[] = [];
  if (jump) {
    const svcChain = jump.split(' -j ')[1];
    for (const pick of nat.get(svcChain) ?? []) {
      const sep = pick.split(' -j ')[1];
      const dnat = (nat.get(sep) ?? []).find((l) => l.includes('DNAT'));
      assert.ok(dnat, `${sep} has a DNAT rule (jumped to from ${svcChain})`);
      targets.push(dnat.split('--to-destination ')[1]);
    }
  }
  const reject = (filter.get('TCG-SERVICES') ?? []).some((l) => l.includes(`-d ${SERVICE_IP}/32`) && l.includes('REJECT'));
  const svcSep = [...nat.keys()].filter((c) => /^TCG-(SVC|SEP)-/.test(c)).length;
  return { targets: targets.sort(), reject, svcSep };
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('service proxy: incremental syncs in the kernel', { timeout: 120_000 }, async () => {
  const skip = await networkSkipReason();
  const children: ChildProcess[] = [];
  let proxy: ServiceProxy | undefined;
  const errors: Error[] = [];

  before(async () => {
    if (skip) return;
    await teardownNodeNetwork(PREFIX);
    const net = await ensureNodeNetwork({ prefix: PREFIX, nodePodCIDR: '10.235.0.0/24', clusterPodCIDR: '10.235.0.0/16', serviceCIDR: '10.105.0.0/16' });
    for (const [i, ip] of PODS.entries()) {
      const ns = `${PREFIX}-p${i}`;
      await mustRun('ip', ['netns', 'add', ns]);
      await mustRun('ip', ['link', 'add', `${PREFIX}-p${i}h`, 'type', 'veth', 'peer', 'name', `${PREFIX}-p${i}c`]);
      await mustRun('ip', ['link', 'set', `${PREFIX}-p${i}c`, 'netns', ns]);
      await mustRun('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', `${PREFIX}-p${i}c`]);
      await mustRun('ip', ['-n', ns, 'link', 'set', `${PREFIX}-p${i}c`, 'up']);
      await mustRun('ip', ['-n', ns, 'route', 'add', '10.105.0.0/16', 'via', GATEWAY]);
      await mustRun('ip', ['link', 'set', `${PREFIX}-p${i}h`, 'master', net.bridge]);
      await mustRun('ip', ['link', 'set', `${PREFIX}-p${i}h`, 'up']);
      const script = `require('http').createServer((q,s)=>s.end('${ip}')).listen(8080,'${ip}',()=>console.log('ready'))`;
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`server in ${ns} exited ${code}`)));
      });
    }
    proxy = startServiceProxy({ prefix: PREFIX, bridge: net.bridge, onError: (e) => errors.push(e) });
  });

  after(async () => {
    if (skip) return;
    proxy?.stop();
    for (const c of children) if (c.pid) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    await teardownNodeNetwork(PREFIX);
  });

  it('after every one of many endpoint changes the kernel holds exactly the ready endpoints; only the first sync is full', { skip }, async (t) => {
    assert.ok(proxy);
    await proxy.sync([service], [endpointsOf([PODS[0]])]);
    assert.equal(proxy.lastSync.kind, 'full');
    let seed = 11;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const deltaMs: number[] = [];
    for (let step = 0; step < 40; step++) {
      const ready = PODS.filter(() => rand(2) === 1);
      const started = process.hrtime.bigint();
      await proxy.sync([service], [endpointsOf(ready)]);
      deltaMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      assert.notEqual(proxy.lastSync.kind, 'full', `step ${step}: no full re-read`);
      const k = await kernelTargets();
      assert.deepEqual(k.targets, ready.map((ip) => `${ip}:8080`).sort(), `step ${step}: DNAT targets`);
      assert.equal(k.reject, ready.length === 0, `step ${step}: REJECT exactly when no endpoint is ready`);
      assert.equal(k.svcSep, ready.length === 0 ? 0 : ready.length + 1, `step ${step}: no leftover SVC/SEP chains`);
      if (step % 8 === 0) {
        if (ready.length === 0) await assert.rejects(get(`http://${SERVICE_IP}/`), /ECONNREFUSED/, `step ${step}: refused`);
        else assert.ok(ready.includes(await get(`http://${SERVICE_IP}/`)), `step ${step}: answered by a ready endpoint`);
      }
    }
    deltaMs.sort((a, b) => a - b);
    t.diagnostic(`incremental sync: p50 ${deltaMs[20].toFixed(1)} ms, max ${deltaMs[39].toFixed(1)} ms`);
    assert.deepEqual(errors, []);
  });

  it('a restore that fails because someone changed our chains falls back to a full re-read and repairs them', { skip }, async () => {
    assert.ok(proxy);
    await proxy.sync([service], [endpointsOf(PODS)]);
    const nat = await liveChains('nat');
    const svcChain = (nat.get('TCG-SERVICES') ?? []).find((l) => l.includes(SERVICE_IP))?.split(' -j ')[1] ?? '';
    const sep = (nat.get(svcChain) ?? [])[0].split(' -j ')[1];
    // Someone else removes one endpoint chain behind the proxy's back.
    await mustRun('iptables', ['-t', 'nat', '-F', svcChain]);
    await mustRun('iptables', ['-t', 'nat', '-F', sep]);
    await mustRun('iptables', ['-t', 'nat', '-X', sep]);
    // The next change keeps that endpoint: the delta jumps to a chain that is gone and fails.
    await proxy.sync([service], [endpointsOf(PODS.slice(0, 2))]);
    assert.equal(proxy.lastSync.kind, 'full');
    assert.match(errors.map((e) => e.message).join('\n'), /incremental sync failed, re-reading the tables/);
    assert.deepEqual((await kernelTargets()).targets, PODS.slice(0, 2).map((ip) => `${ip}:8080`).sort());
    // The hooks are in place too (ensured on the full sync).
    assert.equal((await runCommand('iptables', ['-t', 'nat', '-C', 'OUTPUT', '-m', 'comment', '--comment', `${PREFIX} service portals`, '-j', 'TCG-SERVICES'])).code, 0);
    await proxy.sync([service], [endpointsOf([PODS[2]])]);
    assert.equal(proxy.lastSync.kind, 'delta');
    assert.deepEqual((await kernelTargets()).targets, [`${PODS[2]}:8080`]);
  });
});

describe('cluster prefixes X and X1 in the kernel', { timeout: 60_000 }, async () => {
  const skip = await networkSkipReason();
  it('tearing down cluster tcg leaves the bridge and netns of cluster tcg1 alone', { skip }, async () => {
    const other = { link: 'tcg1-br0', netns: 'tcg1-abcdefghij', nodeNetns: 'tcg-1-abcdefghi' };
    try {
      await mustRun('ip', ['link', 'add', 'name', other.link, 'type', 'bridge']);
      await mustRun('ip', ['netns', 'add', other.netns]);
      await mustRun('ip', ['netns', 'add', other.nodeNetns]); // node 1 of cluster tcg
      await teardownNodeNetwork(PREFIX);
      assert.equal((await runCommand('ip', ['link', 'show', 'dev', other.link])).code, 0, 'tcg1-br0 survives');
      const netns = (await mustRun('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
      assert.ok(netns.includes(other.netns), 'tcg1 netns survives');
      assert.ok(!netns.includes(other.nodeNetns), "node 1 of tcg's netns is tcg's");
    } finally {
      await runCommand('ip', ['link', 'delete', 'dev', other.link]);
      await runCommand('ip', ['netns', 'delete', other.netns]);
      await runCommand('ip', ['netns', 'delete', other.nodeNetns]);
    }
  });
});
