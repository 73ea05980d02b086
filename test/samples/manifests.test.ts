// The install/ and samples/ manifests: they parse, are well-formed Kubernetes objects, and
// agree with each other (selectors, ports, images in the catalog, webhook wiring).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { R } from '../../api/kube/index.js';

const HOME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Doc { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown }
interface Loaded { file: string; doc: Doc }

function load(dir: string): Loaded[] {
  const files = fs.readdirSync(path.join(HOME, dir)).filter((f) => /\.ya?ml$/.test(f) && f !== 'images.yaml').sort();
  return files.flatMap((f) => {
    const file = path.join(dir, f);
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(HOME, file), 'utf8'));
    return docs.map((d) => {
      assert.equal(d.errors.length, 0, `${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { file, doc: d.toJS() as Doc };
    }).filter((l) => l.doc !== null);
  });
}

const install = load('install');
const split = load('samples/split');
const all = [...install, ...split];
const byKind = (kind: string, docs = all): Loaded[] => docs.filter((l) => l.doc.kind === kind);

interface PodTemplate { metadata: { labels: Record<string, string> }; spec: { containers: { image: string; ports?: { containerPort: number }[]; readinessProbe?: { httpGet?: { port: number } } }[]; serviceAccountName?: string } }
interface DeploymentDoc extends Doc { spec: { selector: { matchLabels: Record<string, string> }; template: PodTemplate } }
interface ServiceDoc extends Doc { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: number }[] } }

function catalog(file: string): Record<string, { command: string[]; args: string[] }> {
  return YAML.parse(fs.readFileSync(path.join(HOME, file), 'utf8')) as Record<string, { command: string[]; args: string[] }>;
}

describe('manifests', () => {
  it('every document has apiVersion, kind and metadata.name', () => {
    assert.ok(install.length >= 15, `install/ has ${install.length} documents`);
    for (const { file, doc } of all) {
      assert.ok(doc.apiVersion, `${file}: a document has no apiVersion`);
      assert.ok(doc.kind, `${file}: a document has no kind`);
      assert.ok(doc.metadata?.name, `${file}: ${doc.kind} has no metadata.name`);
    }
  });

  it('the CRDs cover the Istio kinds the API client knows, as Istio serves them', () => {
    const crds = byKind('CustomResourceDefinition').map((l) => l.doc as Doc & { spec: { group: string; scope: string; names: { plural: string; kind: string; shortNames?: string[]; categories: string[] }; versions: { name: string; served: boolean; storage: boolean; subresources?: { status?: unknown }; schema: { openAPIV3Schema: { type: string; properties: Record<string, { 'x-kubernetes-preserve-unknown-fields'?: boolean }> } } }[] } });
    const istioRefs = Object.values(R).filter((r) => r.group.endsWith('istio.io'));
    assert.equal(crds.length, istioRefs.length);
    for (const r of istioRefs) {
      const crd = crds.find((c) => c.metadata?.name === `${r.resource}.${r.group}`);
      assert.ok(crd, `no CRD for ${r.resource}.${r.group}`);
      assert.equal(crd.spec.names.kind, r.kind);
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.ok(crd.spec.names.categories.includes('istio-io'));
      const versions = crd.spec.versions.map((v) => v.name);
      assert.ok(versions.includes('v1') && versions.includes('v1beta1'), `${crd.metadata?.name}: versions ${versions.join(',')}`);
      if (r.group === 'networking.istio.io') assert.ok(versions.includes('v1alpha3'));
      assert.deepEqual(crd.spec.versions.filter((v) => v.storage).map((v) => v.name), ['v1']);
      for (const v of crd.spec.versions) {
        assert.equal(v.served, true);
        assert.ok(v.subresources?.status, `${crd.metadata?.name} ${v.name}: no status subresource`);
        assert.equal(v.schema.openAPIV3Schema.type, 'object');
        assert.equal(v.schema.openAPIV3Schema.properties.spec['x-kubernetes-preserve-unknown-fields'], true);
        assert.equal(v.schema.openAPIV3Schema.properties.status['x-kubernetes-preserve-unknown-fields'], true);
      }
    }
    const short = Object.fromEntries(crds.map((c) => [c.spec.names.kind, c.spec.names.shortNames ?? []]));
    assert.deepEqual([short.VirtualService, short.DestinationRule, short.Gateway, short.ServiceEntry], [['vs'], ['dr'], ['gw'], ['se']]);
  });

  it('Deployments select their own pods and Services reach a container port', () => {
    const deployments = byKind('Deployment').map((l) => l.doc as DeploymentDoc);
    assert.ok(deployments.length >= 5);
    for (const d of deployments) {
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
        assert.equal(d.spec.template.metadata.labels[k], v, `Deployment ${d.metadata?.name}: selector ${k}=${v} does not match its template`);
      }
    }
    for (const s of byKind('Service').map((l) => l.doc as ServiceDoc)) {
      const pods = deployments.filter((d) => d.metadata?.namespace === s.metadata?.namespace &&
        Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      assert.ok(pods.length > 0, `Service ${s.metadata?.name} selects no Deployment`);
      for (const p of s.spec.ports) {
        assert.ok(p.name, `Service ${s.metadata?.name} port ${p.port} has no name`);
        for (const d of pods) {
          const ports = d.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((cp) => cp.containerPort);
          assert.ok(ports.includes(p.targetPort), `Service ${s.metadata?.name} targetPort ${p.targetPort} is not a port of ${d.metadata?.name}`);
        }
      }
    }
  });

  it('every image is in a catalog whose program exists', () => {
    const images = { ...catalog('install/images.yaml'), ...catalog('samples/images.yaml') };
    for (const d of byKind('Deployment').map((l) => l.doc as DeploymentDoc)) {
      for (const c of d.spec.template.spec.containers) assert.ok(images[c.image], `Deployment ${d.metadata?.name}: image ${c.image} is not in a catalog`);
    }
    assert.ok(images['trellis/proxyv2:0.1.0']);
    for (const [image, entry] of Object.entries(images)) {
      assert.equal(entry.command[0], 'node', image);
      const program = entry.command[1].replace('${TRELLIS_HOME}/dist/', '').replace(/\.js$/, '.ts');
      // The proxy's CLI is another part's; check ours exist as sources.
      if (!image.startsWith('trellis/proxyv2') && !image.startsWith('trellis/pilot')) assert.ok(fs.existsSync(path.join(HOME, program)), `${image}: ${program} does not exist`);
    }
  });

  it('the webhook configuration points at the injector Service and is Istio-shaped', () => {
    const [mwc] = byKind('MutatingWebhookConfiguration').map((l) => l.doc as Doc & { webhooks: Record<string, unknown>[] });
    assert.equal(mwc.metadata?.name, 'trellis-sidecar-injector');
    const w = mwc.webhooks[0] as { name: string; clientConfig: { caBundle?: string; service: { namespace: string; name: string; path: string; port: number } }; rules: { operations: string[]; resources: string[]; apiVersions: string[] }[]; namespaceSelector: unknown; objectSelector: unknown; failurePolicy: string; sideEffects: string; admissionReviewVersions: string[]; timeoutSeconds: number; reinvocationPolicy: string };
    assert.equal(w.name, 'sidecar-injector.istio.io');
    assert.equal(w.clientConfig.caBundle, undefined);
    assert.deepEqual(w.clientConfig.service, { namespace: 'trellis-system', name: 'trellis-injector', path: '/inject', port: 443 });
    assert.deepEqual([w.rules[0].operations, w.rules[0].resources, w.rules[0].apiVersions], [['CREATE'], ['pods'], ['v1']]);
    assert.deepEqual(w.namespaceSelector, { matchLabels: { 'istio-injection': 'enabled' } });
    assert.deepEqual(w.objectSelector, { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] });
    assert.deepEqual([w.failurePolicy, w.sideEffects, w.admissionReviewVersions, w.timeoutSeconds, w.reinvocationPolicy], ['Fail', 'None', ['v1'], 10, 'Never']);
    const svc = byKind('Service').find((l) => l.doc.metadata?.name === 'trellis-injector')?.doc as ServiceDoc;
    assert.deepEqual(svc.spec.ports.map((p) => [p.port, p.targetPort]), [[443, 15017]]);
    const injectorRole = byKind('ClusterRole').find((l) => l.doc.metadata?.name === 'trellis-injector')?.doc as Doc & { rules: { resources: string[]; verbs: string[] }[] };
    assert.ok(injectorRole.rules.some((r) => r.resources.includes('mutatingwebhookconfigurations') && r.verbs.includes('get') && r.verbs.includes('patch')));
  });

  it('the demo namespace is labelled for injection and the VirtualService weights sum to 100', () => {
    const ns = byKind('Namespace', split)[0].doc;
    assert.equal(ns.metadata?.labels?.['istio-injection'], 'enabled');
    // The in-mesh VirtualServices; gateway.yaml's one is bound to the ingress Gateway only.
    const vss = byKind('VirtualService', split).filter((l) => path.basename(l.file) !== 'gateway.yaml');
    assert.deepEqual(vss.map((l) => path.basename(l.file)).sort(), ['virtualservice-50-50.yaml', 'virtualservice-80-20.yaml']);
    for (const { file, doc } of vss) {
      const spec = doc.spec as { hosts: string[]; http: { route: { destination: { host: string; subset: string }; weight: number }[] }[] };
      assert.deepEqual(spec.hosts, ['web']);
      for (const h of spec.http) assert.equal(h.route.reduce((s, r) => s + r.weight, 0), 100, `${file}: weights do not sum to 100`);
      const expected = path.basename(file).match(/(\d+)-(\d+)/)?.slice(1).map(Number);
      assert.deepEqual(spec.http[0].route.map((r) => r.weight), expected);
    }
    const ingress = byKind('VirtualService', split).find((l) => path.basename(l.file) === 'gateway.yaml')?.doc.spec as { gateways: string[]; http: { route: { weight: number }[] }[] };
    assert.deepEqual(ingress.gateways, ['web-gateway'], 'the ingress VirtualService applies to the Gateway, not to sidecars');
    assert.deepEqual(ingress.http[0].route.map((r) => r.weight), [80, 20]);
    assert.equal(byKind('Gateway', split)[0].doc.metadata?.name, 'web-gateway');
    const dr = byKind('DestinationRule', split)[0].doc.spec as { host: string; subsets: { name: string; labels: Record<string, string> }[] };
    assert.deepEqual(dr.subsets, [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }]);
  });
});
