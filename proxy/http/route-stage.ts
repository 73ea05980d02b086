// Stage: find the route for a request (virtual host by Host, then routes in order), and
// for a route action the one cluster this request goes to.
import type http from 'node:http';
import type { ConfigSnapshot } from '../xds/snapshot.js';
import type { HttpConnectionManagerConfig } from '../xds/resources/listener.js';
import type { ClusterSpecifier, RouteMatch, RouteTable } from '../xds/resources/route.js';
import { pickWeighted } from '../upstream/load-balancer.js';

export function routeTableFor(hcm: HttpConnectionManagerConfig, snapshot: ConfigSnapshot): RouteTable | undefined {
  return hcm.routeConfig ?? (hcm.rds ? snapshot.routes.get(hcm.rds)?.value : undefined);
}

export function matchRequest(table: RouteTable | undefined, req: http.IncomingMessage): RouteMatch | undefined {
  if (!table) return undefined;
  return table.match(req.headers.host ?? '', req.url ?? '/', req.headers);
}

export function chooseCluster(target: ClusterSpecifier, random = Math.random): string | undefined {
  if (target.kind === 'cluster') return target.name;
  return pickWeighted(target.clusters, target.totalWeight, random)?.name;
}
