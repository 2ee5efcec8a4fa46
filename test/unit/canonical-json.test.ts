import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from '../../src/idempotency/canonical-json';

describe('canonicalJson (idempotency fingerprints)', () => {
  it('is the same for the same JSON with keys reordered at any depth and other spacing', () => {
    const a = JSON.parse('{"level":"full","provider":"duplicity","x":{"b":1,"a":[{"d":2,"c":3}]}}') as unknown;
    const b = JSON.parse('{ "x" : { "a" : [ { "c":3, "d":2.0 } ], "b":1 }, "provider":"duplicity", "level":"full" }');
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(canonicalJson(a), '{"level":"full","provider":"duplicity","x":{"a":[{"c":3,"d":2}],"b":1}}');
  });

  it('differs when the meaning differs: a value, a key, or the order of an array', () => {
    assert.notEqual(canonicalJson({ level: 'full' }), canonicalJson({ level: 'incremental' }));
    assert.notEqual(canonicalJson({ level: 'full' }), canonicalJson({ level: 'full', provider: 'duplicity' }));
    assert.notEqual(canonicalJson({ paths: ['a', 'b'] }), canonicalJson({ paths: ['b', 'a'] }));
    assert.notEqual(canonicalJson(null), canonicalJson({}));
  });
});
