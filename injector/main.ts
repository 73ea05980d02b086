// trellis/injector: the sidecar-injecting mutating admission webhook.
// Start-up: make a CA and a serving certificate, serve /inject over HTTPS, then put the CA
// into the MutatingWebhookConfiguration's caBundle through the Kubernetes API. /ready turns
// 200 only once that is done, so the apiserver never calls a webhook it cannot verify.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type http from 'node:http';
import { KubeClient } from '../api/kube/index.js';
import { CaBundleReconciler } from '../api/kube/ca-bundle.js';
import { generateServingCertificate, serviceDnsNames } from '../api/tls/serving-cert.js';
import { templateValuesFromEnv, type TemplateValues } from './template.js';
import { Registry } from 'prom-client';
import { TemplateSource } from './template-source.js';
import { defaultSidecarTemplate } from './sidecar-template.js';
import type { ParsedTemplate } from './templater.js';
import { MissingSidecarReporter } from './missing-sidecar.js';
import { createReadyServer, createWebhookServer, listen } from './webhook-server.js';

export interface InjectorOptions {
  /** Listen address of the webhook (default 0.0.0.0) and port (default 15017; 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Plain-HTTP /ready port (default 15021; 0 = ephemeral; null = none). */
  readyPort?: number | null;
  /** Kubernetes API access; undefined = KubeClient.fromKubeconfig(), null = no API (ready at once). */
  client?: KubeClient | null;
  webhookConfigName?: string;
  serviceName?: string;
  namespace?: string;
  /** Extra SANs for the serving certificate (tests use 127.0.0.1). */
  extraDnsNames?: string[];
  ipAddresses?: string[];
  /** Report pods that should carry a sidecar but do not (default true with an API client). */
  reportMissingSidecars?: boolean;
  /** Watch the injection template ConfigMap (default true; false = the values below only). */
  watchTemplate?: boolean;
  /** Template values underneath the ConfigMap istio-sidecar-injector (default: from the environment). */
  values?: TemplateValues;
  resyncMs?: number;
  log?: (msg: string) => void;
}

export interface RunningInjector {
  port: number;
  readyPort: number | undefined;
  /** The CA that signed the serving certificate (what goes into caBundle). */
  caCertPem: string;
  /** The injection template and values in use (follow the ConfigMap). */
  template: { current: TemplateValues; template: ParsedTemplate; lastError: string | undefined };
  /** The missing-sidecar reporter, when running. */
  missingSidecars: MissingSidecarReporter | undefined;
  /** Prometheus registry served at /metrics on the ready port. */
  registry: Registry;
  isReady(): boolean;
  waitReady(): Promise<void>;
  close(): Promise<void>;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startInjector(opts: InjectorOptions = {}): Promise<RunningInjector> {
  const log = opts.log ?? ((msg: string) => console.log(`${new Date().toISOString()} injector: ${msg}`));
  const serviceName = opts.serviceName ?? process.env.INJECTOR_SERVICE_NAME ?? 'trellis-injector';
  const namespace = opts.namespace ?? process.env.POD_NAMESPACE ?? 'trellis-system';
  const configName = opts.webhookConfigName ?? process.env.WEBHOOK_CONFIG_NAME ?? 'trellis-sidecar-injector';
  const base = opts.values ?? templateValuesFromEnv();

  // Resolve API access first: without it the webhook could never become ready.
  const client = opts.client === undefined ? KubeClient.fromKubeconfig(undefined, 'trellis-injector') : opts.client;
  const dnsNames = [...serviceDnsNames(serviceName, namespace), ...(opts.extraDnsNames ?? [])];
  const serving = generateServingCertificate({ dnsNames, ipAddresses: opts.ipAddresses, caName: 'trellis-injector-ca' });
  log(`serving certificate for ${dnsNames.join(', ')} issued by a fresh in-memory CA`);

  const reconciler = client
    ? new CaBundleReconciler({ client, configName, caCertPem: serving.caCertPem, log, resyncMs: opts.resyncMs })
    : undefined;
  const isReady = (): boolean => reconciler?.ready ?? true;
  const template = client && opts.watchTemplate !== false ? new TemplateSource({ client, namespace, base, log }) : { current: base, template: defaultSidecarTemplate(), lastError: undefined, start: async () => undefined, stop: () => undefined };
  // Read the template before answering any review; an unreadable one leaves the defaults in use.
  await template.start().catch((e: Error) => log(`injection template: ${e.message}; using the built-in values until it can be read`));
  const values = (): TemplateValues => template.current;
  const registry = new Registry();
  const missingSidecars = client && opts.reportMissingSidecars !== false
    ? new MissingSidecarReporter({ client, ignoredNamespaces: () => template.current.ignoredNamespaces, registry, log })
    : undefined;
  const extraRoutes: Record<string, http.RequestListener> = {
    '/metrics': (_req, res) => {
      registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text), () => res.writeHead(500).end());
    },
  };

  const webhook = createWebhookServer({ host: opts.host ?? '0.0.0.0', port: opts.port ?? 15017, certPem: serving.certPem, keyPem: serving.keyPem, values, template: () => template.template, isReady, log });
  const port = await listen(webhook, opts.host ?? '0.0.0.0', opts.port ?? 15017);
  let readyServer: http.Server | undefined;
  let readyPort: number | undefined;
  const wantReadyPort = opts.readyPort === undefined ? 15021 : opts.readyPort;
  if (wantReadyPort !== null) {
    readyServer = createReadyServer({ values, isReady, log, extraRoutes });
    readyPort = await listen(readyServer, opts.host ?? '0.0.0.0', wantReadyPort);
  }
  log(`serving /inject on https://${opts.host ?? '0.0.0.0'}:${port}${readyPort !== undefined ? `, /ready on http port ${readyPort}` : ''} (proxy image ${values().proxyImage})`);
  reconciler?.start();
  // In the background: the webhook must not wait for a full pod list to answer reviews.
  missingSidecars?.start().catch((e: Error) => log(`missing-sidecar report: ${e.message}`));

  return {
    port,
    readyPort,
    caCertPem: serving.caCertPem,
    template,
    missingSidecars,
    registry,
    isReady,
    waitReady: () => reconciler?.waitReady() ?? Promise.resolve(),
    async close() {
      reconciler?.stop();
      template.stop();
      missingSidecars?.stop();
      await Promise.all([closeServer(webhook), readyServer ? closeServer(readyServer) : Promise.resolve()]);
      // Only close a client we made ourselves.
      if (opts.client === undefined && client) await client.close();
    },
  };
}

function envPort(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}: "${v}" is not a port`);
  return n;
}

async function main(): Promise<void> {
  const injector = await startInjector({
    host: process.env.INJECTOR_HOST ?? '0.0.0.0',
    port: envPort('INJECTOR_PORT', 15017),
    readyPort: envPort('INJECTOR_READY_PORT', 15021),
  });
  const shutdown = (signal: string): void => {
    console.log(`${new Date().toISOString()} injector: ${signal}, shutting down`);
    injector.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(`injector: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
