// startApiServer: PKI, authentication, the type registry, the store and the HTTPS listeners.
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Store } from '../store/types.js';
import { FileStore } from '../store/file.js';
import { isStoreError } from '../store/types.js';
import { ensurePki, issueClientCert } from './pki.js';
import { DEFAULT_EVENT_TTL_SECONDS, EventExpiry } from './event-ttl.js';
import { TokenSigner } from './tokens.js';
import { Authenticator } from './authn.js';
import { allowAuthenticated, type AuthorizationMode, type Authorizer } from './authz.js';
import { RbacAuthorizer } from './rbac/authorizer.js';
import { bootstrapRbac } from './rbac/bootstrap-policy.js';
import { ClusterRoleAggregator } from './rbac/aggregation.js';
import { confirmNoEscalation } from './rbac/escalation.js';
import { authorizationKinds } from './strategies/authorization.js';
import { storeKey } from './registry/types.js';
import { writeKubeconfig } from './kubeconfig.js';
import { Registry } from './registry/registry.js';
import type { KindInfo } from './registry/types.js';
import { storePrefix } from './registry/types.js';
import { ServiceIPAllocator } from './ipalloc.js';
import { WebhookAdmission } from './admission/webhooks.js';
import { createRouter } from './router.js';
import { bootstrap, SYSTEM_NAMESPACES } from './bootstrap.js';
import type { ApiContext, PodLogHandler } from './context.js';
import { podsKind } from './strategies/pods.js';
import { servicesKind } from './strategies/services.js';
import { coreKinds, namespacesKind } from './strategies/core.js';
import { appsKinds } from './strategies/apps.js';
import { workloadKinds } from './strategies/workloads.js';
import { miscKinds } from './strategies/misc.js';
import { crdKind, kindFromCrd } from './strategies/crd.js';
import { getPath, nowRfc3339, type Json } from './util.js';

export interface ListenAddress { host: string; port: number }

export interface ApiServerOptions {
  dataDir: string;
  /** Default: a FileStore in <dataDir>/store (closed by close()). */
  store?: Store;
  /** Default: 127.0.0.1:6443. Port 0 on the first address picks a free port, shared by the others. */
  listen?: ListenAddress[];
  serviceCIDR?: string;
  clusterName?: string;
  /** RBAC (default): Roles/ClusterRoles and their bindings decide; AlwaysAllow: every authenticated user may do anything. */
  authorization?: AuthorizationMode;
  /** A custom authorizer; overrides `authorization`. */
  authorize?: Authorizer;
  /** Events not written for this long are removed (kube-apiserver --event-ttl; default 3600). */
  eventTTLSeconds?: number;
  /** Serves pods/{name}/log (the kubelet's logs); 503 without it. */
  podLogs?: PodLogHandler;
  /**
   * kube-apiserver's --runtime-config for built-in APIs: `{ 'discovery.k8s.io/v1': false }`
   * stops serving that group version (as on a cluster without it); absent keys stay on.
   */
  runtimeConfig?: Record<string, boolean>;
}

/** A built-in kind without the group versions runtimeConfig turns off; undefined when none is left. */
function servedVersions(k: KindInfo, runtimeConfig: Record<string, boolean> | undefined): KindInfo | undefined {
  if (!runtimeConfig) return k;
  const versions = k.versions.filter((v) => runtimeConfig[k.group ? `${k.group}/${v}` : v] !== false);
  if (!versions.length) return undefined;
  return versions.length === k.versions.length ? k : { ...k, versions, storageVersion: versions.includes(k.storageVersion) ? k.storageVersion : versions[0] };
}

export interface ApiServer {
  url: string;
  port: number;
  caCertPem: string;
  adminToken: string;
  kubeconfigPath: string;
  store: Store;
  /** Issues a client certificate (CN = user, O = groups) signed by the API server's client CA. */
  issueClientCertificate(user: string, groups?: string[]): { certPem: string; keyPem: string };
  /** The ServiceAccount token issuer and the public key that verifies its tokens. */
  serviceAccountIssuer: string;
  serviceAccountPublicKeyPem: string;
  /**
   * Signs the token a service-account-token Secret holds. It is the controller manager's
   * (which in Kubernetes holds the service-account signing key), not an API call.
   */
  issueLegacyServiceAccountToken(sa: { namespace: string; name: string; uid: string }, secretName: string): string;
  close(): Promise<void>;
}

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SERVICE_DNS = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'];

