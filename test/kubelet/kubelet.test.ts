// The kubelet against a real apiserver: pods become processes in network namespaces on a
// real bridge, reachable from the host, with probes, init containers, sidecars, tokens,
// restarts, graceful deletion, and a clean stop. Needs root, ip, nsenter, unshare, setpriv.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { KubeClient, R, type ConfigMap, type Node, type Pod, type PodCondition } from '../../api/kube/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { ensureNodeNetwork, teardownNodeNetwork } from '../../cluster/network/node-network.js';
import { listSandboxObjects, sandboxNames, startKubelet, type Kubelet } from '../../cluster/kubelet/index.js';
import type { CoreEvent } from '../../cluster/kubelet/events.js';
import { EndpointsController } from '../../cluster/controllers/endpoints.js';
import { SharedInformers } from '../../cluster/controllers/shared-informers.js';
import type { Endpoints, Service } from '../../api/kube/index.js';

const PREFIX = 'tkl';
const NODE = 'tkl-node';
const NS = 'default';
const NODE_CIDR = '10.253.0.0/24';

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, veth, mount namespaces)';
  for (const bin of ['ip', 'nsenter', 'unshare', 'setpriv', 'mount']) {
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { return `needs the ${bin} binary`; }
  }
  return undefined;
}
const skip = missingPrerequisite();

// The app: an HTTP server that reports what the container sees.
const APP = `
const http = require('http'), fs = require('fs'), https = require('https');
const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return null; } };
const seenAtStart = { init: read('/mnt/work/init.txt'), sidecar: read('/mnt/work/sidecar.txt') };
http.createServer((req, res) => {
  if (req.url === '/whoami') {
    const token = read('/var/run/secrets/kubernetes.io/serviceaccount/token');
    const ca = read('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
    const r = https.request(process.env.APISERVER + '/api/v1/namespaces/' + process.env.POD_NAMESPACE + '/pods/' + process.env.POD_NAME,
      { headers: { authorization: 'Bearer ' + token }, ca }, (up) => { up.resume(); res.end(JSON.stringify({ code: up.statusCode })); });
    r.on('error', (e) => res.end(JSON.stringify({ error: e.message })));
    r.end();
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    env: process.env, uid: process.getuid(), gid: process.getgid(), pid: process.pid, seenAtStart,
    token: read('/var/run/secrets/kubernetes.io/serviceaccount/token'),
    namespace: read('/var/run/secrets/kubernetes.io/serviceaccount/namespace'),
    resolv: read('/etc/resolv.conf'), hosts: read('/etc/hosts'),
  }));
}).listen(8080);
process.on('SIGTERM', () => process.exit(0));
`;

const SIDECAR = `
const http = require('http'), fs = require('fs');
http.createServer((req, res) => res.end(String(process.pid))).listen(9091, () => fs.writeFileSync('/mnt/work/sidecar.txt', 'sidecar up'));
process.on('SIGTERM', () => process.exit(0));
`;

interface AppReport {
  env: Record<string, string>;
  uid: number;
  gid: number;
  pid: number;
  seenAtStart: { init: string | null; sidecar: string | null };
  token: string | null;
  namespace: string | null;
  resolv: string | null;
  hosts: string | null;
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { lastErr = e; }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe('kubelet', { skip, timeout: 240_000 }, () => {
  let api: ApiServer | undefined;
  let client: KubeClient;
  let kubelet: { stop(): Promise<void>; kubelet: Kubelet } | undefined;
  let tmp: string;
  let dataDir: string;
  let gatewayIP: string;
  let bridge: string;
  let catalog: string;

  const podBase = (name: string, spec: Partial<Pod['spec']>): Pod => ({
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 5, containers: [], ...spec },
  });

  const getPod = (name: string): Promise<Pod> => client.get<Pod>(R.pods, name, NS);

  async function startTheKubelet(): Promise<void> {
    kubelet = await startKubelet({
      client, nodeName: NODE, prefix: PREFIX, bridge, gatewayIP, nodePodCIDR: NODE_CIDR,
      imageCatalogs: [catalog], dataDir, clusterDNS: '10.254.0.10', clusterDomain: 'cluster.local',
    });
  }

  async function stopTheKubelet(): Promise<void> {
    const k = kubelet;
    kubelet = undefined;
    await k?.stop();
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-kubelet-'));
    dataDir = path.join(tmp, 'kubelet');
    catalog = path.join(tmp, 'catalog.yaml');
    fs.writeFileSync(catalog, [
      'test/sleeper:1:',
      '  command: ["sh", "-c"]',
      '  args: ["echo catalog-args; sleep 1000"]',
      '',
    ].join('\n'));
    await teardownNodeNetwork(PREFIX); // leftovers of an earlier crashed run
    const net = await ensureNodeNetwork({ prefix: PREFIX, nodePodCIDR: NODE_CIDR, clusterPodCIDR: '10.253.0.0/16', serviceCIDR: '10.254.0.0/16' });
    gatewayIP = net.gatewayIP;
    bridge = net.bridge;
    // Pods reach the apiserver on the gateway address; the test and kubelet use loopback.
    api = await startApiServer({
      dataDir: path.join(tmp, 'apiserver'), store: new MemoryStore(), serviceCIDR: '10.254.0.0/16',
      listen: [{ host: '127.0.0.1', port: 0 }, { host: gatewayIP, port: 0 }],
    });
    client = KubeClient.fromKubeconfig(api.kubeconfigPath);
    // No controllers run here: create the default ServiceAccount ourselves.
    await client.create(R.serviceAccounts, { metadata: { name: 'default', namespace: NS } });
    await startTheKubelet();
  });

