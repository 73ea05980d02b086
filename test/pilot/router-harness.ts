// Real parts for gateway tests: the project's API server with the Istio networking CRDs,
// pilot reading it, and a proxy in router mode whose listeners bind their ports on loopback.
// Apps stand for pods on loopback addresses; their Pod objects carry those addresses.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { KubeClient, R, type Pod, type Service } from '../../api/kube/index.js';
import { startApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';
import { Pilot } from '../../pilot/pilot.js';
import { Sidecar } from '../../proxy/sidecar.js';
import { freePort } from '../proxy/fixtures.js';
import { networkingCrd } from './crds.js';

export const GATEWAY_POD = 'istio-ingressgateway-xyz';
export const GATEWAY_NS = 'trellis-system';


export interface MeshApi { client: KubeClient; close(): Promise<void> }

/** An API server serving the networking CRDs, with namespaces default and trellis-system. */
export async function startMeshApi(): Promise<MeshApi> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-router-'));
  const api = await startApiServer({ dataDir, store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }] });
  const client = KubeClient.fromKubeconfig(api.kubeconfigPath);
  const close = async () => {
    await client.close();
    await api.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (const [plural, kind] of [['virtualservices', 'VirtualService'], ['destinationrules', 'DestinationRule'], ['gateways', 'Gateway']]) {
      await client.create(R.customResourceDefinitions, networkingCrd(plural, kind));
    }
    for (const ns of ['default', GATEWAY_NS]) if (!(await client.find(R.namespaces, ns))) await client.create(R.namespaces, { metadata: { name: ns } });
  } catch (e) {
    await close();
    throw e;
  }
  return { client, close };
}

/** A Running pod with the given IP (the kubelet's part). */
export async function createPod(client: KubeClient, name: string, namespace: string, ip: string, labels: Record<string, string>, port: number, portName = 'http'): Promise<void> {
  const created = await client.create<Pod>(R.pods, {
    metadata: { name, namespace, labels },
    spec: { containers: [{ name: 'app', image: 'trellis/sample-http:0.1.0', ports: [{ name: portName, containerPort: port }] }] },
  });
  await client.updateStatus<Pod>(R.pods, { ...created, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } });
}

export interface Router { pilot: Pilot; proxy: Sidecar; port: number; stop(): Promise<void> }

/**
 * The ingress gateway: its pod and Service (port 80 -> a free loopback port the router binds),
 * pilot, and the router proxy connected to it.
 */
export async function startRouter(client: KubeClient): Promise<Router> {
  const port = await freePort();
  await createPod(client, GATEWAY_POD, GATEWAY_NS, '127.0.0.1', { istio: 'ingressgateway' }, port);
  await client.create<Service>(R.services, { metadata: { name: 'istio-ingressgateway', namespace: GATEWAY_NS }, spec: { type: 'ClusterIP', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: port, protocol: 'TCP' }] } });
  const pilot = new Pilot(client, { host: '127.0.0.1', xdsPort: 0, debugPort: 0, syncTimeoutMs: 15_000, quietMs: 20, maxMs: 200 });
  const { xdsPort } = await pilot.start();
  const proxy = new Sidecar({
    pilotAddress: `127.0.0.1:${xdsPort}`, nodeType: 'router', log: () => {}, accessLog: () => {},
    identity: { podName: GATEWAY_POD, namespace: GATEWAY_NS, instanceIp: '127.0.0.1', serviceAccount: 'default', workloadName: 'istio-ingressgateway', labels: { istio: 'ingressgateway' }, domain: 'cluster.local' },
    ports: { admin: 0, prometheus: 0, readiness: 0 },
  });
  try {
    await proxy.start();
  } catch (e) {
    await pilot.stop();
    throw e;
  }
  return { pilot, proxy, port, async stop() { await proxy.stop(); await pilot.stop(); } };
}

/** GET / with a Host header, on a fresh connection. */
export function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
