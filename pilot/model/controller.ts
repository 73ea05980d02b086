// Folds input changes into a stream of immutable snapshots: every change is debounced
// (100 ms quiet, 1 s max), then one new PushContext is built from the current inputs and
// handed to the listeners (the xDS server).
import { EventEmitter } from 'node:events';
import type { ConfigInputs } from './inputs.js';
import { PushContext } from './push-context.js';
import { Debouncer, type DebounceBurst } from './debounce.js';
import type { SecurityOptions } from '../security/options.js';
import type { MeshOptions } from './mesh-config.js';

export interface PushEvent { push: PushContext; previous?: PushContext; burst?: DebounceBurst }

export interface PushControllerOptions { quietMs?: number; maxMs?: number; domain?: string; security?: Partial<SecurityOptions>; mesh?: Partial<MeshOptions> }

export class PushController {
  private readonly emitter = new EventEmitter();
  private readonly debouncer: Debouncer;
  private counter = 0;
  current?: PushContext;

  constructor(private readonly source: { inputs(): ConfigInputs }, private readonly opts: PushControllerOptions = {}) {
    this.debouncer = new Debouncer((burst) => this.rebuild(burst), opts.quietMs ?? 100, opts.maxMs ?? 1000);
  }

  onPush(listener: (e: PushEvent) => void): this {
    this.emitter.on('push', listener);
    return this;
  }

  /** A config input changed: schedule a (debounced) rebuild. */
  trigger(): void { this.debouncer.trigger(); }

  /** Builds a snapshot now, outside the debounce (the first one, after sync). */
  rebuild(burst?: DebounceBurst): PushContext {
    const previous = this.current;
    const push = PushContext.build(this.source.inputs(), { version: String(++this.counter), domain: this.opts.domain, security: this.opts.security, mesh: this.opts.mesh });
    this.current = push;
    for (const w of push.warnings) if (!previous?.warnings.includes(w)) console.warn(`pilot: ${w}`);
    this.emitter.emit('push', { push, previous, burst } satisfies PushEvent);
    return push;
  }

  stop(): void { this.debouncer.cancel(); }
}
