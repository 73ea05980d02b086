// Waits until a target serves the bench's 1 KB answer through whatever is in front of it.
import { request } from 'undici';
import type { Target } from './load.js';
import { RESPONSE_BYTES } from './load.js';

export async function waitServing(what: string, target: Target, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await request(`${target.origin}/`, { headers: { host: target.host }, headersTimeout: 2000, bodyTimeout: 2000 });
      const body = await res.body.arrayBuffer();
      if (res.statusCode === 200 && body.byteLength === RESPONSE_BYTES) return;
      last = `status ${res.statusCode}, ${body.byteLength} bytes`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not serve ${target.origin} (Host ${target.host}) within ${timeoutMs} ms: ${last}`);
}
