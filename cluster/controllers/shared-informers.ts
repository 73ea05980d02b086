// One informer per resource, shared by every controller (client-go's SharedInformerFactory):
// a single list+watch per kind no matter how many controllers read it.
import { Informer, type KubeClient, type KubeObject, type ResourceRef } from '../../api/kube/index.js';

export class SharedInformers {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private started = false;

  constructor(private readonly client: KubeClient) {}

  /** The informer for r (created on first use; started by start() or immediately if already started). */
  for<T extends KubeObject>(r: ResourceRef): Informer<T> {
    const id = `${r.group}/${r.version}/${r.resource}`;
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer<KubeObject>(this.client, r);
      this.informers.set(id, inf);
      if (this.started) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  start(): void {
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  async waitForSync(timeoutMs = 30_000): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(timeoutMs)));
  }

  stop(): void {
    for (const inf of this.informers.values()) inf.stop();
  }
}
