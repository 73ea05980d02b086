import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX_MAX, isPrefixLink, isPrefixNetns, nodeBridgeName, nodePrefix, validateKubeletPrefix, validatePrefix } from '../../cluster/network/names.js';
import { isOurNetns, isOurVeth, sandboxNames } from '../../cluster/kubelet/names.js';
import { planNodes } from '../../cluster/embedded.js';

/** Every name the objects of a cluster get: bridges, and per node the sandbox of a few pods. */
function namesOf(prefix: string, nodes: number): { links: string[]; netns: string[]; kubelets: string[] } {
  const plans = planNodes(prefix, '10.235.0.0/16', nodes, '/nonexistent');
  const links: string[] = [];
  const netns: string[] = [];
  for (const p of plans) {
    links.push(p.bridge);
    for (let pod = 0; pod < 20; pod++) {
      const s = sandboxNames(p.kubeletPrefix, `pod-${pod}`);
      links.push(s.hostVeth);
      netns.push(s.netns);
    }
  }
  return { links, netns, kubelets: plans.map((p) => p.kubeletPrefix) };
}

describe('network names', () => {
  it('clusters X and X1 (and X with a longer name) own disjoint names, all within 15 characters', () => {
    for (const [a, b] of [['tcg', 'tcg1'], ['trellis', 'trellis1'], ['abcdefgh', 'abcdefg'], ['x', 'x10']]) {
      for (const [na, nb] of [[1, 1], [2, 1], [1, 2], [3, 3], [10, 10]]) {
        const A = namesOf(a, na);
        const B = namesOf(b, nb);
        for (const l of A.links) assert.ok(l.length <= 15, `${l} fits IFNAMSIZ`);
        for (const l of B.links) assert.ok(l.length <= 15, `${l} fits IFNAMSIZ`);
        const clash = A.links.filter((l) => B.links.includes(l)).concat(A.netns.filter((n) => B.netns.includes(n)), A.kubelets.filter((k) => B.kubelets.includes(k)));
        assert.deepEqual(clash, [], `${a}x${na} vs ${b}x${nb}`);
        // Purge and each kubelet's leftover scan see their own objects only.
        for (const l of B.links) assert.ok(!isPrefixLink(a, l), `${a} does not own link ${l}`);
        for (const n of B.netns) assert.ok(!isPrefixNetns(a, n), `${a} does not own netns ${n}`);
        for (const l of A.links) assert.ok(isPrefixLink(a, l), `${a} owns link ${l}`);
        for (const n of A.netns) assert.ok(isPrefixNetns(a, n), `${a} owns netns ${n}`);
        for (const k of A.kubelets) {
          for (const l of B.links) assert.ok(!isOurVeth(k, l), `kubelet ${k} does not own ${l}`);
          for (const n of B.netns) assert.ok(!isOurNetns(k, n), `kubelet ${k} does not own ${n}`);
        }
      }
    }
  });

  it('the nodes of one cluster own disjoint names; bridges are never a pod veth', () => {
    const plans = planNodes('trellis', '10.235.0.0/16', 3, '/nonexistent');
    assert.deepEqual(plans.map((p) => p.kubeletPrefix), ['trellis-0', 'trellis-1', 'trellis-2']);
    const veths = plans.map((p) => sandboxNames(p.kubeletPrefix, 'uid-1').hostVeth);
    assert.equal(new Set(veths).size, 3);
    for (const p of plans) {
      for (const v of veths) assert.equal(isOurVeth(p.kubeletPrefix, v), v === sandboxNames(p.kubeletPrefix, 'uid-1').hostVeth);
      for (let i = 0; i < 10; i++) assert.ok(!isOurVeth(p.kubeletPrefix, nodeBridgeName('trellis', i)));
    }
    assert.ok(sandboxNames('trellis-1', 'uid-1').hostVeth.length <= 15);
  });

  it('rejects a prefix with the separator or too long for the node veths, naming the limit', () => {
    assert.throws(() => validatePrefix('tcg-1'), /network prefix "tcg-1": must be lowercase letters and digits.*"-" separates/);
    assert.throws(() => validatePrefix('abcdefghi'), new RegExp(`9 characters, at most ${PREFIX_MAX} allowed .*15-character`));
    assert.throws(() => planNodes('a-b', '10.235.0.0/16', 2, '/x'), /network prefix "a-b"/);
    validateKubeletPrefix('tcg');
    validateKubeletPrefix(nodePrefix('tcg', 9));
    assert.throws(() => validateKubeletPrefix('tcg-10'), /kubelet prefix "tcg-10"/);
    assert.throws(() => validateKubeletPrefix('tc-g-1'), /kubelet prefix "tc-g-1"|network prefix "tc-g"/);
    assert.throws(() => nodePrefix('tcg', 10), /node index 10/);
  });
});
