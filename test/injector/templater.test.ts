// The injection template language (injector/templater.ts) and the sidecar template on top of
// it: typed placeholders, interpolation, list spreading, and errors that name the source and
// the line. Pure functions, no network.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pod } from '../../api/kube/index.js';
import { reviewPod } from '../../injector/admission.js';
import { inject } from '../../injector/inject.js';
import { DEFAULT_TEMPLATE, parseSidecarTemplate } from '../../injector/sidecar-template.js';
import { defaultTemplateValues } from '../../injector/template.js';
import { parseTemplate, renderTemplate, TemplateError } from '../../injector/templater.js';

const known = new Set(['n', 'list', 'name', 'map']);
const SRC = 'ConfigMap trellis-system/istio-sidecar-injector data.template';

describe('templater', () => {
  it('keeps a whole placeholder\'s type, interpolates text, and spreads lists', () => {
    const t = parseTemplate('a: "{{ n }}"\nb: "x-{{ name }}-{{ n }}"\nc: "{{ list }}"\nd:\n- first\n- "{{ ...list }}"\n- last\ne: "{{ map }}"\n', SRC, known);
    const out = renderTemplate(t, { n: 15021, name: 'web', list: [1, 'two'], map: { k: 'v' } });
    assert.deepEqual(out, { a: 15021, b: 'x-web-15021', c: [1, 'two'], d: ['first', 1, 'two', 'last'], e: { k: 'v' } });
  });

  it('names the source and the line of an unknown, unquoted or malformed placeholder and of bad YAML', () => {
    assert.throws(() => parseTemplate('a: 1\nb: "{{ nope }}"\n', SRC, known), (e: unknown) => e instanceof TemplateError && e.message.startsWith(`${SRC} line 2: unknown placeholder {{ nope }}`));
    assert.throws(() => parseTemplate('a: 1\n\nb: {{ n }}\n', SRC, known), /data\.template line 3: quote the placeholder/);
    assert.throws(() => parseTemplate('a: "{{ n }"\n', SRC, known), /data\.template line 1: malformed placeholder/);
    assert.throws(() => parseTemplate('a: 1\nb: [unclosed\n', SRC, known), /data\.template line \d: not valid YAML/);
    // Comments may mention placeholders freely.
    assert.doesNotThrow(() => parseTemplate('# "{{ anything }}"\na: 1\n', SRC, known));
  });

  it('refuses a spread outside a list and a list inside text, naming the line', () => {
    const t = parseTemplate('a:\n  b: "{{ ...list }}"\n  c: "x{{ list }}"\n', SRC, known);
    assert.throws(() => renderTemplate(t, { list: [1] }), /line 2 \(a\.b\): \{\{ \.\.\.list \}\} spreads a list/);
    const u = parseTemplate('c: "x{{ list }}"\n', SRC, known);
    assert.throws(() => renderTemplate(u, { list: [1] }), /line 1 \(c\): \{\{ list \}\} is a list or map/);
  });
});

describe('sidecar template', () => {
  const values = defaultTemplateValues();
  const pod = (extra: Partial<Pod['metadata']> = {}): Pod => ({ metadata: { name: 'web', namespace: 'demo', labels: { app: 'web' }, ...extra }, spec: { containers: [{ name: 'app', image: 'a' }] } });

  it('refuses unknown sections and bad shapes with the line', () => {
    assert.throws(() => parseSidecarTemplate('initContainers: []\nsidecars: []\n', SRC), /data\.template line 2: unknown section sidecars/);
    const noImage = parseSidecarTemplate('initContainers:\n- name: x\n  args: [a]\n', SRC);
    assert.throws(() => inject(pod(), { name: 'demo' }, values, noImage), /data\.template line 2: initContainers\.0\.image: must be a non-empty string/);
  });

  it('a template that cannot render refuses only the pods being injected, with the template error', () => {
    // A label cannot be a list: the error appears when a pod is rendered.
    const bad = parseSidecarTemplate(DEFAULT_TEMPLATE.replace('security.istio.io/tlsMode: istio', 'security.istio.io/tlsMode: "{{ iptablesArgs }}"'), SRC);
    const review = (p: Pod) => reviewPod({ uid: 'u', namespace: 'demo', operation: 'CREATE', object: p }, values, bad).review.response;
    const refused = review(pod());
    assert.equal(refused?.allowed, false);
    assert.match(refused?.status?.message ?? '', /injection of pod demo\/web failed: .*data\.template line \d+: labels\.security\.istio\.io\/tlsMode: must be a string/);
    const optedOut = review(pod({ labels: { app: 'web', 'sidecar.istio.io/inject': 'false' } }));
    assert.deepEqual({ allowed: optedOut?.allowed, patch: optedOut?.patch }, { allowed: true, patch: undefined });
  });
});
