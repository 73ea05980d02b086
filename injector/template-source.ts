// Keeps the injection template current: watches the ConfigMap istio-sidecar-injector and
// swaps in its `template` (the YAML of what injected pods get, see sidecar-template.ts) and
// its `values` when both are valid. The pair is checked together by rendering a sample pod,
// so a mistake is found at the edit, not at a pod's admission. A bad edit is logged with the
// key and the line or field, and injection goes on with the last good template and values.
import { Informer, R, type KubeClient, type KubeObject } from '../api/kube/index.js';
import { TEMPLATE_CONFIGMAP, TEMPLATE_KEY, TemplateConfigError, templateValuesFromConfigMap } from './template-config.js';
import type { TemplateValues } from './template.js';
import { rewriteProbes } from './probes.js';
import { defaultSidecarTemplate, parseSidecarTemplate, renderSidecar, SAMPLE_POD, TEMPLATE_DATA_KEY } from './sidecar-template.js';
import { TemplateError, type ParsedTemplate } from './templater.js';
import { InjectionError } from './traffic-annotations.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export interface TemplateSourceOptions {
  client: KubeClient;
  namespace: string;
  /** Values before (and underneath) the ConfigMap: from the environment. */
  base: TemplateValues;
  name?: string;
  log: (msg: string) => void;
}

export class TemplateSource {
  private values: TemplateValues;
  private parsed: ParsedTemplate = defaultSidecarTemplate();
  private informer: Informer<ConfigMap> | undefined;
  /** resourceVersion of the ConfigMap whose values are in use ('' = the base values). */
  appliedVersion = '';
  /** The last rejected edit's error, for tests and debugging. */
  lastError: string | undefined;

  constructor(private readonly opts: TemplateSourceOptions) {
    this.values = opts.base;
  }

  get current(): TemplateValues {
    return this.values;
  }

  /** The injection template in use (the built-in one until the ConfigMap has a `template`). */
  get template(): ParsedTemplate {
    return this.parsed;
  }

  private get ref(): string {
    return `ConfigMap ${this.opts.namespace}/${this.opts.name ?? TEMPLATE_CONFIGMAP}`;
  }

  private load(cm: ConfigMap): void {
    const rv = cm.metadata.resourceVersion ?? '';
    const data = cm.data ?? {};
    try {
      // Either key may be left out (its defaults apply), not both.
      const values = data[TEMPLATE_KEY] === undefined && data[TEMPLATE_DATA_KEY] !== undefined ? this.opts.base : templateValuesFromConfigMap(data, this.opts.base);
      const template = data[TEMPLATE_DATA_KEY] === undefined ? defaultSidecarTemplate() : parseSidecarTemplate(data[TEMPLATE_DATA_KEY], `${this.ref} data.${TEMPLATE_DATA_KEY}`);
      renderSidecar(template, SAMPLE_POD, values, rewriteProbes(SAMPLE_POD, values.statusPort));
      this.values = values;
      this.parsed = template;
      this.appliedVersion = rv;
      this.lastError = undefined;
      this.opts.log(`${this.ref}: injection template loaded (resourceVersion ${rv}, ${data[TEMPLATE_DATA_KEY] === undefined ? 'built-in template' : `template from data.${TEMPLATE_DATA_KEY}`}, proxy image ${this.values.proxyImage})`);
    } catch (e) {
      if (!(e instanceof TemplateConfigError || e instanceof TemplateError || e instanceof InjectionError)) throw e;
      this.lastError = e.message;
      const kept = this.appliedVersion ? `resourceVersion ${this.appliedVersion}` : 'the built-in defaults';
      this.opts.log(`${this.ref}: rejected edit (resourceVersion ${rv}): ${e.message}; keeping the last good template (${kept})`);
    }
  }

  /** Starts watching; resolves once the ConfigMap (if any) has been read. */
  async start(): Promise<void> {
    const name = this.opts.name ?? TEMPLATE_CONFIGMAP;
    this.informer = new Informer<ConfigMap>(this.opts.client, R.configMaps, { namespace: this.opts.namespace, fieldSelector: `metadata.name=${name}` })
      .on({
        add: (cm) => this.load(cm),
        update: (_old, cm) => this.load(cm),
        // Deleting the ConfigMap is not an edit to act on: keep injecting what we have.
        delete: () => this.opts.log(`${this.ref}: deleted; keeping the last good template`),
      })
      .start();
    await this.informer.waitForSync();
    if (!this.informer.list().length) this.opts.log(`${this.ref}: not found; using the built-in template values`);
  }

  stop(): void {
    this.informer?.stop();
  }
}
