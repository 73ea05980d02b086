// Stage: envoy.filters.http.fault. The route's (or virtual host's) typed_per_filter_config
// replaces the filter's own config; a delay is served first, then an abort (Envoy order).
import type http from 'node:http';
import type { FaultConfig } from '../xds/resources/fault.js';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import type { Route, VirtualHost } from '../xds/resources/route.js';

export function effectiveFault(hcm: HttpConnectionManagerConfig, vh: VirtualHost, route: Route): FaultConfig | undefined {
  if (!hcm.fault) return undefined; // per-route config only counts when the filter is in the chain
  return route.fault ?? vh.fault ?? hcm.fault;
}

/** Returns the abort to answer with (status, grpc), or undefined to continue; flags DI on a delay. */
export async function runFault(fault: FaultConfig, res: http.ServerResponse, flags: string[], random = Math.random): Promise<{ status: number; grpcStatus?: number } | undefined> {
  if (fault.delay && random() < fault.delay.fraction) {
    flags.push('DI');
    const ms = fault.delay.fixedDelayMs;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void { clearTimeout(t); res.off('close', done); resolve(); }
      res.on('close', done);
    });
  }
  if (fault.abort && random() < fault.abort.fraction) {
    flags.push('FI');
    if (fault.abort.grpcStatus !== undefined) return { status: 200, grpcStatus: fault.abort.grpcStatus };
    return { status: fault.abort.httpStatus ?? 503 };
  }
  return undefined;
}
