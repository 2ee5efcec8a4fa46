import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/common/errors/app-error';
import { parseSiteRef } from '../../src/sites/site-ref';

describe('parseSiteRef', () => {
  it('accepts siteN and domain names, lower-cased', () => {
    assert.deepEqual(parseSiteRef('site12'), { kind: 'id', id: 'site12' });
    assert.deepEqual(parseSiteRef('Example.COM'), { kind: 'domain', domain: 'example.com' });
    assert.deepEqual(parseSiteRef('xn--bcher-kva.example'), { kind: 'domain', domain: 'xn--bcher-kva.example' });
  });

  it('refuses traversal, separators, NUL, numbers-only TLDs and over-long input', () => {
    for (const bad of [
      '..',
      '../site1',
      'site1/..',
      'site0',
      'site012',
      'a\0b.com',
      '1.2.3.4',
      'a'.repeat(254),
      '',
      'exa mple.com',
      '.example.com',
      'example.com.',
      'ex_ample.com',
      `${'a'.repeat(64)}.com`,
    ]) {
      assert.throws(() => parseSiteRef(bad), AppError, JSON.stringify(bad));
    }
    assert.throws(() => parseSiteRef(undefined), AppError);
  });
});