  after(async () => {
    try { await kubelet?.stop(); } finally {
      try { await client?.close(); await api?.close(); } finally {
        await teardownNodeNetwork(PREFIX);
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  });

  it('registers a Ready node with its pod CIDR, addresses and capacity', async () => {
    const node = await client.get<Node>(R.nodes, NODE);
    assert.equal(node.spec?.podCIDR, NODE_CIDR);
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(node.status?.addresses, [{ type: 'InternalIP', address: gatewayIP }, { type: 'Hostname', address: NODE }]);
    assert.equal(node.status?.capacity?.pods, '110');
    assert.equal(node.status?.capacity?.cpu, String(os.availableParallelism()));
    assert.equal(node.status?.nodeInfo?.operatingSystem, 'linux');
  });

  describe('a pod with an init container, a native sidecar and a probed app', () => {
    let pod: Pod;
    let report: AppReport;

    before(async () => {
      await client.create(R.configMaps, { metadata: { name: 'web-config', namespace: NS }, data: { greeting: 'hello' } });
      await client.create(R.secrets, { metadata: { name: 'web-secret', namespace: NS }, data: { password: Buffer.from('s3cret').toString('base64') } });
      await client.create(R.pods, podBase('web', {
        volumes: [{ name: 'work', emptyDir: {} }],
        initContainers: [
          { name: 'setup', image: 'busybox', command: ['sh', '-c', 'echo initialized > /mnt/work/init.txt'], volumeMounts: [{ name: 'work', mountPath: '/mnt/work' }] },
          {
            name: 'sidecar', image: 'sidecar', restartPolicy: 'Always', command: ['node', '-e', SIDECAR],
            volumeMounts: [{ name: 'work', mountPath: '/mnt/work' }],
            readinessProbe: { httpGet: { path: '/', port: 9091 }, periodSeconds: 1 },
          },
        ],
        containers: [{
          name: 'app', image: 'app', command: ['node', '-e', APP],
          ports: [{ name: 'http', containerPort: 8080 }],
          securityContext: { runAsUser: 1337, runAsGroup: 1337 },
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
          livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 2 },
          volumeMounts: [{ name: 'work', mountPath: '/mnt/work' }],
          env: [
            { name: 'APISERVER', value: `https://${gatewayIP}:${api?.port}` },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'SA_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'APP_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'greeting' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'web-secret', key: 'password' } } },
            { name: 'MESSAGE', value: '$(GREETING) from $(POD_NAME)' },
          ],
        }],
      }));
      pod = await waitFor('pod web Ready', async () => {
        const p = await getPod('web');
        return p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && p;
      }, 60_000);
      const res = await fetch(`http://${pod.status?.podIP}:8080/`);
      report = await res.json() as AppReport;
    });

    it('gets an IP from the node CIDR and reaches Running/Ready', () => {
      const ip = pod.status?.podIP ?? '';
      assert.match(ip, /^10\.253\.0\.\d+$/);
      assert.notEqual(ip, gatewayIP);
      assert.equal(pod.status?.phase, 'Running');
      assert.equal(pod.status?.hostIP, gatewayIP);
      assert.deepEqual(pod.status?.podIPs, [{ ip }]);
      for (const t of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']) {
        const c: PodCondition | undefined = pod.status?.conditions?.find((x) => x.type === t);
        assert.equal(c?.status, 'True', `condition ${t}`);
        assert.ok(c?.lastTransitionTime, `condition ${t} has lastTransitionTime`);
      }
      const app = pod.status?.containerStatuses?.find((c) => c.name === 'app');
      assert.ok(app?.state?.running?.startedAt);
      assert.equal(app?.ready, true);
      assert.equal(app?.started, true);
      const [setup, sidecar] = pod.status?.initContainerStatuses ?? [];
      assert.equal(setup.state?.terminated?.exitCode, 0);
      assert.equal(setup.state?.terminated?.reason, 'Completed');
      assert.ok(sidecar.state?.running, 'sidecar keeps running');
    });

    it('passes env values, fieldRefs, ConfigMap and Secret keys', () => {
      const e = report.env;
      assert.equal(e.POD_NAME, 'web');
      assert.equal(e.POD_NAMESPACE, NS);
      assert.equal(e.POD_UID, pod.metadata.uid);
      assert.equal(e.POD_IP, pod.status?.podIP);
      assert.equal(e.HOST_IP, gatewayIP);
      assert.equal(e.NODE_NAME, NODE);
      assert.equal(e.SA_NAME, 'default');
      assert.equal(e.APP_LABEL, 'web');
      assert.equal(e.GREETING, 'hello');
      assert.equal(e.PASSWORD, 's3cret');
      assert.equal(e.MESSAGE, 'hello from web');
      // The kubernetes Service's ClusterIP in this cluster's service CIDR (10.254.0.0/16).
      assert.equal(e.KUBERNETES_SERVICE_HOST, '10.254.0.1');
      assert.equal(e.KUBERNETES_SERVICE_PORT, '443');
      assert.ok(e.PATH?.includes('/usr/bin'));
    });

