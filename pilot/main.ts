// The `trellis/pilot:0.1.0` image entry: pilot in a pod (in-cluster service account) or
// outside (KUBECONFIG / --kubeconfig). Flags override env: --xds-port (PILOT_XDS_PORT,
// 15010), --debug-port (PILOT_DEBUG_PORT, 15014), --host (PILOT_HOST, 0.0.0.0),
// --domain (CLUSTER_DOMAIN, cluster.local), --webhook-port (PILOT_WEBHOOK_PORT, 15017; `off`),
// --webhook-config (VALIDATION_WEBHOOK_CONFIG_NAME, istio-validator-trellis-system: the
// ValidatingWebhookConfiguration whose caBundle pilot keeps equal to its serving CA).
// --ca-port (PILOT_CA_PORT, 15012; `off`): the CA and xDS over TLS for token-authenticated
// proxies (the only way to gateway credentials), TRUST_DOMAIN (cluster.local).
// --root-namespace (MESH_ROOT_NAMESPACE, default pilot's own namespace POD_NAMESPACE): Istio's
// MeshConfig.rootNamespace, where mesh-wide PeerAuthentications/AuthorizationPolicies live.
// PILOT_ENABLE_MTLS (default true; 'false' turns it off) emits the mTLS and authorization
// config: automatic mTLS between sidecars, PeerAuthentication and AuthorizationPolicy.
// SIGTERM/SIGINT stop it gracefully.
import { CaBundleReconciler, KubeClient, R } from '../api/kube/index.js';
import { startMeshCA, type MeshCA } from './ca/index.js';
import { Pilot } from './pilot.js';
import { DEFAULT_ROOT_NAMESPACE } from './security/index.js';
import { ValidationWebhook } from './validation/webhook.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = args[i];
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
}

function portOf(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${what}: '${value}' is not a port number`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const client = KubeClient.fromKubeconfig(flag(args, 'kubeconfig'), 'trellis-pilot');
  // Pilot runs in trellis-system (install/03-pilot.yaml); the fallback matches it so a pilot
  // started by hand sees the same mesh root namespace as the installed one.
  const ns = process.env.POD_NAMESPACE ?? DEFAULT_ROOT_NAMESPACE;
  const pilot = new Pilot(client, {
    host: flag(args, 'host') ?? process.env.PILOT_HOST ?? '0.0.0.0',
    xdsPort: portOf(flag(args, 'xds-port') ?? process.env.PILOT_XDS_PORT, 15010, '--xds-port'),
    debugPort: portOf(flag(args, 'debug-port') ?? process.env.PILOT_DEBUG_PORT, 15014, '--debug-port'),
    domain: flag(args, 'domain') ?? process.env.CLUSTER_DOMAIN ?? 'cluster.local',
    security: {
      rootNamespace: flag(args, 'root-namespace') ?? process.env.MESH_ROOT_NAMESPACE ?? ns,
      enabled: process.env.PILOT_ENABLE_MTLS !== 'false',
      trustDomain: process.env.TRUST_DOMAIN ?? 'cluster.local',
    },
    // MeshConfig.accessLogFile / accessLogEncoding, from the environment like the root namespace.
    mesh: { accessLogFile: process.env.MESH_ACCESS_LOG_FILE ?? '', accessLogEncoding: process.env.MESH_ACCESS_LOG_ENCODING === 'JSON' ? 'JSON' : 'TEXT' },
  });
  let stopping = false;
  let meshCA: MeshCA | undefined;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`pilot: ${sig}: stopping`);
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    Promise.all([pilot.stop(), meshCA?.stop()]).then(() => { void client.close(); process.exit(0); }, (e: unknown) => { console.error(`pilot: stop: ${(e as Error).message}`); process.exit(1); });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  console.log(`pilot: starting in namespace ${ns} against ${client.access.server}`);
  // The CA comes first: it publishes the istio-ca-root-cert ConfigMaps that sidecars mount,
  // and pilot reports ready only after it.
  const caFlag = flag(args, 'ca-port') ?? process.env.PILOT_CA_PORT;
  if (caFlag !== 'off') {
    meshCA = await startMeshCA(client, {
      namespace: ns, host: flag(args, 'host') ?? process.env.PILOT_HOST ?? '0.0.0.0', port: portOf(caFlag, 15012, '--ca-port'),
      trustDomain: process.env.TRUST_DOMAIN ?? 'cluster.local', registry: pilot.metrics.registry,
      // Sidecars and gateways use xDS here, over TLS with their ServiceAccount token, as on istiod.
      alsoServe: (server, reviewer) => pilot.xds.serveAuthenticated(server, reviewer),
    });
    console.log(`pilot: CA and token-authenticated xDS on :${meshCA.port} (TLS), trust domain ${process.env.TRUST_DOMAIN ?? 'cluster.local'}`);
  }
  const { xdsPort, debugPort } = await pilot.start();
  console.log(`pilot: ready: xDS on :${xdsPort} (plaintext), debug on :${debugPort}`);
  // The validation webhook (/validate, HTTPS); --webhook-port 0 or PILOT_WEBHOOK_PORT=off disables it.
  const hookFlag = flag(args, 'webhook-port') ?? process.env.PILOT_WEBHOOK_PORT;
  if (hookFlag !== 'off' && hookFlag !== '0') {
    const hook = new ValidationWebhook({ host: flag(args, 'host') ?? process.env.PILOT_HOST ?? '0.0.0.0', port: portOf(hookFlag, 15017, '--webhook-port') });
    const hookPort = await hook.start();
    console.log(`pilot: validation webhook on :${hookPort} (/validate, HTTPS)`);
    const configName = flag(args, 'webhook-config') ?? process.env.VALIDATION_WEBHOOK_CONFIG_NAME ?? 'istio-validator-trellis-system';
    new CaBundleReconciler({
      client, resource: R.validatingWebhookConfigurations, configName, caCertPem: hook.certificate.caCertPem,
      log: (m) => console.log(`pilot: ${m}`),
    }).start();
  }
}

main().catch((e: unknown) => {
  console.error(`pilot: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
