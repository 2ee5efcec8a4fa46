import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  exportFileName,
  exportStamp,
  fileToken,
  isPartialName,
  parseExportFileName,
  partialNameOf,
  openPrivateDir,
  stampToIso,
} from '../../../src/exports/export-files';

describe('export file names', () => {
  it('stamps are UTC, sortable, with milliseconds', () => {
    const stamp = exportStamp(new Date('2026-11-26T02:30:00.123Z'));
    assert.equal(stamp, '20261126T023000.123Z');
    assert.equal(stampToIso(stamp), '2026-11-26T02:30:00.123Z');
  });

  it('names are <db>.<stamp>.sql.gz or .dump and parse back', () => {
    assert.equal(exportFileName('mysql', 'shop1_db', '20261126T023000.123Z'), 'shop1_db.20261126T023000.123Z.sql.gz');
    assert.equal(exportFileName('pgsql', 'shop1_db', '20261126T023000.123Z'), 'shop1_db.20261126T023000.123Z.dump');
    assert.deepEqual(parseExportFileName('shop1_db.20261126T023000.123Z.sql.gz'), {
      token: 'shop1_db',
      stamp: '20261126T023000.123Z',
      extension: 'sql.gz',
    });
    assert.equal(parseExportFileName('shop1_db.sql.gz'), undefined);
    assert.equal(parseExportFileName('.shop1_db.20261126T023000.123Z.sql.gz.partial'), undefined);
  });

  it('a database name can never escape the directory or fake another name', () => {
    assert.equal(fileToken('shop1_db'), 'shop1_db');
    assert.equal(fileToken('../etc/x'), '%2E%2E%2Fetc%2Fx');
    assert.equal(fileToken('a.20261126T023000.123Z'), 'a%2E20261126T023000%2E123Z');
    assert.equal(fileToken('é'), '%C3%A9');
    const name = exportFileName('pgsql', 'we.ird/näme', '20261126T023000.123Z');
    assert.equal(parseExportFileName(name)?.token, fileToken('we.ird/näme'));
  });

  it('partial names are hidden and recognisable', () => {
    const partial = partialNameOf('db.20261126T023000.123Z.dump');
    assert.equal(partial, '.db.20261126T023000.123Z.dump.partial');
    assert.equal(isPartialName(partial), true);
    assert.equal(isPartialName('db.20261126T023000.123Z.dump'), false);
  });
});

describe('openPrivateDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'private-dir-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the path, the last components 0700 whatever the umask or an earlier mode', async () => {
    const site = join(root, 'site1');
    mkdirSync(join(site, 'shadow', 'var', 'backups', 'databases'), { recursive: true, mode: 0o755 });
    const opened = await openPrivateDir(site, 'shadow/var/backups/databases/mysql', 2);
    await opened.close();
    const dir = join(site, 'shadow/var/backups/databases/mysql');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(site, 'shadow/var/backups/databases')).mode & 0o777, 0o700);
    assert.equal(statSync(join(site, 'shadow/var/backups')).mode & 0o777, 0o755);
  });

  it('refuses a symlink anywhere on the way (a site owner must not redirect root’s writes)', async () => {
    const site = join(root, 'site2');
    mkdirSync(join(site, 'shadow', 'var'), { recursive: true });
    mkdirSync(join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), join(site, 'shadow', 'var', 'backups'));
    await assert.rejects(
      openPrivateDir(site, 'shadow/var/backups/databases/mysql', 2),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'unsafe-path');
        assert.match(error.message, /shadow\/var\/backups is not a plain directory/);
        return true;
      },
    );
  });

  it('refuses .. in the relative path', async () => {
    await assert.rejects(openPrivateDir(root, 'shadow/../../etc', 1), /'\.\.'/);
  });
});