    it('honours runAsUser/runAsGroup', () => {
      assert.equal(report.uid, 1337);
      assert.equal(report.gid, 1337);
    });

    it('mounts the pod resolv.conf and hosts', () => {
      assert.match(report.resolv ?? '', /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
      assert.match(report.resolv ?? '', /^nameserver 10\.254\.0\.10$/m);
      assert.match(report.resolv ?? '', /^options ndots:5$/m);
      assert.match(report.hosts ?? '', new RegExp(`^${pod.status?.podIP?.replace(/\./g, '\\.')}\\s+web$`, 'm'));
    });

    it('runs the init container and the sidecar before the app', () => {
      assert.equal(report.seenAtStart.init, 'initialized\n');
      assert.equal(report.seenAtStart.sidecar, 'sidecar up');
    });

    it('projects a service account token that authenticates against the apiserver', async () => {
      assert.ok(report.token && report.token.split('.').length === 3, 'token file is a JWT');
      assert.equal(report.namespace, NS);
      const review = await client.create(R.tokenReviews, { metadata: {}, spec: { token: report.token } } as unknown as Pod) as unknown as { status?: { authenticated?: boolean; user?: { username?: string } } };
      assert.equal(review.status?.authenticated, true);
      assert.equal(review.status?.user?.username, `system:serviceaccount:${NS}:default`);
      // From inside the pod, over the bridge, verifying the apiserver with the projected CA.
      const res = await fetch(`http://${pod.status?.podIP}:8080/whoami`);
      const body = await res.json() as { code?: number; error?: string };
      assert.equal(body.error, undefined);
      assert.notEqual(body.code, 401);
    });

    it('does not rewrite a status that did not change', async () => {
      const rv = (await getPod('web')).metadata.resourceVersion;
      await sleep(3000); // three readiness periods
      assert.equal((await getPod('web')).metadata.resourceVersion, rv);
    });

    it('writes container logs under dataDir/pods/<uid>/<container>/<restartCount>.log', () => {
      assert.ok(fs.existsSync(path.join(dataDir, 'pods', pod.metadata.uid ?? '', 'app', '0.log')));
    });

    it('on deletion stops the processes and removes the netns and veth', async () => {
      const uid = pod.metadata.uid ?? '';
      const pids = kubelet?.kubelet.podPids(`${NS}/web`) ?? [];
      assert.ok(pids.includes(report.pid), 'the app PID is one of the pod\'s');
      assert.equal(pids.length, 2, 'app and sidecar run');
      const { netns, hostVeth } = sandboxNames(PREFIX, uid);
      assert.ok((await listSandboxObjects(PREFIX)).includes(netns));
      await client.delete(R.pods, 'web', NS);
      await waitFor('pod web gone from the API', async () => !(await client.find<Pod>(R.pods, 'web', NS)), 30_000);
      for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} is gone`);
      const left = await listSandboxObjects(PREFIX);
      assert.ok(!left.includes(netns), `netns ${netns} removed`);
      assert.ok(!left.includes(hostVeth), `veth ${hostVeth} removed`);
    });
  });

  it('terminates in order: preStop, app, then sidecar', async () => {
    const out = path.join(tmp, 'order.txt');
    // Each loop marks when its TERM trap is installed: Running only means the process was
    // started, and a TERM before the trap would end it without a word.
    const loop = (word: string): string[] => ['sh', '-c', `trap 'echo ${word} >> "$OUT"; exit 0' TERM; touch "$OUT.${word}"; while true; do sleep 0.1; done`];
    await client.create(R.pods, podBase('ordered', {
      initContainers: [{ name: 'side', image: 'x', restartPolicy: 'Always', command: loop('sidecar-term'), env: [{ name: 'OUT', value: out }] }],
      containers: [{
        name: 'app', image: 'x', command: loop('app-term'), env: [{ name: 'OUT', value: out }],
        lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo prestop >> "$OUT"'] } } },
      }],
    }));
    await waitFor('ordered running', async () => (await getPod('ordered')).status?.phase === 'Running');
    await waitFor('both TERM traps installed', async () => fs.existsSync(`${out}.app-term`) && fs.existsSync(`${out}.sidecar-term`));
    const pids = kubelet?.kubelet.podPids(`${NS}/ordered`) ?? [];
    assert.equal(pids.length, 2);
    await client.delete(R.pods, 'ordered', NS);
    await waitFor('ordered gone', async () => !(await client.find<Pod>(R.pods, 'ordered', NS)));
    assert.equal(fs.readFileSync(out, 'utf8'), 'prestop\napp-term\nsidecar-term\n');
    for (const pid of pids) assert.equal(pidAlive(pid), false);
  });

  it('restarts a crashing container with CrashLoopBackOff', async () => {
    await client.create(R.pods, podBase('crasher', { containers: [{ name: 'crash', image: 'x', command: ['sh', '-c', 'echo boom; exit 3'] }] }));
    const p = await waitFor('crasher in CrashLoopBackOff', async () => {
      const pod = await getPod('crasher');
      const cs = pod.status?.containerStatuses?.[0];
      return cs && cs.restartCount > 0 && cs.state?.waiting?.reason === 'CrashLoopBackOff' && pod;
    }, 30_000);
    const cs = p.status?.containerStatuses?.[0];
    assert.equal(cs?.lastState?.terminated?.exitCode, 3);
    assert.equal(cs?.lastState?.terminated?.reason, 'Error');
    assert.equal(p.status?.phase, 'Running');
    assert.equal(fs.readFileSync(path.join(dataDir, 'pods', p.metadata.uid ?? '', 'crash', '0.log'), 'utf8'), 'boom\n');
    assert.equal(kubelet?.kubelet.logPath(NS, 'crasher', 'crash', true), path.join(dataDir, 'pods', p.metadata.uid ?? '', 'crash', `${(cs?.restartCount ?? 1) - 1}.log`));
    await client.delete(R.pods, 'crasher', NS);
    await waitFor('crasher gone', async () => !(await client.find<Pod>(R.pods, 'crasher', NS)));
  });

  it('kills and restarts a container whose liveness probe fails', async () => {
    await client.create(R.pods, podBase('unhealthy', {
      containers: [{ name: 'main', image: 'x', command: ['sleep', '1000'], livenessProbe: { tcpSocket: { port: 9 }, periodSeconds: 1, failureThreshold: 2 } }],
    }));
    const p = await waitFor('liveness restart', async () => {
      const pod = await getPod('unhealthy');
      const cs = pod.status?.containerStatuses?.[0];
      return cs && cs.restartCount >= 1 && cs.lastState?.terminated && pod;
    });
    // SIGTERM from the kubelet: 128 + 15.
    assert.equal(p.status?.containerStatuses?.[0].lastState?.terminated?.exitCode, 143);
    await client.delete(R.pods, 'unhealthy', NS);
    await waitFor('unhealthy gone', async () => !(await client.find<Pod>(R.pods, 'unhealthy', NS)));
  });

  it('retries a failing init container with back-off and keeps the app waiting', async () => {
    await client.create(R.pods, podBase('badinit', {
      initContainers: [{ name: 'fail', image: 'x', command: ['sh', '-c', 'exit 1'] }],
      containers: [{ name: 'main', image: 'x', command: ['sleep', '1000'] }],
    }));
    const p = await waitFor('Init:CrashLoopBackOff', async () => {
      const pod = await getPod('badinit');
      const init = pod.status?.initContainerStatuses?.[0];
      return init && init.restartCount > 0 && init.state?.waiting?.reason === 'CrashLoopBackOff' && pod;
    });
    assert.equal(p.status?.initContainerStatuses?.[0].lastState?.terminated?.reason, 'Error');
    assert.equal(p.status?.phase, 'Pending');
    assert.equal(p.status?.conditions?.find((c) => c.type === 'Initialized')?.status, 'False');
    assert.equal(p.status?.containerStatuses?.[0].state?.waiting?.reason, 'PodInitializing');
    assert.deepEqual(kubelet?.kubelet.podPids(`${NS}/badinit`), []);
    await client.delete(R.pods, 'badinit', NS);
    await waitFor('badinit gone', async () => !(await client.find<Pod>(R.pods, 'badinit', NS)));
  });

  it('runs a hostNetwork pod in the root namespace with the node IP', async () => {
    await client.create(R.pods, podBase('hostnet', { hostNetwork: true, containers: [{ name: 'main', image: 'x', command: ['sleep', '1000'] }] }));
    const p = await waitFor('hostnet running', async () => { const pod = await getPod('hostnet'); return pod.status?.phase === 'Running' && pod; });
    assert.equal(p.status?.podIP, gatewayIP);
    const [pid] = kubelet?.kubelet.podPids(`${NS}/hostnet`) ?? [];
    assert.equal(fs.readlinkSync(`/proc/${pid}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
    await client.delete(R.pods, 'hostnet', NS);
    await waitFor('hostnet gone', async () => !(await client.find<Pod>(R.pods, 'hostnet', NS)));
    assert.equal(pidAlive(pid), false);
  });

