import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobFailure } from '../../../src/jobs/job-failure';
import {
  RESTORE_JOB,
  assertConfigPath,
  consoleQuote,
  globBase,
  markPattern,
  renderCommonConfig,
  renderSubjectConfig,
  resourcesFor,
  type DirectorSettings,
} from '../../../src/providers/bacula/bacula-resources';

const SETTINGS: DirectorSettings = {
  client: 'apiscp-fd',
  storage: 'File1',
  pool: 'File',
  jobDefaults: 'apiscp-backup-api-defaults',
  compression: 'GZIP',
};

function failureCode(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof JobFailure, String(error));
    return error.code;
  }
  assert.fail('expected a JobFailure');
}

describe('Bacula resources of a subject', () => {
  it('names the Job, FileSet and file after the subject key', () => {
    assert.deepEqual(resourcesFor('site12'), {
      job: 'apiscp-site12',
      fileSet: 'apiscp-site12-fs',
      file: 'apiscp-site12.conf',
    });
    assert.equal(resourcesFor('server').job, 'apiscp-server');
  });

  it('refuses keys that could break out of a resource name', () => {
    for (const key of ['', 'Site12', 'site 12', 'site12"', '../site1', 'site-1', 'a'.repeat(64), 'site12\n}']) {
      assert.equal(
        failureCode(() => resourcesFor(key)),
        'bacula-invalid-subject',
        JSON.stringify(key),
      );
    }
  });

  it('refuses paths that cannot be quoted safely into a configuration file', () => {
    for (const path of ['relative/path', '/a/"b', '/a/\\b', '/a/b\n', '/a/../b', '/a/b/', '/a//b']) {
      assert.equal(
        failureCode(() => assertConfigPath(path, 'Include path')),
        'bacula-invalid-path',
        JSON.stringify(path),
      );
    }
    assertConfigPath('/home/virtual/site12/shadow', 'Include path');
    assertConfigPath('/', 'Include path');
    assertConfigPath('/home/virtual/é ü', 'Include path');
  });

  it('renders a site: both paths with MD5, ACLs, xattrs and compression, shadow/var/lib excluded, Accurate on', () => {
    const { text, expected } = renderSubjectConfig(
      {
        key: 'site12',
        root: '/home/virtual/site12',
        include: ['/home/virtual/site12/shadow', '/home/virtual/site12/info'],
        exclude: ['/home/virtual/site12/shadow/var/lib'],
      },
      SETTINGS,
    );
    assert.equal(
      text,
      [
        '# Written by apiscp-backup-api: rewritten before each backup of this subject, do not edit.',
        'FileSet {',
        '  Name = "apiscp-site12-fs"',
        '  Include {',
        '    Options {',
        '      signature = MD5',
        '      aclsupport = yes',
        '      xattrsupport = yes',
        '      compression = GZIP',
        '    }',
        '    File = "/home/virtual/site12/shadow"',
        '    File = "/home/virtual/site12/info"',
        '  }',
        '  Exclude {',
        '    File = "/home/virtual/site12/shadow/var/lib"',
        '  }',
        '}',
        '',
        'Job {',
        '  Name = "apiscp-site12"',
        '  JobDefs = "apiscp-backup-api-defaults"',
        '  Type = Backup',
        '  FileSet = "apiscp-site12-fs"',
        '  Client = "apiscp-fd"',
        '  Storage = "File1"',
        '  Pool = "File"',
        '  Accurate = yes',
        '}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(expected, {
      include: ['/home/virtual/site12/shadow', '/home/virtual/site12/info'],
      exclude: ['/home/virtual/site12/shadow/var/lib'],
    });
  });

  it('leaves compression out when it is none', () => {
    const { text } = renderSubjectConfig(
      { key: 'site1', root: '/s', include: ['/s/shadow'], exclude: [] },
      { ...SETTINGS, compression: 'none' },
    );
    assert.doesNotMatch(text, /compression/);
    assert.doesNotMatch(text, /Exclude/);
  });

  it('renders globs as an Include each, walked from their wildcard-free base', () => {
    assert.equal(globBase('/var/lib/mysql/mysql-grants*'), '/var/lib/mysql');
    assert.equal(globBase('/var/lib/pgsql/*/backups'), '/var/lib/pgsql');
    assert.equal(globBase('/*.conf'), '/');
    const { text, expected } = renderSubjectConfig(
      {
        key: 'server',
        root: '/',
        include: ['/var/lib/mysql/mysql-grants*', '/var/lib/pgsql/*/backups', '/var/backup'],
        exclude: ['/var/backup/tmp', '/var/backup/*.part'],
      },
      SETTINGS,
    );
    assert.deepEqual(expected, {
      include: ['/var/backup', '/var/lib/mysql', '/var/lib/pgsql'],
      exclude: ['/var/backup/tmp'],
    });
    // A wildcard in the last part only: everything else under the base is left out, directories included.
    assert.match(
      text,
      /wild = "\/var\/lib\/mysql\/mysql-grants\*"\n {6}wild = "\/var\/lib\/mysql\/mysql-grants\*\/\*"\n {4}\}\n {4}Options \{\n {6}exclude = yes\n {6}wild = "\/var\/lib\/mysql\/\*"\n {4}\}\n {4}File = "\/var\/lib\/mysql"/,
    );
    // A wildcard higher up: directories must still be walked, so only files are left out.
    assert.match(text, /exclude = yes\n {6}wildfile = "\/var\/lib\/pgsql\/\*"\n {4}\}\n {4}File = "\/var\/lib\/pgsql"/);
    // Excluded globs come first in every Include (the first Options that matches wins).
    const includes = text.split('  Include {').slice(1);
    assert.equal(includes.length, 3);
    for (const include of includes)
      assert.match(include, /^\n {4}Options \{\n {6}exclude = yes\n {6}wild = "\/var\/backup\/\*\.part"/);
    assert.match(text, /Exclude \{\n {4}File = "\/var\/backup\/tmp"\n {2}\}/);
  });

  it('refuses a subject with nothing to back up', () => {
    assert.equal(
      failureCode(() => renderSubjectConfig({ key: 'site1', root: '/s', include: [], exclude: [] }, SETTINGS)),
      'bacula-invalid-subject',
    );
  });

  it('renders the shared Restore job', () => {
    const text = renderCommonConfig(SETTINGS);
    assert.match(
      text,
      new RegExp(`Name = "${RESTORE_JOB}"\\n {2}JobDefs = "apiscp-backup-api-defaults"\\n {2}Type = Restore`),
    );
    assert.match(text, /Client = "apiscp-fd"/);
    assert.match(text, /Where = "\/nonexistent\/apiscp-backup-api\/restores"/);
  });
});

describe('bconsole quoting', () => {
  it('quotes arguments the way bconsole unquotes them', () => {
    assert.equal(consoleQuote('/a b/c'), '"/a b/c"');
    assert.equal(consoleQuote('q"uote'), '"q\\"uote"');
    assert.equal(consoleQuote('b\\s'), '"b\\\\s"');
  });

  it('escapes mark patterns for fnmatch, then for bconsole (as verified against the director)', () => {
    // Sent as "st\\*r.txt": bconsole makes it st\*r.txt, fnmatch matches the literal name st*r.txt only.
    assert.equal(markPattern('st*r.txt'), '"st\\\\*r.txt"');
    // Sent as "h\\\\i" (four backslashes): the file named h\i.
    assert.equal(markPattern('h\\i'), '"h\\\\\\\\i"');
    assert.equal(markPattern('d[1]?'), '"d\\\\[1]\\\\?"');
    assert.equal(markPattern('sp ace'), '"sp ace"');
  });
});
