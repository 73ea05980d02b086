// Coalesces bursts of config events into one snapshot: fire after `quietMs` without a new
// event, but no later than `maxMs` after the first event of the burst (so a steady trickle
// of pod updates cannot starve pushes).

export interface DebounceBurst { firstEventAt: number; events: number }

export class Debouncer {
  private quietTimer?: NodeJS.Timeout;
  private maxTimer?: NodeJS.Timeout;
  private burst?: DebounceBurst;

  constructor(private readonly fire: (burst: DebounceBurst) => void, private readonly quietMs = 100, private readonly maxMs = 1000) {}

  trigger(): void {
    if (!this.burst) {
      this.burst = { firstEventAt: Date.now(), events: 0 };
      this.maxTimer = setTimeout(() => this.flush(), this.maxMs);
    }
    this.burst.events++;
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.flush(), this.quietMs);
  }

  get pending(): boolean { return this.burst !== undefined; }

  flush(): void {
    const burst = this.burst;
    this.cancel();
    if (burst) this.fire(burst);
  }

  cancel(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    this.quietTimer = undefined;
    this.maxTimer = undefined;
    this.burst = undefined;
  }
}