  it('reports an image missing from the catalog, and runs catalog images', async () => {
    await client.create(R.pods, podBase('images', {
      containers: [{ name: 'unknown', image: 'nowhere/none:1' }, { name: 'known', image: 'test/sleeper:1' }],
    }));
    const p = await waitFor('ImageNotInCatalog', async () => {
      const pod = await getPod('images');
      const unknown = pod.status?.containerStatuses?.find((c) => c.name === 'unknown');
      const known = pod.status?.containerStatuses?.find((c) => c.name === 'known');
      return unknown?.state?.waiting?.reason === 'ImageNotInCatalog' && known?.state?.running && pod;
    });
    const unknown = p.status?.containerStatuses?.find((c) => c.name === 'unknown');
    assert.match(unknown?.state?.waiting?.message ?? '', /nowhere\/none:1/);
    assert.ok(unknown?.state?.waiting?.message?.includes(catalog));
    assert.equal(p.status?.phase, 'Pending');
    await waitFor('catalog args in the log', async () =>
      fs.readFileSync(path.join(dataDir, 'pods', p.metadata.uid ?? '', 'known', '0.log'), 'utf8') === 'catalog-args\n');
    // Removed from the API at once (no graceful deletion): the kubelet tears it down from the informer's delete.
    await client.delete(R.pods, 'images', NS, { gracePeriodSeconds: 0 });
    const { netns } = sandboxNames(PREFIX, p.metadata.uid ?? '');
    await waitFor('images sandbox removed', async () => !(await listSandboxObjects(PREFIX)).includes(netns));
    assert.deepEqual(kubelet?.kubelet.podPids(`${NS}/images`), []);
  });

