import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Container, Pod } from '../../api/kube/index.js';
import { inject, injectionDecision, STATUS_ANNOTATION } from '../../injector/inject.js';
import { defaultTemplateValues, templateValuesFromEnv } from '../../injector/template.js';
import { InjectionError } from '../../injector/traffic-annotations.js';
import { parseInterceptionFlags } from '../../proxy/interception/iptables-rules.js';
import { applyPatch } from './jsonpatch-apply.js';

const values = defaultTemplateValues();
const ns = { name: 'demo', labels: { 'istio-injection': 'enabled' } };

const DEFAULT_ARGS = ['istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020,15000', '--run-validation'];

function deploymentPod(extra: Partial<Pod['metadata']> = {}, spec: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'web-v1-7d9f8c6b5-',
      namespace: 'demo',
      labels: { app: 'web', version: 'v1', 'pod-template-hash': '7d9f8c6b5' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-v1-7d9f8c6b5', uid: 'u1', controller: true }],
      ...extra,
    },
    spec: { containers: [{ name: 'web', image: 'trellis/sample-http:0.1.0', ports: [{ containerPort: 8080 }] }], serviceAccountName: 'default', ...spec },
  };
}

function envOf(c: Container): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env ?? []) out[e.name] = e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`;
  return out;
}

function injected(pod: Pod): Pod {
  return applyPatch(pod, inject(pod, ns, values));
}

describe('inject', () => {
  it('injects a fresh pod: init container, native sidecar, annotation and labels', () => {
    const pod = deploymentPod({ annotations: undefined });
    delete pod.metadata.annotations;
    const ops = inject(pod, ns, values);
    // Absent collections are added whole, not appended to.
    assert.deepEqual(ops.map((o) => `${o.op} ${o.path}`), ['add /spec/initContainers', 'add /spec/volumes', 'add /metadata/annotations',
      'add /metadata/labels/security.istio.io~1tlsMode', 'add /metadata/labels/service.istio.io~1canonical-name', 'add /metadata/labels/service.istio.io~1canonical-revision']);

    const out = applyPatch(pod, ops);
    const inits = out.spec.initContainers ?? [];
    assert.deepEqual(inits.map((c) => c.name), ['istio-init', 'istio-proxy']);
    const [init, proxy] = inits;
    assert.equal(init.image, 'trellis/proxyv2:0.1.0');
    assert.deepEqual(init.args, DEFAULT_ARGS);
    assert.equal(init.securityContext?.runAsUser, 0);
    assert.deepEqual(init.securityContext?.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    assert.equal(init.securityContext?.privileged, false);
    assert.equal(init.restartPolicy, undefined);

    assert.equal(proxy.restartPolicy, 'Always');
    // Identity: a CA-only token and the mesh root, mounted where the proxy's cert manager reads them.
    assert.deepEqual(proxy.volumeMounts?.map((m) => `${m.name}:${m.mountPath}`), ['istio-token:/var/run/secrets/tokens', 'istiod-ca-cert:/var/run/secrets/istio']);
    const vols = out.spec.volumes ?? [];
    assert.equal(vols.find((v) => v.name === 'istio-token')?.projected?.sources[0].serviceAccountToken?.audience, 'istio-ca');
    assert.equal(vols.find((v) => v.name === 'istiod-ca-cert')?.configMap?.name, 'istio-ca-root-cert');
    assert.equal(envOf(proxy).CA_ADDR, 'istiod.trellis-system.svc:15012');
    assert.equal(proxy.image, 'trellis/proxyv2:0.1.0');
    assert.deepEqual(proxy.args, ['proxy', 'sidecar']);
    assert.equal(proxy.securityContext?.runAsUser, 1337);
    assert.equal(proxy.securityContext?.runAsGroup, 1337);
    assert.deepEqual(proxy.ports, [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }]);
    assert.deepEqual(proxy.readinessProbe?.httpGet, { path: '/healthz/ready', port: 15021 });
    assert.equal(proxy.readinessProbe?.periodSeconds, 2);
    const env = envOf(proxy);
    assert.equal(env.POD_NAME, 'fieldRef:metadata.name');
    assert.equal(env.POD_NAMESPACE, 'fieldRef:metadata.namespace');
    assert.equal(env.INSTANCE_IP, 'fieldRef:status.podIP');
    assert.equal(env.SERVICE_ACCOUNT, 'fieldRef:spec.serviceAccountName');
    assert.equal(env.PILOT_ADDRESS, 'istiod.trellis-system.svc:15012');
    assert.equal(env.CLUSTER_ID, 'Kubernetes');
    assert.equal(env.ISTIO_META_WORKLOAD_NAME, 'web-v1');
    assert.deepEqual(JSON.parse(env.TRELLIS_POD_LABELS), out.metadata.labels);

    // App containers are untouched.
    assert.deepEqual(out.spec.containers, pod.spec.containers);
    const status = JSON.parse(out.metadata.annotations?.[STATUS_ANNOTATION] ?? 'null') as { initContainers: string[]; revision: string };
    assert.deepEqual(status.initContainers, ['istio-init', 'istio-proxy']);
    assert.equal(status.revision, 'default');
    assert.deepEqual(out.metadata.labels, {
      app: 'web', version: 'v1', 'pod-template-hash': '7d9f8c6b5',
      'security.istio.io/tlsMode': 'istio', 'service.istio.io/canonical-name': 'web', 'service.istio.io/canonical-revision': 'v1',
    });
  });

  it('adds whole labels map when the pod has no labels; canonical names fall back', () => {
    const pod: Pod = { metadata: { name: 'solo', namespace: 'demo' }, spec: { containers: [{ name: 'c', image: 'x' }] } };
    const ops = inject(pod, ns, values);
    assert.ok(ops.some((o) => o.op === 'add' && o.path === '/metadata/labels'));
    const out = applyPatch(pod, ops);
    assert.deepEqual(out.metadata.labels, { 'security.istio.io/tlsMode': 'istio', 'service.istio.io/canonical-name': 'solo', 'service.istio.io/canonical-revision': 'latest' });
    assert.equal(envOf(out.spec.initContainers?.[1] ?? { name: '' }).ISTIO_META_WORKLOAD_NAME, 'solo');
  });

  it('appends to existing initContainers and annotations with escaped keys', () => {
    const pod = deploymentPod({ annotations: { 'example.com/owner': 'team-a' } }, {
      initContainers: [{ name: 'migrate', image: 'migrate:1' }],
    });
    const ops = inject(pod, ns, values);
    assert.deepEqual(ops.filter((o) => o.path.startsWith('/spec')).map((o) => o.path), ['/spec/initContainers/-', '/spec/initContainers/-', '/spec/volumes']);
    assert.ok(ops.some((o) => o.path === '/metadata/annotations/sidecar.istio.io~1status'));
    const out = applyPatch(pod, ops);
    // The pod's own init containers run first, before traffic is captured.
    assert.deepEqual(out.spec.initContainers?.map((c) => c.name), ['migrate', 'istio-init', 'istio-proxy']);
    assert.equal(out.metadata.annotations?.['example.com/owner'], 'team-a');
    assert.ok(out.metadata.annotations?.[STATUS_ANNOTATION]);
  });

  it('is idempotent: an injected pod is left unchanged', () => {
    const once = injected(deploymentPod());
    assert.deepEqual(inject(once, ns, values), []);
    assert.deepEqual(injected(once), once);
  });

  it('keeps existing canonical labels', () => {
    const pod = deploymentPod({ labels: { app: 'web', 'service.istio.io/canonical-name': 'frontend', 'service.istio.io/canonical-revision': 'r7' } });
    const out = injected(pod);
    assert.equal(out.metadata.labels?.['service.istio.io/canonical-name'], 'frontend');
    assert.equal(out.metadata.labels?.['service.istio.io/canonical-revision'], 'r7');
  });

  it('skips opted-out, hostNetwork and ignored-namespace pods', () => {
    assert.deepEqual(inject(deploymentPod({ annotations: { 'sidecar.istio.io/inject': 'false' } }), ns, values), []);
    assert.deepEqual(inject(deploymentPod({ labels: { app: 'web', 'sidecar.istio.io/inject': 'false' } }), ns, values), []);
    assert.deepEqual(inject(deploymentPod({}, { hostNetwork: true }), ns, values), []);
    assert.deepEqual(inject(deploymentPod(), { name: 'kube-system' }, values), []);
    assert.match(injectionDecision(deploymentPod({}, { hostNetwork: true }), ns, values).reason, /hostNetwork/);
    // The label overrides the annotation, as in Istio.
    assert.notDeepEqual(inject(deploymentPod({ labels: { 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'false' } }), ns, values), []);
    // A pod that already has an istio-proxy container is not injected twice.
    assert.deepEqual(inject(deploymentPod({}, { containers: [{ name: 'istio-proxy', image: 'x' }] }), ns, values), []);
  });

  it('turns traffic annotations into istio-iptables args', () => {
    const pod = deploymentPod({
      annotations: {
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.10/32, 192.168.0.0/16',
        'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/16,10.244.0.0/16',
        'traffic.sidecar.istio.io/excludeInboundPorts': '9090,15021',
        'traffic.sidecar.istio.io/excludeOutboundPorts': '5432,6379',
      },
    });
    const args = injected(pod).spec.initContainers?.[0].args ?? [];
    const flag = (f: string): string | undefined => { const i = args.indexOf(f); return i < 0 ? undefined : args[i + 1]; };
    assert.equal(flag('-x'), '10.96.0.10/32,192.168.0.0/16');
    assert.equal(flag('-i'), '10.96.0.0/16,10.244.0.0/16');
    assert.equal(flag('-d'), '15090,15021,15020,15000,9090');
    assert.equal(flag('-o'), '5432,6379');
    assert.equal(flag('-b'), '*');
    assert.equal(flag('-p'), '15001');

    // The contract with the proxy's istio-iptables: it accepts exactly these flags.
    const cfg = parseInterceptionFlags(args.slice(1));
    assert.deepEqual(cfg.outboundExcludePorts, ['5432', '6379']);
    assert.deepEqual(cfg.outboundExcludeCidrs, ['10.96.0.10/32', '192.168.0.0/16']);
    assert.doesNotThrow(() => parseInterceptionFlags(DEFAULT_ARGS.slice(1)));
  });

  it('rejects invalid traffic annotations naming the annotation', () => {
    const bad = deploymentPod({ annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': '80,http' } });
    assert.throws(() => inject(bad, ns, values), (e: unknown) => e instanceof InjectionError && /excludeInboundPorts.*"http"/.test(e.message));
    const badCidr = deploymentPod({ annotations: { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/33' } });
    assert.throws(() => inject(badCidr, ns, values), /excludeOutboundIPRanges/);
  });

  it('passes proxy.istio.io/config proxyMetadata to the proxy as environment variables, as Istio does', () => {
    const pod = deploymentPod({ annotations: { 'proxy.istio.io/config': 'proxyMetadata:\n  SECRET_TTL: 1h\n  ISTIO_META_DNS_CAPTURE: true\n' } });
    const env = envOf((injected(pod).spec.initContainers ?? [])[1]);
    assert.equal(env.SECRET_TTL, '1h');
    assert.equal(env.ISTIO_META_DNS_CAPTURE, 'true');
    assert.equal(envOf((injected(deploymentPod()).spec.initContainers ?? [])[1]).SECRET_TTL, undefined);
    const bad = deploymentPod({ annotations: { 'proxy.istio.io/config': '{"proxyMetadata": {"SECRET TTL": "1h"}}' } });
    assert.throws(() => inject(bad, ns, values), (e: unknown) => e instanceof InjectionError && /proxy\.istio\.io\/config\]\.proxyMetadata\.SECRET TTL: not a valid environment variable name/.test(e.message));
    assert.throws(() => inject(deploymentPod({ annotations: { 'proxy.istio.io/config': 'proxyMetadata: [1' } }), ns, values), /proxy\.istio\.io\/config\]: not valid YAML/);
  });

  it('takes the proxy image and version from the environment', () => {
    const v = templateValuesFromEnv({ HUB: 'registry.example/mesh', PROXY_VERSION: '0.2.0', PILOT_ADDRESS: 'istiod.other.svc:15010' });
    const out = applyPatch(deploymentPod(), inject(deploymentPod(), ns, v));
    const [init, proxy] = out.spec.initContainers ?? [];
    assert.equal(init.image, 'registry.example/mesh/proxyv2:0.2.0');
    assert.equal(proxy.image, 'registry.example/mesh/proxyv2:0.2.0');
    assert.equal(envOf(proxy).PILOT_ADDRESS, 'istiod.other.svc:15010');
    assert.equal(envOf(proxy).ISTIO_META_ISTIO_VERSION, '0.2.0');
    assert.equal(templateValuesFromEnv({ PROXY_IMAGE: 'my/proxy:dev' }).proxyImage, 'my/proxy:dev');
  });
});
