// Test harness: a real apiserver (HTTPS, MemoryStore) on loopback and a KubeClient for it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeClient, R, type Pod } from '../../api/kube/index.js';
import { startApiServer, type ApiServer } from '../../cluster/apiserver/index.js';
import { MemoryStore } from '../../cluster/store/index.js';

export interface Cluster { api: ApiServer; client: KubeClient; close(): Promise<void> }

export async function startCluster(): Promise<Cluster> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-ctrl-test-'));
  const api = await startApiServer({ store: new MemoryStore(), listen: [{ host: '127.0.0.1', port: 0 }], dataDir });
  const client = new KubeClient({ server: api.url, caPem: api.caCertPem, token: api.adminToken }, 'controllers-test');
  return {
    api, client,
    async close() {
      await client.close();
      await api.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls fn until it returns a truthy value; fails with what was last seen after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let nextIP = 2;

/** Plays the kubelet: the pod is Running, Ready and has an IP (no traffic is ever sent to it). */
export async function markReady(client: KubeClient, pod: Pod, ready = true): Promise<Pod> {
  const live = await client.get<Pod>(R.pods, pod.metadata.name as string, pod.metadata.namespace);
  const now = new Date().toISOString();
  const ip = live.status?.podIP ?? `10.244.0.${nextIP++}`;
  return client.updateStatus(R.pods, {
    ...live,
    status: {
      ...(live.status ?? {}),
      phase: 'Running', podIP: ip, podIPs: [{ ip }], startTime: now,
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now },
        { type: 'ContainersReady', status: ready ? 'True' : 'False', lastTransitionTime: now },
      ],
    },
  });
}

export function isReady(p: Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
