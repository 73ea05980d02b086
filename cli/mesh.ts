// Installs the mesh into a running cluster the way it would be installed into any
// Kubernetes: by applying install/, then waiting until pilot and the injector are ready.
import path from 'node:path';
import { Applier, KubeClient, R, readManifests, type KubeObject } from '../api/kube/index.js';
import { waitFor, waitForDeployments } from './wait.js';

export const MESH_NAMESPACE = 'trellis-system';
export const WEBHOOK_CONFIG = 'trellis-sidecar-injector';

interface WebhookConfig extends KubeObject { webhooks?: { name: string; clientConfig?: { caBundle?: string } }[] }

export async function installMesh(client: KubeClient, home: string, log: (l: string) => void, timeoutMs = 120_000): Promise<void> {
  const applier = new Applier(client);
  await applier.applyAll(readManifests(path.join(home, 'install')), log);
  await waitForDeployments(client, MESH_NAMESPACE, timeoutMs);
  // The injector publishes its CA into the webhook configuration before it reports ready;
  // a pod created before that would be rejected (failurePolicy Fail), so wait for it.
  await waitFor('the injector to publish its caBundle', timeoutMs, async () => {
    const mwc = await client.get<WebhookConfig>(R.mutatingWebhookConfigurations, WEBHOOK_CONFIG);
    return (mwc.webhooks ?? []).every((w) => !!w.clientConfig?.caBundle);
  });
}

export async function deploySample(client: KubeClient, home: string, log: (l: string) => void, timeoutMs = 120_000): Promise<void> {
  const dir = path.join(home, 'samples', 'split');
  const applier = new Applier(client);
  for (const file of ['namespace.yaml', 'web.yaml', 'client.yaml', 'destinationrule.yaml', 'virtualservice-80-20.yaml']) {
    await applier.applyAll(readManifests(path.join(dir, file)), log);
  }
  await waitForDeployments(client, 'demo', timeoutMs);
}
