// Root-namespace tests: real bridge, veths, namespaces and iptables under the `tnet` prefix.
// One file so the phases never run concurrently against the same prefix.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, rmdir, writeFile, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Resolver } from 'node:dns/promises';
import { KubeClient, R, type Pod as KubePod, type Service as KubeService, type Endpoints as KubeEndpoints } from '../../api/kube/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { runNetworkControllers, type NetworkControllers } from '../../cluster/network/informer-adapter.js';
import { runCommand, mustRun } from '../../cluster/network/exec.js';
import { ensureNodeNetwork, teardownNodeNetwork, type NodeNetwork } from '../../cluster/network/node-network.js';
import { startServiceProxy, type ServiceProxy } from '../../cluster/network/service-proxy.js';
import { startClusterDNS, podResolvConf, type ClusterDNS } from '../../cluster/network/dns.js';
import type { Endpoints, Service } from '../../cluster/network/kube-types.js';
import {
  PREFIX, NODE_CIDR, CLUSTER_CIDR, SERVICE_CIDR, GATEWAY,
  networkSkipReason, addPodNamespace, Processes, runNodeIn, httpServerScript, fetchScript,
} from './scaffold.js';

const skip = await networkSkipReason();
const OPTS = { prefix: PREFIX, nodePodCIDR: NODE_CIDR, clusterPodCIDR: CLUSTER_CIDR, serviceCIDR: SERVICE_CIDR };

