// Downstream HTTP/2 sessions by direction, so a drain can tell each client with a GOAWAY to
// open no new streams here (streams in flight finish), as Envoy does on drain. HTTP/1.1
// connections get `connection: close` on their next response instead (connection manager).
import type http2 from 'node:http2';
import type { Direction } from '../stats/labels.js';

export class DownstreamH2Sessions {
  private readonly sessions = new Map<http2.Http2Session, Direction>();

  add(session: http2.Http2Session, direction: Direction): void {
    this.sessions.set(session, direction);
    session.once('close', () => this.sessions.delete(session));
  }

  /** Sends GOAWAY on every session of these directions; returns how many. */
  goAway(directions: ReadonlySet<Direction>): number {
    let n = 0;
    for (const [session, direction] of this.sessions) {
      if (!directions.has(direction) || session.closed || session.destroyed) continue;
      // close() sends GOAWAY (NO_ERROR, last stream id) and ends the session once its streams are done.
      session.close();
      n++;
    }
    return n;
  }

  get size(): number {
    return this.sessions.size;
  }
}
