// Envoy-style loggers with levels, changed at run time through the admin /logging endpoint.
// Messages name their logger; a line is written when its level is at or above the logger's.

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The proxy's loggers (a subset of Envoy's names). */
export const LOGGERS = ['admin', 'config', 'connection', 'dns', 'http', 'main', 'router', 'upstream'] as const;

const RANK: Record<string, number> = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i]));
// Envoy accepts "warn" too.
RANK.warn = RANK.warning;

/** Which logger a free-form runtime message belongs to, by its "prefix:". */
const PREFIX_LOGGER: Record<string, string> = {
  xds: 'config', 'xds(delta)': 'config', listeners: 'config', listener: 'config', cluster: 'upstream', mirror: 'router',
  draining: 'main', certificate: 'main', http2: 'http',
};

export class LogLevels {
  private readonly levels = new Map<string, number>();

  constructor(private readonly sink: (msg: string) => void, initial: LogLevel = 'info') {
    for (const l of LOGGERS) this.levels.set(l, RANK[initial]);
  }

  enabled(logger: string, level: LogLevel): boolean {
    return RANK[level] >= (this.levels.get(logger) ?? RANK.info) && level !== 'off';
  }

  write(logger: string, level: LogLevel, msg: string): void {
    if (this.enabled(logger, level)) this.sink(msg);
  }

  /** The runtime's log(): an info line on the logger its prefix names ('main' otherwise). */
  info(msg: string): void {
    const colon = msg.indexOf(':');
    const prefix = colon > 0 ? msg.slice(0, colon).split(' ')[0] : '';
    this.write(PREFIX_LOGGER[prefix] ?? 'main', 'info', msg);
  }

  /** Sets one logger's level; throws naming the logger or level when unknown. */
  set(logger: string, level: string): void {
    if (!this.levels.has(logger)) throw new Error(`unknown logger "${logger}" (known: ${[...this.levels.keys()].join(', ')})`);
    const rank = RANK[level];
    if (rank === undefined) throw new Error(`unknown level "${level}" for logger "${logger}" (${LOG_LEVELS.join(', ')})`);
    this.levels.set(logger, rank);
  }

  setAll(level: string): void {
    const rank = RANK[level];
    if (rank === undefined) throw new Error(`unknown level "${level}" (${LOG_LEVELS.join(', ')})`);
    for (const l of this.levels.keys()) this.levels.set(l, rank);
  }

  /** Envoy's /logging listing. */
  text(): string {
    const lines = ['active loggers:'];
    for (const [name, rank] of [...this.levels].sort(([a], [b]) => a.localeCompare(b))) lines.push(`  ${name}: ${LOG_LEVELS[rank]}`);
    return lines.join('\n') + '\n';
  }
}