async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  const links = (await mustRun('ip', ['-o', 'link', 'show'])).split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '');
  found.push(...links.filter((n) => n.startsWith(PREFIX)).map((n) => `link ${n}`));
  found.push(...(await mustRun('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith(`${PREFIX}-`)).map((l) => `netns ${l}`));
  const routes = await mustRun('ip', ['route', 'show', 'type', 'unreachable']);
  found.push(...routes.split('\n').filter((l) => l.includes('10.250.') || l.includes('10.251.')).map((l) => `route ${l}`));
  for (const table of ['filter', 'nat']) {
    const saved = (await runCommand('iptables-save', ['-t', table])).stdout;
    found.push(...saved.split('\n').filter((l) => l.includes('TNET-') || l.includes(`${PREFIX}-br0`)).map((l) => `${table}: ${l}`));
  }
  return found;
}

function svc(name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[]): Service {
  return { metadata: { name, namespace: 'default' }, spec: { clusterIP, ports } };
}

function eps(name: string, ips: string[], ports: { name?: string; port: number }[]): Endpoints {
  return { metadata: { name, namespace: 'default' }, subsets: [{ addresses: ips.map((ip) => ({ ip })), ports }] };
}

describe('cluster network (root namespace, prefix tnet)', { skip, concurrency: false }, () => {
  before(async () => {
    await teardownNodeNetwork(PREFIX); // leftovers of an earlier crashed run
  });
  after(async () => {
    await teardownNodeNetwork(PREFIX);
  });

  describe('node network', () => {
    it('rejects a prefix whose bridge name would not fit IFNAMSIZ', async () => {
      await assert.rejects(ensureNodeNetwork({ ...OPTS, prefix: 'waytoolongpfx' }), /at most 8 allowed.*15-character/);
    });

    it('creates the bridge, gateway address and unreachable routes; is idempotent; tears down to nothing', async () => {
      const first = await ensureNodeNetwork(OPTS);
      assert.deepEqual(first, { bridge: 'tnet-br0', gatewayIP: GATEWAY, prefixLength: 24 });
      const second = await ensureNodeNetwork(OPTS); // e.g. restart after a crash
      assert.deepEqual(second, first);

      const addr = await mustRun('ip', ['-o', '-4', 'addr', 'show', 'dev', 'tnet-br0']);
      assert.match(addr, /inet 10\.250\.0\.1\/24/);
      assert.equal(addr.trim().split('\n').length, 1, 'one address after two ensures');
      assert.match(await mustRun('ip', ['link', 'show', 'dev', 'tnet-br0']), /state UP|,UP/);
      const unreachable = await mustRun('ip', ['route', 'show', 'type', 'unreachable']);
      assert.match(unreachable, /unreachable 10\.250\.0\.0\/16/);
      assert.match(unreachable, /unreachable 10\.251\.0\.0\/16/);
      assert.equal(unreachable.split('\n').filter((l) => l.includes('10.250.0.0/16')).length, 1);
      // The bridge's /24 is the more specific route, so it wins for pod addresses.
      assert.match(await mustRun('ip', ['route', 'get', '10.250.0.99']), /dev tnet-br0/);
      assert.match(await mustRun('ip', ['route', 'get', '10.251.0.99']), /dev tnet-br0/);
      assert.equal((await runCommand('ip', ['route', 'get', '10.250.1.5'])).code !== 0, true, 'other pod /24s are unreachable');
      assert.equal((await mustRun('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');
      const forward = await mustRun('iptables', ['-S', 'FORWARD']);
      assert.equal(forward.split('\n').filter((l) => l.includes('-j TNET-FORWARD')).length, 1, 'one jump after two ensures');
      const chain = await mustRun('iptables', ['-S', 'TNET-FORWARD']);
      assert.match(chain.split('\n')[1], /^-A TNET-FORWARD -i tnet-br\+ ! -o tnet-br\+ .*-j DROP$/, 'first: pod traffic never leaves our bridges');
      assert.match(chain, /-A TNET-FORWARD -i tnet-br\+ .*-j ACCEPT/);

      // A second node: its own bridge and /24, routed from the root namespace; the ClusterIP
      // route stays on the first bridge; the forward rules are unchanged.
      const node1 = await ensureNodeNetwork({ ...OPTS, nodePodCIDR: '10.250.1.0/24', bridge: 'tnet-br1', serviceRoute: false });
      assert.deepEqual(node1, { bridge: 'tnet-br1', gatewayIP: '10.250.1.1', prefixLength: 24 });
      assert.match(await mustRun('ip', ['route', 'get', '10.250.1.5']), /dev tnet-br1/);
      assert.match(await mustRun('ip', ['route', 'get', '10.251.0.99']), /dev tnet-br0/);
      assert.equal(await mustRun('iptables', ['-S', 'TNET-FORWARD']), chain);
      await assert.rejects(ensureNodeNetwork({ ...OPTS, nodePodCIDR: '10.250.2.0/24', bridge: 'other-br2' }), /does not carry the prefix/);

      // Crash leftovers: a namespace and a veth that the kubelet would have made.
      await addPodNamespace('x', '10.250.0.50', 'tnet-br0');
      await teardownNodeNetwork(PREFIX);
      assert.deepEqual(await leftovers(), []);
      await teardownNodeNetwork(PREFIX); // teardown of nothing is fine
    });
  });

  describe('service proxy and DNS end to end', () => {
    const procs = new Processes();
    let net: NodeNetwork;
    let proxy: ServiceProxy;
    let dns: ClusterDNS | undefined;
    const netnsEtc = `/etc/netns/${PREFIX}-a`;
    let createdEtcNetns = false;

    const web = svc('web', '10.251.0.20', [{ name: 'http', port: 80 }]);
    const webEps = eps('web', ['10.250.0.11'], [{ name: 'http', port: 8080 }]);
    const empty = svc('empty', '10.251.0.30', [{ name: 'http', port: 80 }]);

    before(async () => {
      net = await ensureNodeNetwork(OPTS);
      await addPodNamespace('a', '10.250.0.10', net.bridge);
      await addPodNamespace('b', '10.250.0.11', net.bridge);
      await procs.startNode(`${PREFIX}-b`, httpServerScript('hello from b', 8080));
      proxy = startServiceProxy({ prefix: PREFIX, dns: { serviceIP: '10.251.0.10', targetIP: net.gatewayIP } });
    });
    after(async () => {
      proxy?.stop();
      await procs.stopAll();
      await dns?.close();
      await rm(netnsEtc, { recursive: true, force: true });
      if (createdEtcNetns) await rmdir('/etc/netns').catch(() => undefined);
      await teardownNodeNetwork(PREFIX);
    });

    it('pod -> ClusterIP reaches the endpoint in another pod (masqueraded)', async () => {
      await proxy.sync([web, empty], [webEps]);
      const body = await runNodeIn(`${PREFIX}-a`, fetchScript('http://10.251.0.20/'));
      assert.equal(body, `hello from b ${GATEWAY}`);
    });

    it('host -> ClusterIP works (nat OUTPUT path)', async () => {
      const res = await fetch('http://10.251.0.20/', { signal: AbortSignal.timeout(5000) });
      assert.match(await res.text(), /^hello from b /);
    });

    it('hairpin: a pod reaches itself through its own service', async () => {
      const body = await runNodeIn(`${PREFIX}-b`, fetchScript('http://10.251.0.20/'));
      assert.equal(body, `hello from b ${GATEWAY}`);
    });

    it('a service without endpoints is refused quickly', async () => {
      const out = await runNodeIn(`${PREFIX}-a`, fetchScript('http://10.251.0.30/'));
      const m = /^ERR (\S+) (\d+)$/.exec(out);
      assert.ok(m, `expected a failure, got ${out}`);
      assert.equal(m[1], 'ECONNREFUSED');
      assert.ok(Number(m[2]) < 1000, `refused after ${m[2]} ms`);
      await assert.rejects(fetch('http://10.251.0.30/', { signal: AbortSignal.timeout(3000) }), (e: Error) => {
        assert.equal((e.cause as { code?: string }).code, 'ECONNREFUSED');
        return true;
      });
    });

    it('spreads connections over several endpoints', async () => {
      await procs.startNode(`${PREFIX}-a`, httpServerScript('hello from a', 8080));
      await proxy.sync([web], [eps('web', ['10.250.0.10', '10.250.0.11'], [{ name: 'http', port: 8080 }])]);
      const seen = new Set<string>();
      for (let i = 0; i < 30 && seen.size < 2; i++) {
        const res = await fetch('http://10.251.0.20/', { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } });
        seen.add((await res.text()).split(' ')[2]);
      }
      assert.deepEqual([...seen].sort(), ['a', 'b']);
      const chain = (await mustRun('iptables-save', ['-t', 'nat'])).split('\n').find((l) => l.includes('--probability 0.5'));
      assert.ok(chain, 'first of two endpoints is picked with probability 1/2');
    });

    it('removing the service removes its chains', async () => {
      await proxy.sync([web], [webEps]);
      const before = (await mustRun('iptables-save', ['-t', 'nat'])).split('\n').filter((l) => /^:TNET-(SVC|SEP)-/.test(l));
      assert.equal(before.length, 2, `one SVC and one SEP chain: ${before.join(', ')}`);
      await proxy.sync([], []);
      const saved = await mustRun('iptables-save', ['-t', 'nat']);
      assert.doesNotMatch(saved, /TNET-(SVC|SEP)-/);
      assert.doesNotMatch(saved, /10\.251\.0\.20/);
      assert.match(saved, /-A TNET-SERVICES -d 10\.251\.0\.10\/32 -p udp/, 'the DNS redirect stays');
      await proxy.sync([web, empty], [webEps]);
    });

    it('DNS: a pod resolves web.default.svc.cluster.local through the DNAT to the node DNS', async () => {
      dns = await startClusterDNS({ listen: [{ host: net.gatewayIP, port: 53 }], domain: 'cluster.local' });
      dns.update([web, empty], [webEps]);
      createdEtcNetns = !(await readdir('/etc').then((l) => l.includes('netns')));
      await mkdir(netnsEtc, { recursive: true });
      await writeFile(`${netnsEtc}/resolv.conf`, podResolvConf('default', 'cluster.local', '10.251.0.10'));
      const getent = await mustRun('ip', ['netns', 'exec', `${PREFIX}-a`, 'getent', 'hosts', 'web.default.svc.cluster.local']);
      assert.match(getent, /^10\.251\.0\.20\s+web\.default\.svc\.cluster\.local/);
      // Short name through the search path, via node's resolver (getaddrinfo) in the pod.
      const lookup = await runNodeIn(`${PREFIX}-a`, `require('dns').lookup('web',{family:4},(e,a)=>console.log(e?'ERR '+e.code:a))`);
      assert.equal(lookup, '10.251.0.20');
      // And end to end by name.
      assert.equal(await runNodeIn(`${PREFIX}-a`, fetchScript('http://web/')), `hello from b ${GATEWAY}`);
      const missing = await runCommand('ip', ['netns', 'exec', `${PREFIX}-a`, 'getent', 'hosts', 'nope.default.svc.cluster.local']);
      assert.notEqual(missing.code, 0);
    });

    it('debounced updates coalesce into one apply', async () => {
      const other = svc('other', '10.251.0.40', [{ name: 'http', port: 80 }]);
      proxy.update([web], [webEps]);
      proxy.update([web, other], [webEps]); // within the debounce window: only this state lands
      assert.doesNotMatch(await mustRun('iptables-save', ['-t', 'filter']), /10\.251\.0\.40/, 'not applied synchronously');
      let filter = '';
      for (let i = 0; i < 40 && !filter.includes('10.251.0.40'); i++) {
        await new Promise((r) => setTimeout(r, 50));
        filter = await mustRun('iptables-save', ['-t', 'filter']);
      }
      assert.match(filter, /-A TNET-SERVICES -d 10\.251\.0\.40\/32 .*REJECT/);
      assert.doesNotMatch(filter, /10\.251\.0\.30/, 'the state is replaced, not merged');
    });

    it('removeRules drops the proxy chains and hooks but leaves the node network', async () => {
      await proxy.removeRules();
      const all = (await mustRun('iptables-save', [])).split('\n').filter((l) => l.includes('TNET-'));
      assert.ok(all.length > 0 && all.every((l) => l.includes('TNET-FORWARD')), all.join('\n'));
    });

    it('teardown removes everything with the prefix while pods and services exist', async () => {
      proxy = startServiceProxy({ prefix: PREFIX, dns: { serviceIP: '10.251.0.10', targetIP: net.gatewayIP } });
      await proxy.sync([web, empty], [webEps]);
      proxy.stop();
      await teardownNodeNetwork(PREFIX);
      assert.deepEqual(await leftovers(), []);
    });
  });
  describe('node ports, load balancers, session affinity and pod DNS through the API', () => {
    const procs = new Processes();
    let api: ApiServer | undefined;
    let client: KubeClient;
    let proxy: ServiceProxy;
    let dns: ClusterDNS;
    let controllers: NetworkControllers | undefined;
    let tmp: string;
    const localnetBefore: Record<string, string> = {};

    const waitFor = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> => {
      const deadline = Date.now() + ms;
      let last: unknown;
      while (Date.now() < deadline) {
        try {
          const v = await fn();
          if (v) return v;
        } catch (e) { last = e; }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    };
    const get = async (url: string): Promise<string> => {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000), headers: { connection: 'close' } });
      return res.text();
    };
    const endpointsFor = (name: string, ips: string[]): KubeEndpoints => ({
      metadata: { name, namespace: 'default' }, subsets: [{ addresses: ips.map((ip) => ({ ip })), ports: [{ name: 'http', port: 8080 }] }],
    });

    before(async () => {
      for (const dev of ['all', 'lo']) localnetBefore[dev] = (await readFile(`/proc/sys/net/ipv4/conf/${dev}/route_localnet`, 'utf8')).trim();
      const net = await ensureNodeNetwork(OPTS);
      await addPodNamespace('a', '10.250.0.10', net.bridge);
      await addPodNamespace('b', '10.250.0.11', net.bridge);
      await procs.startNode(`${PREFIX}-a`, httpServerScript('hello from a', 8080));
      await procs.startNode(`${PREFIX}-b`, httpServerScript('hello from b', 8080));
      tmp = await mkdtemp(path.join(os.tmpdir(), 'trellis-tnet-'));
      api = await startApiServer({ dataDir: tmp, store: new MemoryStore(), serviceCIDR: SERVICE_CIDR, listen: [{ host: '127.0.0.1', port: 0 }] });
      client = KubeClient.fromKubeconfig(api.kubeconfigPath);
      await client.create(R.serviceAccounts, { metadata: { name: 'default', namespace: 'default' } });
      proxy = startServiceProxy({ prefix: PREFIX, debounceMs: 20 });
      dns = await startClusterDNS({ listen: [{ host: '127.0.0.1', port: 0 }], domain: 'cluster.local' });
      controllers = runNetworkControllers(client, { proxy, dns });
      await controllers.ready;
    });
    after(async () => {
      controllers?.stop();
      await procs.stopAll();
      await dns?.close();
      try { await client?.close(); await api?.close(); } finally {
        await teardownNodeNetwork(PREFIX);
        await rm(tmp, { recursive: true, force: true });
      }
    });

    it('a NodePort service answers on 127.0.0.1:<nodePort>; route_localnet is set on our bridge only', async () => {
      const svc = await client.create<KubeService>(R.services, {
        metadata: { name: 'np', namespace: 'default' }, spec: { type: 'NodePort', selector: { app: 'np' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      });
      const nodePort = svc.spec.ports?.[0].nodePort ?? 0;
      assert.ok(nodePort >= 30000 && nodePort <= 32767, `allocated node port ${nodePort}`);
      await client.create(R.endpoints, endpointsFor('np', ['10.250.0.11']));
      const body = await waitFor('node port answers', () => get(`http://127.0.0.1:${nodePort}/`).catch(() => undefined));
      assert.equal(body, `hello from b ${GATEWAY}`, 'masqueraded to the bridge address');
      assert.equal(await get(`http://${svc.spec.clusterIP}/`), `hello from b ${GATEWAY}`, 'the cluster IP still works');
      assert.equal((await readFile('/proc/sys/net/ipv4/conf/tnet-br0/route_localnet', 'utf8')).trim(), '1');
      for (const dev of ['all', 'lo']) {
        assert.equal((await readFile(`/proc/sys/net/ipv4/conf/${dev}/route_localnet`, 'utf8')).trim(), localnetBefore[dev], `${dev} untouched`);
      }
      // A pod cannot inject packets for the host's loopback through the bridge.
      assert.match(await mustRun('iptables', ['-S', 'TNET-LOCALNET']), /-d 127\.0\.0\.0\/8 -i tnet-br0 .*-j DROP/);
    });

    it('a LoadBalancer service gets status.loadBalancer.ingress 127.0.0.1 and answers on its node port', async () => {
      const created = await client.create<KubeService>(R.services, {
        metadata: { name: 'lb', namespace: 'default' }, spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      });
      await client.create(R.endpoints, endpointsFor('lb', ['10.250.0.10']));
      const svc = await waitFor('load balancer ingress', async () => {
        const s = await client.get<KubeService>(R.services, 'lb', 'default');
        const lb = s.status?.loadBalancer as { ingress?: { ip: string }[] } | undefined;
        return lb?.ingress?.length ? s : undefined;
      });
      assert.deepEqual(svc.status?.loadBalancer, { ingress: [{ ip: '127.0.0.1' }] });
      const nodePort = created.spec.ports?.[0].nodePort;
      assert.equal(await waitFor('lb node port', () => get(`http://127.0.0.1:${nodePort}/`).catch(() => undefined)), `hello from a ${GATEWAY}`);
    });

    it('ClientIP session affinity keeps each client (host, pod) on one endpoint', async () => {
      await client.create(R.services, {
        metadata: { name: 'sticky', namespace: 'default' },
        spec: { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      } as KubeService);
      await client.create(R.endpoints, endpointsFor('sticky', ['10.250.0.10', '10.250.0.11']));
      const sticky = await client.get<KubeService>(R.services, 'sticky', 'default');
      await waitFor('sticky answers', () => get(`http://${sticky.spec.clusterIP}/`).catch(() => undefined));
      const seen = new Set<string>();
      for (let i = 0; i < 16; i++) seen.add((await get(`http://${sticky.spec.clusterIP}/`)).split(' ')[2]);
      assert.equal(seen.size, 1, `one backend for one client, saw ${[...seen].join(',')}`);
      // The same client from a pod namespace (another source address) is pinned too, maybe elsewhere.
      const script = `(async()=>{const s=new Set();for(let i=0;i<8;i++){const r=await fetch('http://${sticky.spec.clusterIP}/',{headers:{connection:'close'}});s.add((await r.text()).split(' ')[2]);}console.log([...s].join(','))})()`;
      assert.equal((await runNodeIn(`${PREFIX}-a`, script)).split(',').length, 1);
      assert.match(await mustRun('iptables-save', ['-t', 'nat']), /--seconds 60 --reap --name TNET-SEP-/);
    });

    it('DNS answers <hostname>.<subdomain> records for pods from the Pod informer', async () => {
      await client.create(R.services, { metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: 'None', ports: [{ port: 5432 }] } } as KubeService);
      const pod = await client.create<KubePod>(R.pods, {
        metadata: { name: 'db-0', namespace: 'default' },
        spec: { hostname: 'db-0', subdomain: 'db', containers: [{ name: 'c', image: 'x' }] } as KubePod['spec'],
      });
      await client.updateStatus(R.pods, { ...pod, status: { phase: 'Running', podIP: '10.250.0.10', conditions: [{ type: 'Ready', status: 'True' }] } });
      const resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([`127.0.0.1:${dns.addresses[0].port}`]);
      const ips = await waitFor('pod record', () => resolver.resolve4('db-0.db.default.svc.cluster.local').catch(() => undefined));
      assert.deepEqual(ips, ['10.250.0.10']);
      await client.delete(R.pods, 'db-0', 'default', { gracePeriodSeconds: 0 });
      await waitFor('pod record removed', () => resolver.resolve4('db-0.db.default.svc.cluster.local').then(() => false, (e: { code?: string }) => e.code === 'ENOTFOUND'));
    });
  });
});
