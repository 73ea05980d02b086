// Polling waits used by `trellis up` and the tests: each names what it waited for when
// it gives up, so a stuck start says where it is stuck.
import { KubeClient, R, type Deployment, type KubeObject } from '../api/kube/index.js';

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, intervalMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) { lastError = e; }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Every Deployment in the namespace has all its replicas updated and available. */
export async function waitForDeployments(client: KubeClient, namespace: string, timeoutMs: number): Promise<void> {
  await waitFor(`deployments in ${namespace} to be available`, timeoutMs, async () => {
    const list = await client.list<Deployment>(R.deployments, { namespace });
    if (!list.items.length) return false;
    const pending = list.items.filter((d) => {
      const want = d.spec.replicas ?? 1;
      const s = d.status ?? {};
      return (s.observedGeneration ?? 0) < (d.metadata.generation ?? 0) || (s.updatedReplicas ?? 0) < want || (s.availableReplicas ?? 0) < want;
    });
    return pending.length === 0;
  });
}

export async function waitForObject<T extends KubeObject>(client: KubeClient, what: string, timeoutMs: number, get: () => Promise<T | undefined>, ok: (o: T) => boolean): Promise<T> {
  return waitFor(what, timeoutMs, async () => {
    const o = await get();
    return o && ok(o) ? o : undefined;
  });
}
