// EndpointSlices as pilot's endpoint input: a service's slices are merged, endpoints whose
// `ready` condition is true or unset are sent, not-ready and terminating ones are not,
// and the pods behind them still give subsets their labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointsFromSlices, type EndpointSlice } from '../../pilot/model/endpoint-slices.js';
import { PushContext } from '../../pilot/model/push-context.js';
import { generateEndpoints } from '../../pilot/xds/generators/index.js';
import { REVIEWS, V1_IP, V2_IP, bookinfo } from './fixtures.js';

function slice(name: string, endpoints: { ip: string; pod: string; ready?: boolean; serving?: boolean; terminating?: boolean }[], port = 9080): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'reviews' } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip], targetRef: { kind: 'Pod', name: e.pod, namespace: 'default' },
      conditions: { ...(e.ready === undefined ? {} : { ready: e.ready }), ...(e.serving === undefined ? {} : { serving: e.serving }), ...(e.terminating === undefined ? {} : { terminating: e.terminating }) },
    })),
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

const addrs = (cla: { endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: { address: string } } } }[] }[] } | undefined) =>
  (cla?.endpoints ?? []).flatMap((l) => l.lbEndpoints.map((e) => e.endpoint.address.socketAddress.address));

test('slices of one service are merged; ready true or unset is sent; not ready and terminating are not', () => {
  const slices = [
    slice('reviews-a', [{ ip: V1_IP, pod: 'reviews-v1-abc', ready: true, serving: true, terminating: false }, { ip: '10.244.0.13', pod: 'gone', ready: false, serving: true, terminating: true }]),
    slice('reviews-b', [{ ip: V2_IP, pod: 'reviews-v2-def' }, { ip: '10.244.0.14', pod: 'starting', ready: false, serving: false, terminating: false }]),
    { ...slice('other', [{ ip: '10.244.0.99', pod: 'x' }]), metadata: { name: 'other', namespace: 'default', labels: { 'kubernetes.io/service-name': 'ratings' } } },
  ];
  const eps = endpointsFromSlices(slices);
  assert.deepEqual(eps.map((e) => `${e.metadata.namespace}/${e.metadata.name}`), ['default/reviews', 'default/ratings']);
  const inputs = { ...bookinfo(), endpoints: eps };
  const push = PushContext.build(inputs, { version: '1' });
  const clas = generateEndpoints(push, 'default');
  assert.deepEqual(addrs(clas.find((c) => c.clusterName === `outbound|9080||${REVIEWS}`)), [V1_IP, V2_IP]);
  assert.deepEqual(addrs(clas.find((c) => c.clusterName === `outbound|9080|v2|${REVIEWS}`)), [V2_IP], 'pod labels found through targetRef');
});

test('slices that are not IPv4 or have no service label are ignored', () => {
  const v6 = { ...slice('reviews-v6', [{ ip: 'fd00::1', pod: 'p' }]), addressType: 'IPv6' as const };
  const unlabelled = { ...slice('loose', [{ ip: '10.0.0.1', pod: 'p' }]), metadata: { name: 'loose', namespace: 'default' } };
  assert.deepEqual(endpointsFromSlices([v6, unlabelled]), []);
});
