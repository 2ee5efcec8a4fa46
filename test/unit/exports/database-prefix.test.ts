import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { databasesWithPrefix, readDatabasePrefix } from '../../../src/exports/database-prefix';

describe('database prefixes', () => {
  const root = mkdtempSync(join(tmpdir(), 'prefix-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads dbaseprefix from info/current/<engine>, falling back to info/cur', async () => {
    const site = join(root, 'site1');
    mkdirSync(join(site, 'info', 'current'), { recursive: true });
    writeFileSync(join(site, 'info', 'current', 'mysql'), 'enabled = 1\ndbaseprefix = shop1_\n');
    mkdirSync(join(site, 'info', 'cur'), { recursive: true });
    writeFileSync(join(site, 'info', 'cur', 'pgsql'), "dbaseprefix = 'pg1_'\n");
    assert.equal(await readDatabasePrefix(site, 'mysql'), 'shop1_');
    assert.equal(await readDatabasePrefix(site, 'pgsql'), 'pg1_');
  });

  it('no file, no key or an empty value: no prefix, so no databases of that engine', async () => {
    const site = join(root, 'site2');
    mkdirSync(join(site, 'info', 'current'), { recursive: true });
    assert.equal(await readDatabasePrefix(site, 'mysql'), undefined);
    writeFileSync(join(site, 'info', 'current', 'mysql'), 'enabled = 0\n');
    assert.equal(await readDatabasePrefix(site, 'mysql'), undefined);
    writeFileSync(join(site, 'info', 'current', 'pgsql'), 'dbaseprefix =\n');
    assert.equal(await readDatabasePrefix(site, 'pgsql'), undefined);
  });

  it('matches the prefix literally: its underscore is not a wildcard, and the prefix alone is not a database', () => {
    const names = ['shop1_db', 'shop1xdb', 'shop1_', 'shop10_db', 'SHOP1_db', 'a_shop1_db', 'shop1_b%'];
    assert.deepEqual(databasesWithPrefix(names, 'shop1_'), ['shop1_b%', 'shop1_db']);
  });
});