function readOrCreateToken(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const token = randomBytes(32).toString('hex');
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === 'localhost' || host === '::1';
}

/** The cluster CA for pods, in every namespace (Kubernetes' root-ca-cert-publisher). */
async function publishRootCA(store: Store, namespace: string, caCertPem: string): Promise<void> {
  const key = `/registry/configmaps/${namespace}/kube-root-ca.crt`;
  const obj: Json = {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: 'kube-root-ca.crt', namespace, uid: randomUUID(), creationTimestamp: nowRfc3339(), generation: 1, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } },
    data: { 'ca.crt': caCertPem },
  };
  try {
    await store.create(key, obj);
  } catch (e) {
    if (!isStoreError(e, 'AlreadyExists')) throw e;
  }
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const ownStore = !opts.store;
  const store = opts.store ?? new FileStore(path.join(dataDir, 'store'));
  const clusterName = opts.clusterName ?? 'trellis';
  const listen = opts.listen && opts.listen.length > 0 ? opts.listen : [{ host: '127.0.0.1', port: 6443 }];
  const ips = new ServiceIPAllocator(opts.serviceCIDR ?? '10.96.0.0/16');
  const kubernetesIP = ips.nth(1);

  const adminToken = readOrCreateToken(path.join(dataDir, 'admin-token'));
  const pki = ensurePki(dataDir, {
    ips: ['127.0.0.1', kubernetesIP, ...listen.map((l) => l.host).filter((h) => /^\d+\.\d+\.\d+\.\d+$/.test(h) && h !== '0.0.0.0')],
    dnsNames: SERVICE_DNS,
  }, clusterName);
  const signer = new TokenSigner(pki.saKeyPem, pki.saPublicKeyPem, ISSUER);
  const apiAudiences = [ISSUER];
  const authn = new Authenticator(adminToken, signer, store, apiAudiences);

  // The kinds table. Strategies holding per-server state are built here.
  const services = servicesKind(ips);
  const namespaces: KindInfo = {
    ...namespacesKind,
    strategy: { ...namespacesKind.strategy, afterCreate: (ns) => publishRootCA(store, String(getPath(ns, 'metadata.name')), pki.caCertPem) },
  };
  const mode = opts.authorization ?? 'RBAC';
  const rbac = new RbacAuthorizer(store);
  const authorize: Authorizer = opts.authorize ?? (mode === 'RBAC' ? (u, a) => rbac.authorize(u, a) : allowAuthenticated);
  const registry = new Registry([]);
  const reviews = authorizationKinds({ authorize, rulesFor: !opts.authorize && mode === 'RBAC' ? (u, ns) => rbac.rulesFor(u, ns) : undefined });
  for (const k of [namespaces, podsKind, services.kind, ...coreKinds.filter((k) => k.resource !== 'namespaces'), ...appsKinds, ...workloadKinds, ...miscKinds(authn).map((k) => rbacKind(k, rbac, authorize)), ...reviews]) {
    const served = servedVersions(k, opts.runtimeConfig);
    if (served) registry.add(served);
  }
  registry.add(crdKind(registry, store));

  // Rebuild in-memory state from the store: allocated IPs and served CRDs.
  ips.claim(kubernetesIP);
  services.rebuild((await store.list(storePrefix({ group: '', resource: 'services' }))).items);
  for (const crd of (await store.list(storePrefix({ group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' }))).items) {
    try { registry.add(kindFromCrd(crd)); } catch (e) { console.error(`apiserver: cannot serve CRD ${String(getPath(crd, 'metadata.name'))}: ${(e as Error).message}`); }
  }

  await bootstrapRbac(store);
  const aggregator = new ClusterRoleAggregator(store);
  await aggregator.start();
  await rbac.start();
  const eventExpiry = new EventExpiry(store, (opts.eventTTLSeconds ?? DEFAULT_EVENT_TTL_SECONDS) * 1000);
  await eventExpiry.start();

  const api: ApiContext = { store, registry, authn, authorize, signer, webhooks: new WebhookAdmission(store), podLogs: opts.podLogs };
  let ready = false;
  let port = 0;
  const advertise = listen.find((l) => !isLoopback(l.host) && l.host !== '0.0.0.0')?.host ?? listen[0].host;
  const handler = createRouter(api, { serverAddress: () => `${advertise}:${port}`, ready: () => ready, apiAudiences });

  const servers: https.Server[] = [];
  try {
    for (const l of listen) {
      // The cluster CA is also the client CA (as kubeadm sets --client-ca-file): a certificate
      // is asked for but optional, so bearer-token clients are unaffected.
      const server = https.createServer({ key: pki.servingKeyPem, cert: pki.servingCertPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: false }, handler);
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port === 0 && port !== 0 ? port : l.port, l.host, () => { server.off('error', reject); resolve(); });
      });
      servers.push(server);
      if (port === 0) port = (server.address() as AddressInfo).port;
    }
    await bootstrap(store, { kubernetesServiceIP: kubernetesIP, port, endpointIP: advertise });
    for (const ns of SYSTEM_NAMESPACES) await publishRootCA(store, ns, pki.caCertPem);
  } catch (e) {
    for (const s of servers) s.close();
    rbac.stop();
    aggregator.stop();
    eventExpiry.stop();
    if (ownStore) await store.close();
    throw e;
  }
  ready = true;

  const host = listen[0].host === '0.0.0.0' ? '127.0.0.1' : listen.find((l) => isLoopback(l.host))?.host ?? listen[0].host;
  const url = `https://${host}:${port}`;
  const kubeconfigPath = path.join(dataDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, { clusterName, server: `https://127.0.0.1:${port}`, caCertPem: pki.caCertPem, token: adminToken });

  let closed = false;
  return {
    url, port, caCertPem: pki.caCertPem, adminToken, kubeconfigPath, store,
    serviceAccountIssuer: ISSUER, serviceAccountPublicKeyPem: pki.saPublicKeyPem,
    issueClientCertificate: (user, groups) => issueClientCert(pki.caCertPem, pki.caKeyPem, user, groups),
    issueLegacyServiceAccountToken: (sa, secretName) => signer.issueLegacy({ ...sa, secretName }),
    async close() {
      if (closed) return;
      closed = true;
      ready = false;
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); })));
      rbac.stop();
      aggregator.stop();
      eventExpiry.stop();
      if (ownStore) await store.close();
    },
  };
}

