// Installs the mesh into a running cluster the way it would be installed into any
// Kubernetes: by applying install/, then waiting until pilot and the injector are ready.
import path from 'node:path';
import { Applier, KubeClient, R, readManifests, type KubeObject, type Service } from '../api/kube/index.js';
import { waitFor, waitForDeployments } from './wait.js';

export const MESH_NAMESPACE = 'trellis-system';
export const INJECTOR_WEBHOOK_CONFIG = 'trellis-sidecar-injector';
export const VALIDATION_WEBHOOK_CONFIG = 'istio-validator-trellis-system';
export const INGRESS_GATEWAY = 'istio-ingressgateway';

interface WebhookConfig extends KubeObject { webhooks?: { name: string; clientConfig?: { caBundle?: string } }[] }

export async function installMesh(client: KubeClient, home: string, log: (l: string) => void, timeoutMs = 120_000): Promise<void> {
  const applier = new Applier(client);
  await applier.applyAll(readManifests(path.join(home, 'install')), log);
  await waitForDeployments(client, MESH_NAMESPACE, timeoutMs);
  // The injector and pilot publish their serving CAs into their webhook configurations;
  // before that, pods to inject and Istio config would be rejected (both fail closed).
  const published = (r: typeof R.mutatingWebhookConfigurations, name: string) => async (): Promise<boolean> => {
    const config = await client.get<WebhookConfig>(r, name);
    return (config.webhooks ?? []).every((w) => !!w.clientConfig?.caBundle);
  };
  await waitFor('the injector to publish its caBundle', timeoutMs, published(R.mutatingWebhookConfigurations, INJECTOR_WEBHOOK_CONFIG));
  await waitFor('pilot to publish its validation caBundle', timeoutMs, published(R.validatingWebhookConfigurations, VALIDATION_WEBHOOK_CONFIG));
  await ingressGatewayUrl(client, timeoutMs);
}

/**
 * The ingress gateway's URL from the host: its LoadBalancer address (published in
 * status.loadBalancer.ingress) and the node port of its port 80, where the embedded
 * cluster serves LoadBalancer services. Waits until both are assigned.
 */
export async function ingressGatewayUrl(client: KubeClient, timeoutMs = 60_000): Promise<string> {
  return waitFor(`the LoadBalancer address of ${MESH_NAMESPACE}/${INGRESS_GATEWAY}`, timeoutMs, async () => {
    const svc = await client.get<Service>(R.services, INGRESS_GATEWAY, MESH_NAMESPACE);
    const ip = (svc.status?.loadBalancer as { ingress?: { ip?: string }[] } | undefined)?.ingress?.[0]?.ip;
    const nodePort = svc.spec.ports?.find((p) => p.port === 80)?.nodePort;
    return ip && nodePort ? `http://${ip}:${nodePort}/` : undefined;
  });
}

export async function deploySample(client: KubeClient, home: string, log: (l: string) => void, timeoutMs = 120_000): Promise<void> {
  const dir = path.join(home, 'samples', 'split');
  const applier = new Applier(client);
  for (const file of ['namespace.yaml', 'web.yaml', 'client.yaml', 'destinationrule.yaml', 'virtualservice-80-20.yaml', 'gateway.yaml']) {
    await applier.applyAll(readManifests(path.join(dir, file)), log);
  }
  await waitForDeployments(client, 'demo', timeoutMs);
}
