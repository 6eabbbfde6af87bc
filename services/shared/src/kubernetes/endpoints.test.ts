import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Endpoint, V1EndpointSlice } from '@kubernetes/client-node';
import { endpointsFromSlices, httpPort, isReady, sameEndpoints } from './endpoints.js';

function slice(name: string, endpoints: V1Endpoint[], opts: Partial<V1EndpointSlice> = {}): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: { name },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
    ...opts,
  };
}

const pod = (name: string, address: string, conditions?: V1Endpoint['conditions']): V1Endpoint => ({
  addresses: [address],
  targetRef: { kind: 'Pod', name },
  ...(conditions ? { conditions } : {}),
});

describe('endpointsFromSlices', () => {
  test('ready is the API semantics: nil means ready, terminating never is', () => {
    assert.equal(isReady({ addresses: ['a'] }), true);
    assert.equal(isReady({ addresses: ['a'], conditions: {} }), true);
    assert.equal(isReady({ addresses: ['a'], conditions: { ready: true } }), true);
    assert.equal(isReady({ addresses: ['a'], conditions: { ready: false } }), false);
    assert.equal(isReady({ addresses: ['a'], conditions: { ready: true, terminating: true } }), false);
    assert.equal(
      isReady({ addresses: ['a'], conditions: { ready: false, serving: true, terminating: true } }),
      false,
    );
  });

  test('merges slices, keeps only ready endpoints, sorts by pod name, names by targetRef', () => {
    const result = endpointsFromSlices(
      [
        slice('svc-b', [pod('catalog-2', '10.0.0.12'), pod('catalog-9', '10.0.0.19', { ready: false })]),
        slice('svc-a', [
          pod('catalog-1', '10.0.0.11', { ready: true }),
          pod('catalog-3', '10.0.0.13', { terminating: true }),
        ]),
      ],
      'http',
    );
    assert.deepEqual(result, [
      { name: 'catalog-1', url: 'http://10.0.0.11:8080' },
      { name: 'catalog-2', url: 'http://10.0.0.12:8080' },
    ]);
  });

  test("'every': also the endpoints not ready yet and those terminating (invalidation targets)", () => {
    const slices = [
      slice('svc-a', [
        pod('front-1', '10.0.0.11', { ready: true }),
        pod('front-2', '10.0.0.12', { ready: false }),
        pod('front-3', '10.0.0.13', { ready: false, serving: true, terminating: true }),
      ]),
      slice('svc-b', [{ addresses: [], targetRef: { kind: 'Pod', name: 'front-4' } }]),
    ];
    assert.deepEqual(
      endpointsFromSlices(slices, 'http', 'every').map((e) => e.name),
      ['front-1', 'front-2', 'front-3'],
      'every pod with an address, whatever its conditions; none without one',
    );
    assert.deepEqual(
      endpointsFromSlices(slices, 'http').map((e) => e.name),
      ['front-1'],
      'the default stays ready only',
    );
  });

  test('falls back to hostname, then the address, for the name', () => {
    const result = endpointsFromSlices(
      [slice('s', [{ addresses: ['10.0.0.5'], hostname: 'web-0' }, { addresses: ['10.0.0.4'] }])],
      'http',
    );
    assert.deepEqual(
      result.map((e) => e.name),
      ['10.0.0.4', 'web-0'],
    );
  });

  test('deduplicates an endpoint listed in two slices', () => {
    const result = endpointsFromSlices(
      [slice('a', [pod('p', '10.0.0.1')]), slice('b', [pod('p', '10.0.0.1')])],
      'http',
    );
    assert.equal(result.length, 1);
  });

  test('uses the port named DISCOVERY_PORT_NAME, or a sole unnamed port', () => {
    const twoPorts = slice('s', [], {
      ports: [
        { name: 'metrics', port: 9090 },
        { name: 'http', port: 8080 },
      ],
    });
    assert.equal(httpPort(twoPorts, 'http'), 8080);
    assert.equal(httpPort(twoPorts, 'web'), undefined);
    assert.equal(httpPort(slice('s', [], { ports: [{ name: '', port: 80 }] }), 'http'), 80);
    assert.equal(
      httpPort(slice('s', [], { ports: [{ name: 'http', port: 53, protocol: 'UDP' }] }), 'http'),
      undefined,
    );
    // A slice without the port contributes nothing (its endpoints serve something else).
    assert.deepEqual(
      endpointsFromSlices(
        [slice('s', [pod('p', '10.0.0.1')], { ports: [{ name: 'grpc', port: 9000 }] })],
        'http',
      ),
      [],
    );
  });

  test('brackets IPv6 addresses and skips FQDN slices', () => {
    const v6 = slice('s6', [pod('p6', 'fd00::1')], { addressType: 'IPv6' });
    const fqdn = slice('sf', [pod('pf', 'example.com')], { addressType: 'FQDN' });
    assert.deepEqual(endpointsFromSlices([v6, fqdn], 'http'), [{ name: 'p6', url: 'http://[fd00::1]:8080' }]);
  });

  test('sameEndpoints compares names and URLs in order', () => {
    const a = [{ name: 'x', url: 'http://1:1' }];
    assert.equal(sameEndpoints(a, [{ name: 'x', url: 'http://1:1' }]), true);
    assert.equal(sameEndpoints(a, [{ name: 'y', url: 'http://1:1' }]), false);
    assert.equal(sameEndpoints(a, []), false);
  });
});
