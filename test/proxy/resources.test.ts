// Decoding and validation of each xDS resource type, through the real proto encoding.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { packAny, unpackAny, TYPE_URL } from '../../api/xds/protos.js';
import { decodeCluster } from '../../proxy/xds/resources/cluster.js';
import { decodeLoadAssignment } from '../../proxy/xds/resources/endpoint.js';
import { decodeListener } from '../../proxy/xds/resources/listener.js';
import { decodeRouteConfiguration } from '../../proxy/xds/resources/route.js';
import type { Obj } from '../../proxy/xds/resources/fields.js';
import { assignment, edsCluster, routeConfiguration, serviceListener, virtualInbound, virtualOutbound } from './fixtures.js';

const roundTrip = (typeUrl: string, body: object): Obj => unpackAny<Obj>(packAny(typeUrl, body));

describe('xDS resource validation', () => {
  it('accepts the shapes pilot emits', () => {
    for (const l of [virtualOutbound('0.0.0.0', 15001), serviceListener(9080), virtualInbound('0.0.0.0', 15006, [8080])]) {
      const d = decodeListener(roundTrip(TYPE_URL.listener, l));
      assert.deepEqual(d.errors, []);
    }
    const inbound = decodeListener(roundTrip(TYPE_URL.listener, virtualInbound('0.0.0.0', 15006, [8080]))).value!;
    assert.equal(inbound.filterChains[0].destinationPort, 8080);
    assert.equal(inbound.originalDstFilter, true);
    const svc = decodeListener(roundTrip(TYPE_URL.listener, serviceListener(9080))).value!;
    assert.equal(svc.bindToPort, false);
    const c = decodeCluster(roundTrip(TYPE_URL.cluster, edsCluster('outbound|80||a.b.svc.cluster.local'))).value!;
    assert.equal(c.type, 'EDS');
    assert.equal(c.connectTimeoutMs, 1000);
    assert.equal(c.edsServiceName, 'outbound|80||a.b.svc.cluster.local');
    const la = decodeLoadAssignment(roundTrip(TYPE_URL.clusterLoadAssignment, assignment('x', [['10.0.0.1', 80]]))).value!;
    assert.deepEqual(la.endpoints, [{ address: '10.0.0.1', port: 80, weight: 1 }]);
  });

  it('rejects a route without an action, naming the field', () => {
    const d = decodeRouteConfiguration(roundTrip(TYPE_URL.routeConfiguration,
      routeConfiguration(80, [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' } }] }])));
    assert.deepEqual(d.errors, ['RouteConfiguration "80": virtualHosts[0].routes[0]: no action: one of route, redirect, directResponse is required']);
  });

  it('rejects bad regexes, empty weights and missing domains', () => {
    const d = decodeRouteConfiguration(roundTrip(TYPE_URL.routeConfiguration, routeConfiguration(80, [
      { name: 'v', domains: [], routes: [{ match: { safeRegex: { regex: '(' } }, route: { cluster: 'c' } }] },
      { name: 'w', domains: ['a'], routes: [{ match: { prefix: '/' }, route: { weightedClusters: { clusters: [{ name: 'c', weight: { value: 0 } }] } } }] },
    ])));
    assert.equal(d.errors.length, 3, d.errors.join('\n'));
    assert.match(d.errors[0], /virtualHosts\[0\]\.domains: must not be empty/);
    assert.match(d.errors[1], /virtualHosts\[0\]\.routes\[0\]\.match\.safeRegex\.regex: invalid regex/);
    assert.match(d.errors[2], /virtualHosts\[1\]\.routes\[0\]\.route\.weightedClusters\.clusters: weights must sum to more than 0/);
  });

  it('rejects listeners with bad addresses or unknown filters', () => {
    const bad = { ...(serviceListener(81) as Obj), address: { socketAddress: { address: 'not-an-ip', portValue: 81 } } };
    assert.match(decodeListener(roundTrip(TYPE_URL.listener, bad)).errors[0], /Listener "0.0.0.0_81": address.socketAddress.address: "not-an-ip" is not an IP address/);
    const unknown = { ...(serviceListener(82) as Obj), filterChains: [{ filters: [{ name: 'envoy.filters.network.redis_proxy' }] }] };
    assert.match(decodeListener(roundTrip(TYPE_URL.listener, unknown)).errors[0], /filterChains\[0\]\.filters\[0\]\.name: network filter "envoy.filters.network.redis_proxy" is not supported/);
  });

  it('rejects clusters it cannot serve', () => {
    assert.match(decodeCluster(roundTrip(TYPE_URL.cluster, { name: 'c', type: 'EDS' })).errors[0], /Cluster "c": edsClusterConfig.edsConfig: required for type EDS/);
    assert.match(decodeCluster(roundTrip(TYPE_URL.cluster, { name: 's', type: 'STATIC' })).errors[0], /Cluster "s": loadAssignment: required for type STATIC/);
    assert.match(decodeCluster(roundTrip(TYPE_URL.cluster, { name: 'm', type: 'EDS', edsClusterConfig: { edsConfig: { ads: {} } }, lbPolicy: 'MAGLEV' })).errors[0], /lbPolicy: "MAGLEV" is not supported/);
  });

  it('matches domains exact first, then suffix and prefix wildcards, then *, with and without port', () => {
    const table = decodeRouteConfiguration(roundTrip(TYPE_URL.routeConfiguration, routeConfiguration(80, [
      { name: 'any', domains: ['*'], routes: [{ match: { prefix: '/' }, directResponse: { status: 200 } }] },
      { name: 'suffix', domains: ['*.example.com'], routes: [{ match: { prefix: '/' }, directResponse: { status: 200 } }] },
      { name: 'prefix', domains: ['api.*'], routes: [{ match: { prefix: '/' }, directResponse: { status: 200 } }] },
      { name: 'exact', domains: ['www.example.com', 'svc:80'], routes: [
        { name: 'hdr', match: { prefix: '/', headers: [{ name: 'x-canary', stringMatch: { exact: 'yes' } }] }, directResponse: { status: 201 } },
        { name: 'present', match: { path: '/p', headers: [{ name: 'x-p', presentMatch: true }] }, directResponse: { status: 202 } },
        { name: 're', match: { safeRegex: { regex: '/items/[0-9]+' } }, directResponse: { status: 203 } },
        { name: 'all', match: { prefix: '/' }, directResponse: { status: 204 } },
      ] },
    ]))).value!;
    assert.equal(table.findVirtualHost('www.example.com')?.name, 'exact');
    assert.equal(table.findVirtualHost('www.example.com:8080')?.name, 'exact');
    assert.equal(table.findVirtualHost('svc:80')?.name, 'exact');
    assert.equal(table.findVirtualHost('x.example.com')?.name, 'suffix');
    assert.equal(table.findVirtualHost('api.other.org')?.name, 'prefix');
    assert.equal(table.findVirtualHost('else')?.name, 'any');
    const route = (path: string, headers: Record<string, string> = {}): string | undefined => table.match('www.example.com', path, headers)?.route.name;
    assert.equal(route('/x', { 'x-canary': 'yes' }), 'hdr');
    assert.equal(route('/p?q=1', { 'x-p': '' }), 'present');
    assert.equal(route('/p'), 'all');
    assert.equal(route('/items/42?x'), 're');
    assert.equal(route('/items/4a'), 'all');
  });

  it('rejects bad retry policies, fault percentages, header mutations and cluster thresholds, naming the field', () => {
    const d = decodeRouteConfiguration(roundTrip(TYPE_URL.routeConfiguration, routeConfiguration(80, [{
      name: 'v', domains: ['*'], requestHeadersToAdd: [{ header: { key: ':path', value: 'x' } }],
      routes: [
        { match: { prefix: '/a' }, route: { cluster: 'c', retryPolicy: { retryOn: '5xx,sometimes', retryBackOff: { baseInterval: { seconds: 1 }, maxInterval: { nanos: 1000 } } } } },
        { match: { prefix: '/b' }, route: { cluster: 'c' }, typedPerFilterConfig: { 'envoy.filters.http.fault': {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { httpStatus: 700, percentage: { numerator: 1 } } } } },
        { match: { prefix: '/c' }, redirect: { pathRedirect: '/x', prefixRewrite: '/y' } },
      ],
    }])));
    const text = d.errors.join('\n');
    assert.match(text, /virtualHosts\[0\]\.routes\[0\]\.route\.retryPolicy\.retryOn: "sometimes" is not a retry condition/);
    assert.match(text, /routes\[0\]\.route\.retryPolicy\.retryBackOff\.maxInterval: must be at least baseInterval/);
    assert.match(text, /routes\[1\]\.typedPerFilterConfig\["envoy\.filters\.http\.fault"\]\.abort\.httpStatus: 700 is not in \[200, 600\)/);
    assert.match(text, /routes\[2\]\.redirect: only one of pathRedirect, prefixRewrite, regexRewrite may be set/);
    assert.match(text, /virtualHosts\[0\]\.requestHeadersToAdd\[0\]\.header\.key: ":path" may not be modified/);
    const c = decodeCluster(roundTrip(TYPE_URL.cluster, { ...(edsCluster('c') as Obj), outlierDetection: { maxEjectionPercent: { value: 150 } }, commonLbConfig: { healthyPanicThreshold: { value: 120 } } }));
    assert.match(c.errors.join('\n'), /Cluster "c": outlierDetection\.maxEjectionPercent: 150 is more than 100/);
    assert.match(c.errors.join('\n'), /commonLbConfig\.healthyPanicThreshold: .* is not a percentage/);
    const ok = decodeCluster(roundTrip(TYPE_URL.cluster, { ...(edsCluster('d') as Obj), circuitBreakers: { thresholds: [{ maxRequests: { value: 7 } }] } })).value!;
    assert.deepEqual([ok.circuitBreakers.maxRequests, ok.circuitBreakers.maxConnections, ok.circuitBreakers.maxRetries], [7, 1024, 3]);
    const r = decodeRouteConfiguration(roundTrip(TYPE_URL.routeConfiguration, routeConfiguration(80, [{ name: 'v', domains: ['*'], routes: [
      { match: { prefix: '/' }, route: { cluster: 'c' } }, { match: { prefix: '/0' }, route: { cluster: 'c', timeout: { seconds: 0 } } }] }]))).value!;
    const actions = r.virtualHosts[0].routes.map((x) => (x.action.kind === 'route' ? x.action.timeoutMs : -1));
    assert.deepEqual(actions, [15_000, 0], 'default 15 s; 0 disables');
  });
});