  it('runs a pod to completion (restartPolicy Never) as Succeeded', async () => {
    await client.create(R.pods, podBase('job', { restartPolicy: 'Never', containers: [{ name: 'once', image: 'x', command: ['true'] }] }));
    const p = await waitFor('job Succeeded', async () => { const pod = await getPod('job'); return pod.status?.phase === 'Succeeded' && pod; });
    assert.equal(p.status?.containerStatuses?.[0].state?.terminated?.reason, 'Completed');
    assert.equal(p.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
    assert.ok(!(await listSandboxObjects(PREFIX)).includes(sandboxNames(PREFIX, p.metadata.uid ?? '').netns), 'a finished pod keeps no sandbox');
    await client.delete(R.pods, 'job', NS);
    await waitFor('job gone', async () => !(await client.find<Pod>(R.pods, 'job', NS)));
  });

  const eventsFor = async (pod: string): Promise<CoreEvent[]> =>
    (await client.list<CoreEvent>(R.events, { namespace: NS })).items.filter((e) => e.involvedObject.name === pod);
  const deletePod = async (name: string): Promise<void> => {
    await client.delete(R.pods, name, NS, { gracePeriodSeconds: 0 });
    await waitFor(`${name} gone`, async () => !kubelet?.kubelet.podPids(`${NS}/${name}`).length && !(await client.find<Pod>(R.pods, name, NS)));
  };

  it('refreshes a configMap volume when the ConfigMap changes, swapping ..data atomically', async () => {
    await client.create(R.configMaps, { metadata: { name: 'live-config', namespace: NS }, data: { greeting: 'first', gone: 'soon' } });
    await client.create(R.pods, podBase('reader', {
      volumes: [{ name: 'cfg', configMap: { name: 'live-config' } }],
      containers: [{
        name: 'c', image: 'x', command: ['sh', '-c', 'while true; do echo "greeting=$(cat /etc/cfg/greeting) files=$(ls /etc/cfg | tr "\\n" ,)"; sleep 0.3; done'],
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }],
      }],
    }));
    const log = (): string => { const f = kubelet?.kubelet.logPath(NS, 'reader', 'c'); return f && fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : ''; };
    await waitFor('first value read in the container', async () => log().includes('greeting=first files=gone,greeting,'));
    const pod = await getPod('reader');
    const dir = path.join(dataDir, 'pods', pod.metadata.uid ?? '', 'volumes', 'cfg');
    assert.equal(fs.readlinkSync(path.join(dir, 'greeting')), '..data/greeting', 'each key is a symlink through ..data');
    const before = fs.readlinkSync(path.join(dir, '..data'));
    const cm = await client.get<ConfigMap>(R.configMaps, 'live-config', NS);
    await client.update(R.configMaps, { ...cm, data: { greeting: 'second' } });
    await waitFor('new value read in the same container', async () => log().includes('greeting=second files=greeting,'), 30_000);
    assert.notEqual(fs.readlinkSync(path.join(dir, '..data')), before, '..data points at a new directory');
    assert.deepEqual(fs.readdirSync(dir).filter((e) => e.startsWith('..') && e !== '..data'), [fs.readlinkSync(path.join(dir, '..data'))], 'the old directory is gone');
    assert.ok(!/greeting=(?!first|second)/.test(log()), 'never a torn read');
    assert.equal((await getPod('reader')).status?.containerStatuses?.[0].restartCount, 0, 'the container was not restarted');
    await deletePod('reader');
  });

  it('records Pulled/Created/Started, Unhealthy with the probe output, Killing and BackOff events', async () => {
    await client.create(R.pods, podBase('noisy', {
      containers: [{
        name: 'main', image: 'test/sleeper:1', command: ['sleep', '1000'],
        readinessProbe: { exec: { command: ['sh', '-c', 'echo database not reachable; exit 1'] }, periodSeconds: 1 },
        livenessProbe: { tcpSocket: { port: 9 }, periodSeconds: 1, failureThreshold: 2 },
      }],
    }));
    const events = await waitFor('Killing and BackOff events', async () => {
      const ev = await eventsFor('noisy');
      return ev.some((e) => e.reason === 'Killing') && ev.some((e) => e.reason === 'BackOff') && ev;
    });
    const by = (reason: string) => events.filter((e) => e.reason === reason);
    const started = by('Started')[0];
    assert.equal(started.type, 'Normal');
    assert.equal(started.message, 'Started container main');
    assert.equal(started.involvedObject.fieldPath, 'spec.containers{main}');
    assert.equal(started.involvedObject.uid, (await getPod('noisy')).metadata.uid);
    assert.equal(started.source.component, 'kubelet');
    assert.equal(started.source.host, NODE);
    assert.equal(by('Pulled')[0]?.message, 'Container image "test/sleeper:1" already present on machine');
    const readiness = by('Unhealthy').find((e) => e.message.startsWith('Readiness'));
    assert.equal(readiness?.message, 'Readiness probe failed: database not reachable');
    assert.equal(readiness?.type, 'Warning');
    const liveness = by('Unhealthy').find((e) => e.message.startsWith('Liveness'));
    assert.match(liveness?.message ?? '', /^Liveness probe failed: dial tcp 10\.253\.0\.\d+:9: connect: connection refused$/);
    assert.equal(by('Killing')[0].message, 'Container main failed liveness probe, will be restarted');
    assert.match(by('BackOff')[0].message, /^Back-off restarting failed container main in pod noisy_default\(/);
    // Repeats fold into one Event with a count, as `kubectl get events` shows them.
    const folded = await waitFor('a repeated Unhealthy event', async () =>
      (await eventsFor('noisy')).find((e) => e.message.startsWith('Readiness') && e.count > 1));
    assert.ok(folded.lastTimestamp >= folded.firstTimestamp);
    await deletePod('noisy');
  });

  it('a startup probe holds off liveness until it succeeds', async () => {
    const flag = path.join(tmp, 'started-flag');
    // Liveness would kill the container at once if it ran before the startup probe passed.
    await client.create(R.pods, podBase('slowstart', {
      containers: [{
        name: 'main', image: 'x', command: ['sh', '-c', `sleep 2; touch ${flag}; exec sleep 1000`],
        startupProbe: { exec: { command: ['test', '-f', flag] }, periodSeconds: 1, failureThreshold: 30 },
        livenessProbe: { exec: { command: ['test', '-f', flag] }, periodSeconds: 1, failureThreshold: 1 },
      }],
    }));
    const early = await waitFor('slowstart running', async () => { const p = await getPod('slowstart'); return p.status?.phase === 'Running' && p; });
    assert.equal(early.status?.containerStatuses?.[0].started, false, 'not started before the startup probe passes');
    assert.equal(early.status?.containerStatuses?.[0].ready, false);
    const p = await waitFor('slowstart started', async () => { const x = await getPod('slowstart'); return x.status?.containerStatuses?.[0].started && x; });
    assert.equal(p.status?.containerStatuses?.[0].restartCount, 0, 'liveness never ran before startup succeeded');
    assert.equal(p.status?.containerStatuses?.[0].ready, true);
    const unhealthy = (await eventsFor('slowstart')).filter((e) => e.reason === 'Unhealthy');
    assert.ok(unhealthy.every((e) => e.message.startsWith('Startup probe failed')), unhealthy.map((e) => e.message).join('; '));
    // Now liveness runs: removing the flag makes it fail and restart the container.
    fs.rmSync(flag);
    await waitFor('liveness restart after startup', async () => ((await getPod('slowstart')).status?.containerStatuses?.[0].restartCount ?? 0) >= 1);
    await deletePod('slowstart');
  });

  it('enforces memory limits with a cgroup per pod; OOM kills show as OOMKilled', async (t) => {
    const cg = kubelet?.kubelet.cgroups;
    if (!cg?.backend) { t.skip(`memory cgroups unavailable here: ${cg?.reason}`); return; }
    const hog = 'const a=[];setInterval(()=>{for(let i=0;i<8;i++)a.push(Buffer.alloc(1<<20,1))},10)';
    await client.create(R.pods, podBase('hog', {
      restartPolicy: 'Never',
      containers: [
        { name: 'hog', image: 'x', command: ['node', '-e', hog], resources: { limits: { memory: '64Mi' } } },
        { name: 'calm', image: 'x', command: ['sleep', '1000'], resources: { limits: { memory: '32Mi' } } },
      ],
    }));
    const p = await waitFor('hog OOMKilled', async () => {
      const pod = await getPod('hog');
      const hogStatus = pod.status?.containerStatuses?.find((c) => c.name === 'hog');
      return hogStatus?.state?.terminated && pod;
    });
    const uid = p.metadata.uid ?? '';
    const podDir = path.join(cg.backend.slice, `pod${uid}`);
    const hogState = p.status?.containerStatuses?.find((c) => c.name === 'hog')?.state?.terminated;
    assert.equal(hogState?.reason, 'OOMKilled');
    assert.equal(hogState?.exitCode, 137);
    // The other container keeps running in its own group with its own limit.
    const [calmPid] = kubelet?.kubelet.podPids(`${NS}/hog`) ?? [];
    const limitFile = cg.backend.version === 2 ? 'memory.max' : 'memory.limit_in_bytes';
    assert.equal(fs.readFileSync(path.join(podDir, 'calm', limitFile), 'utf8').trim(), String(32 * 1024 * 1024));
    assert.ok(fs.readFileSync(path.join(podDir, 'calm', 'cgroup.procs'), 'utf8').split('\n').includes(String(calmPid)), 'the container process is in its group');
    await deletePod('hog');
    assert.equal(fs.existsSync(podDir), false, 'the pod group is removed with the pod');
  });

  it('runs exec probes and hooks inside the container: its mounts, working directory, cgroup and capabilities', async (t) => {
    const cg = kubelet?.kubelet.cgroups;
    const dir = '/run/tkl-probe-only';
    // Only the container's mount namespace has the emptyDir at `dir`; the probe must also
    // share the main process's cgroup (when this machine has them), cwd and capabilities.
    // The probe's shell ($$) must be listed in cgroup.procs of the main process's group.
    const sameCgroup = cg?.backend?.version === 2 ? `grep -qx $$ "/sys/fs/cgroup$(cut -d: -f3 ${dir}/cgroup)/cgroup.procs" &&`
      : cg?.backend ? `[ "$(grep memory /proc/self/cgroup)" = "$(grep memory ${dir}/cgroup)" ] &&` : '';
    await client.create(R.pods, podBase('inside', {
      volumes: [{ name: 'only', emptyDir: {} }],
      containers: [{
        name: 'main', image: 'x', workingDir: dir, volumeMounts: [{ name: 'only', mountPath: dir }],
        securityContext: { capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } },
        command: ['sh', '-c', `cat /proc/self/cgroup > ${dir}/cgroup; echo here > ${dir}/flag; exec sleep 1000`],
        resources: { limits: { memory: '64Mi' } },
        readinessProbe: { periodSeconds: 1, exec: { command: ['sh', '-c', `${sameCgroup} [ "$(pwd)" = ${dir} ] && grep -q '^CapEff:.*0000000000001000$' /proc/self/status && cat flag`] } },
        lifecycle: { preStop: { exec: { command: ['sh', '-c', `cat /proc/self/cgroup > ${dir}/prestop-cgroup; cp ${dir}/prestop-cgroup /tmp/tkl-prestop-cgroup`] } } },
      }],
    }));
    assert.equal(fs.existsSync(`${dir}/flag`), false, 'the file is not visible outside the container');
    const p = await waitFor('inside Ready (the exec probe passed)', async () => {
      const pod = await getPod('inside');
      return pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && pod;
    });
    if (!cg?.backend) t.diagnostic(`no cgroups here (${cg?.reason}); the cgroup part is not checked`);
    fs.rmSync('/tmp/tkl-prestop-cgroup', { force: true });
    await client.delete(R.pods, 'inside', NS);
    await waitFor('inside gone', async () => !(await client.find<Pod>(R.pods, 'inside', NS)));
    const prestopCgroup = fs.readFileSync('/tmp/tkl-prestop-cgroup', 'utf8');
    fs.rmSync('/tmp/tkl-prestop-cgroup', { force: true });
    if (cg?.backend) assert.match(prestopCgroup, new RegExp(`pod${p.metadata.uid ?? ''}/main\\n?$`, 'm'), 'the preStop hook ran in the container cgroup');
  });

  it('applies capabilities: the runtime default set, drop ALL, add NET_ADMIN, privileged, no_new_privs, non-root', async () => {
    const report = [
      "grep -E '^(CapBnd|CapEff|NoNewPrivs):' /proc/self/status",
      'if ip link add tklc${C}a type veth peer name tklc${C}b 2>/dev/null; then echo veth=ok; ip link del tklc${C}a; else echo veth=denied; fi',
      'f=/caps/$C; : > $f; if chown 4321 $f 2>/dev/null; then echo chown=ok; else echo chown=denied; fi',
    ].join('\n');
    const c = (id: string, securityContext: NonNullable<Pod['spec']['containers'][number]['securityContext']>) => ({
      name: `c${id}`, image: 'x', command: ['sh', '-c', report], env: [{ name: 'C', value: id }], securityContext,
      volumeMounts: [{ name: 'caps', mountPath: '/caps' }],
    });
    await client.create(R.pods, podBase('caps', {
      restartPolicy: 'Never',
      volumes: [{ name: 'caps', emptyDir: {} }],
      containers: [
        c('0', {}),
        c('1', { capabilities: { drop: ['ALL'] } }),
        c('2', { capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } }),
        c('3', { privileged: true }),
        c('4', { allowPrivilegeEscalation: false, capabilities: { drop: ['CHOWN'] } }),
        c('5', { runAsUser: 1000, capabilities: { add: ['CAP_NET_ADMIN'] } }),
      ],
    }));
    const p = await waitFor('caps Succeeded', async () => { const pod = await getPod('caps'); return pod.status?.phase === 'Succeeded' && pod; });
    const out = (id: string): Record<string, string> => Object.fromEntries(
      fs.readFileSync(path.join(dataDir, 'pods', p.metadata.uid ?? '', `c${id}`, '0.log'), 'utf8').split('\n').filter(Boolean)
        .map((l) => l.split(/[:=]\s*/) as [string, string]),
    );
    // Privileged gets every capability the kubelet itself may hold (its bounding set).
    const all = /^CapBnd:\s*(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    const docker = '00000000a80425fb'; // Docker's default set, as `docker run` shows it
    assert.deepEqual(out('0'), { CapBnd: docker, CapEff: docker, NoNewPrivs: '0', veth: 'denied', chown: 'ok' });
    assert.deepEqual(out('1'), { CapBnd: '0000000000000000', CapEff: '0000000000000000', NoNewPrivs: '0', veth: 'denied', chown: 'denied' });
    assert.deepEqual(out('2'), { CapBnd: '0000000000001000', CapEff: '0000000000001000', NoNewPrivs: '0', veth: 'ok', chown: 'denied' });
    assert.deepEqual(out('3'), { CapBnd: all, CapEff: all, NoNewPrivs: '0', veth: 'ok', chown: 'ok' });
    assert.deepEqual(out('4'), { CapBnd: '00000000a80425fa', CapEff: '00000000a80425fa', NoNewPrivs: '1', veth: 'denied', chown: 'denied' });
    // A non-root user holds no capability (Docker's behaviour); NET_ADMIN stays in its bounding set.
    assert.deepEqual(out('5'), { CapBnd: '00000000a80435fb', CapEff: '0000000000000000', NoNewPrivs: '0', veth: 'denied', chown: 'denied' });
    await client.delete(R.pods, 'caps', NS);

    await client.create(R.pods, podBase('badcap', { containers: [{ name: 'app', image: 'x', command: ['sleep', '100'], securityContext: { capabilities: { add: ['NET_ADMIN', 'FLY'] } } }] }));
    const bad = await waitFor('badcap config error', async () => (await getPod('badcap')).status?.containerStatuses?.[0]?.state?.waiting?.message?.includes('FLY') && getPod('badcap'));
    const waiting = (await bad).status?.containerStatuses?.[0]?.state?.waiting;
    assert.equal(waiting?.reason, 'CreateContainerConfigError');
    assert.match(waiting?.message ?? '', /spec\.containers\[0\]\.securityContext\.capabilities\.add\[1\]: unknown capability "FLY"|container app\.securityContext\.capabilities\.add\[1\]: unknown capability "FLY"/);
    await deletePod('badcap');
    await waitFor('caps gone', async () => !(await client.find<Pod>(R.pods, 'caps', NS)));
  });

  it('a failing readiness probe takes the pod out of its Service endpoints (with the endpoints controller)', async () => {
    const informers = new SharedInformers(client);
    const controller = new EndpointsController(client, informers);
    informers.start();
    try {
      await informers.waitForSync();
      const flag = path.join(tmp, 'ready-flag');
      fs.writeFileSync(flag, '');
      await client.create(R.services, { metadata: { name: 'flaky', namespace: NS }, spec: { selector: { app: 'flaky' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } } as Service);
      await client.create(R.pods, podBase('flaky', {
        containers: [{ name: 'main', image: 'x', command: ['sleep', '1000'], readinessProbe: { exec: { command: ['test', '-f', flag] }, periodSeconds: 1 } }],
      }));
      const ip = (await waitFor('flaky ready', async () => { const p = await getPod('flaky'); return p.status?.containerStatuses?.[0].ready && p; })).status?.podIP;
      const addresses = async (field: 'addresses' | 'notReadyAddresses'): Promise<string[]> => {
        const ep = await client.find<Endpoints>(R.endpoints, 'flaky', NS);
        return (ep?.subsets ?? []).flatMap((s) => (s[field] ?? []).map((a) => a.ip));
      };
      await waitFor('pod in endpoints', async () => (await addresses('addresses')).includes(ip ?? ''));
      fs.rmSync(flag); // readiness fails from now on (failureThreshold 3, period 1 s)
      await waitFor('pod out of endpoints', async () => !(await addresses('addresses')).includes(ip ?? '') && (await addresses('notReadyAddresses')).includes(ip ?? ''), 15_000);
      assert.equal((await getPod('flaky')).status?.containerStatuses?.[0].restartCount, 0, 'readiness does not restart');
      fs.writeFileSync(flag, '');
      await waitFor('pod back in endpoints', async () => (await addresses('addresses')).includes(ip ?? ''), 15_000);
      await deletePod('flaky');
      await client.delete(R.services, 'flaky', NS);
    } finally {
      informers.stop();
      controller.stop();
    }
  });

  it('stop() leaves nothing behind; a restarted kubelet recreates the pod with its IP and clears leftovers', async () => {
    await client.create(R.pods, podBase('survivor', { containers: [{ name: 'main', image: 'x', command: ['sleep', '1000'] }] }));
    const before = await waitFor('survivor running', async () => { const p = await getPod('survivor'); return p.status?.phase === 'Running' && p; });
    const pids = kubelet?.kubelet.podPids(`${NS}/survivor`) ?? [];
    assert.equal(pids.length, 1);
    const slice = kubelet?.kubelet.cgroups.backend?.slice;
    await stopTheKubelet();
    assert.deepEqual(await listSandboxObjects(PREFIX), []);
    assert.equal(pidAlive(pids[0]), false);
    if (slice) assert.equal(fs.existsSync(slice), false, `cgroup slice ${slice} removed`);
    assert.ok(await client.find<Pod>(R.pods, 'survivor', NS), 'stop() does not delete pods');

    // A crashed run's leftover: a namespace named like ours, with a process inside.
    const stale = sandboxNames(PREFIX, 'stale-uid').netns;
    execFileSync('ip', ['netns', 'add', stale]);
    const orphan = spawn('ip', ['netns', 'exec', stale, 'sleep', '1000'], { stdio: 'ignore' });
    const orphanExit = new Promise((r) => orphan.once('exit', r));
    await waitFor('orphan inside the stale netns', async () => orphan.pid !== undefined && pidAlive(orphan.pid)
      && fs.readlinkSync(`/proc/${orphan.pid}/ns/net`) !== fs.readlinkSync('/proc/self/ns/net'));
    await startTheKubelet();
    assert.ok(!(await listSandboxObjects(PREFIX)).includes(stale), 'leftover netns removed on start');
    await orphanExit; // killed by the kubelet's leftover cleanup
    const again = await waitFor('survivor running again', async () => {
      const pids2 = kubelet?.kubelet.podPids(`${NS}/survivor`) ?? [];
      return pids2.length === 1 && pids2[0] !== pids[0] && pids2;
    });
    assert.ok(pidAlive(again[0]));
    const p = await getPod('survivor');
    assert.equal(p.status?.podIP, before.status?.podIP, 'the pod keeps its IP');
    assert.ok((await listSandboxObjects(PREFIX)).includes(sandboxNames(PREFIX, p.metadata.uid ?? '').netns));
    await stopTheKubelet();
    assert.deepEqual(await listSandboxObjects(PREFIX), []);
  });
});