/**
 * RBAC kinds: writes are checked against privilege escalation, and reach the authorizer at
 * once (its store watch may lag behind).
 */
function rbacKind(k: KindInfo, rbac: RbacAuthorizer, authorize: Authorizer): KindInfo {
  if (k.group !== 'rbac.authorization.k8s.io') return k;
  const at = (o: Json): [string, number] => [storeKey(k, String(getPath(o, 'metadata.namespace') ?? '') || undefined, String(getPath(o, 'metadata.name'))), Number(getPath(o, 'metadata.resourceVersion') ?? 0)];
  const s = k.strategy;
  return {
    ...k,
    strategy: {
      ...s,
      async admit(o, ctx, op) {
        await s.admit?.(o, ctx, op);
        await confirmNoEscalation(authorize, ctx.user, k.resource, o, (kind, ns, name) => rbac.roleRules(kind, ns, name));
      },
      async afterCreate(o) { await s.afterCreate?.(o); const [key, rv] = at(o); rbac.apply(key, o, rv); },
      async afterUpdate(o, old) { await s.afterUpdate?.(o, old); const [key, rv] = at(o); rbac.apply(key, o, rv); },
      async afterDelete(o) { await s.afterDelete?.(o); const [key, rv] = at(o); rbac.apply(key, undefined, rv); },
    },
  };
}
