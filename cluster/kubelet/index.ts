// The embedded cluster's kubelet: pods as host processes in Linux network namespaces.
import { Kubelet, type KubeletOptions } from './kubelet.js';

export type { KubeletOptions } from './kubelet.js';
export { Kubelet } from './kubelet.js';
export { listSandboxObjects, removeLeftoverSandboxes } from './sandbox.js';
export { sandboxNames } from './names.js';
/** Removes the kubelet's `<prefix>.slice` pod cgroups (and processes left in them): for purges after a crash. */
export { removeSlice as removePodCgroups, cgroupSupport } from './cgroups.js';
export { EventRecorder, type CoreEvent, type EventSink } from './events.js';

/** Starts the kubelet; stop() kills every container and removes every netns and veth it made. */
export async function startKubelet(opts: KubeletOptions): Promise<{ stop(): Promise<void>; kubelet: Kubelet }> {
  const kubelet = new Kubelet(opts);
  try {
    await kubelet.start();
  } catch (e) {
    await kubelet.stop().catch(() => undefined);
    throw e;
  }
  return { stop: () => kubelet.stop(), kubelet };
}
