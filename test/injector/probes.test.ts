// Probe rewriting at injection: httpGet and tcpSocket probes of app containers point at the
// sidecar's status port, the originals go to ISTIO_KUBE_APP_PROBERS in Istio's JSON shape.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../../api/kube/index.js';
import { inject } from '../../injector/inject.js';
import { defaultTemplateValues } from '../../injector/template.js';
import { applyPatch } from './jsonpatch-apply.js';

const values = defaultTemplateValues();
const ns = { name: 'demo', labels: { 'istio-injection': 'enabled' } };

function probedPod(annotations?: Record<string, string>): Pod {
  return {
    metadata: { name: 'web-0', namespace: 'demo', labels: { app: 'web' }, annotations },
    spec: {
      containers: [
        {
          name: 'web', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }],
          livenessProbe: { httpGet: { path: '/live', port: 'http', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 5 },
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          startupProbe: { httpGet: { path: '/start', port: 8443, scheme: 'HTTPS' } },
        },
        { name: 'worker', image: 'w:1', livenessProbe: { exec: { command: ['true'] } } },
      ],
    },
  };
}

function proxyEnv(pod: Pod, name: string): string | undefined {
  return pod.spec.initContainers?.find((c) => c.name === 'istio-proxy')?.env?.find((e) => e.name === name)?.value;
}

describe('probe rewriting', () => {
  it('points httpGet and tcpSocket probes at 15021 /app-health/<container>/<kind>, keeping timing', () => {
    const out = applyPatch(probedPod(), inject(probedPod(), ns, values));
    const web = out.spec.containers[0];
    assert.deepEqual(web.livenessProbe, { httpGet: { path: '/app-health/web/livez', port: 15021, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 5 });
    assert.deepEqual(web.readinessProbe, { httpGet: { path: '/app-health/web/readyz', port: 15021, scheme: 'HTTP' }, periodSeconds: 1 });
    assert.deepEqual(web.startupProbe, { httpGet: { path: '/app-health/web/startupz', port: 15021, scheme: 'HTTP' } });
    // exec probes run in the container: left alone.
    assert.deepEqual(out.spec.containers[1].livenessProbe, { exec: { command: ['true'] } });

    assert.deepEqual(JSON.parse(proxyEnv(out, 'ISTIO_KUBE_APP_PROBERS') ?? 'null'), {
      '/app-health/web/livez': { httpGet: { path: '/live', port: 8080, scheme: 'HTTP', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, timeoutSeconds: 2 },
      '/app-health/web/readyz': { tcpSocket: { port: 8080 }, timeoutSeconds: 1 },
      '/app-health/web/startupz': { httpGet: { path: '/start', port: 8443, scheme: 'HTTPS' }, timeoutSeconds: 1 },
    });
  });

  it('leaves probes alone with sidecar.istio.io/rewriteAppHTTPProbers: "false"', () => {
    const pod = probedPod({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' });
    const out = applyPatch(pod, inject(pod, ns, values));
    assert.deepEqual(out.spec.containers, pod.spec.containers);
    assert.equal(proxyEnv(out, 'ISTIO_KUBE_APP_PROBERS'), undefined);
    assert.ok(out.spec.initContainers?.some((c) => c.name === 'istio-proxy'), 'still injected');
  });

  it('follows the template switch, and the annotation "true" overrides it', () => {
    const off = { ...values, rewriteAppProbes: false };
    const pod = probedPod();
    assert.deepEqual(applyPatch(pod, inject(pod, ns, off)).spec.containers, pod.spec.containers);
    const forced = probedPod({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'true' });
    assert.equal(applyPatch(forced, inject(forced, ns, off)).spec.containers[0].readinessProbe?.httpGet?.port, 15021);
  });

  it('skips a probe whose named port the container does not declare', () => {
    const pod: Pod = { metadata: { name: 'p', namespace: 'demo' }, spec: { containers: [{ name: 'c', image: 'x', readinessProbe: { httpGet: { path: '/', port: 'nope' } } }] } };
    const out = applyPatch(pod, inject(pod, ns, values));
    assert.deepEqual(out.spec.containers, pod.spec.containers);
    assert.equal(proxyEnv(out, 'ISTIO_KUBE_APP_PROBERS'), undefined);
  });

  it('is idempotent: a rewritten, injected pod is not rewritten again', () => {
    const once = applyPatch(probedPod(), inject(probedPod(), ns, values));
    assert.deepEqual(inject(once, ns, values), []);
  });
});
