// Keeps the injection template current: watches the ConfigMap istio-sidecar-injector and
// swaps in its values when they are valid. A bad edit is logged with the field and ignored,
// so injection goes on with the last good template (a broken template must never block pods).
import { Informer, R, type KubeClient, type KubeObject } from '../api/kube/index.js';
import { TEMPLATE_CONFIGMAP, TemplateConfigError, templateValuesFromConfigMap } from './template-config.js';
import type { TemplateValues } from './template.js';

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

  private get ref(): string {
    return `ConfigMap ${this.opts.namespace}/${this.opts.name ?? TEMPLATE_CONFIGMAP}`;
  }

  private load(cm: ConfigMap): void {
    const rv = cm.metadata.resourceVersion ?? '';
    try {
      this.values = templateValuesFromConfigMap(cm.data, this.opts.base);
      this.appliedVersion = rv;
      this.lastError = undefined;
      this.opts.log(`${this.ref}: injection template loaded (resourceVersion ${rv}, proxy image ${this.values.proxyImage})`);
    } catch (e) {
      if (!(e instanceof TemplateConfigError)) throw e;
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
