import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogFdParser, parseLogRecords, type DuplicityRecord } from '../../../src/providers/duplicity/duplicity-log-fd';
import { fixtureCases, fixtureLog, fixtureMeta, fixtureRecords } from './duplicity-fixtures';

const LEVELS = new Set(['ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG']);

describe('LogFdParser on every captured fixture', () => {
  const cases = fixtureCases();

  it('finds the fixtures', () => {
    assert.ok(cases.length >= 40, `only ${cases.length} fixtures`);
  });

  for (const name of cases) {
    it(`${name}: every line belongs to a record and the meta matches`, () => {
      const parser = new LogFdParser();
      const records: DuplicityRecord[] = [];
      for (const line of fixtureLog(name).split('\n')) records.push(...parser.push(line));
      records.push(...parser.flush());
      assert.equal(parser.skippedLines, 0);
      for (const record of records) {
        assert.ok(LEVELS.has(record.level), record.level);
        assert.ok(Number.isInteger(record.code) && record.code > 0, String(record.code));
      }
      const meta = fixtureMeta(name);
      assert.equal(meta.case, name);
      assert.equal(meta.command[0], 'duplicity');
      // A failed run's exit code is the code of an ERROR record (duplicity exits with its error code), kills aside.
      if (meta.exitCode !== 0 && meta.exitCode !== 137) {
        assert.ok(
          records.some((r) => r.level === 'ERROR' && r.code === meta.exitCode),
          `no ERROR ${meta.exitCode} in ${name}`,
        );
      }
    });
  }
});

describe('LogFdParser mechanics', () => {
  it('splits a record into control line, text and the blank line that ends it', () => {
    const records = fixtureRecords('error-source-mismatch');
    assert.equal(records.length, 3);
    assert.deepEqual(records[2], {
      level: 'ERROR',
      code: 42,
      extra: "'/tmp/dupcap/src/sub' '/tmp/dupcap/src'",
      text: [
        'Fatal Error: Backup source directory has changed.',
        "Current directory: b'/tmp/dupcap/src/sub'",
        "Previous directory: b'/tmp/dupcap/src'",
        '',
        'Aborting because you may have accidentally tried to backup two different data sets to the same remote location, or using the same archive directory.  If this is not a mistake, use the --allow-source-mismatch switch to avoid seeing this message',
      ],
    });
  });

  it('keeps a multi-line extra (collection-status) apart from the text', () => {
    const status = fixtureRecords('collection-status-one-chain').find((r) => r.code === 3 && r.level === 'INFO');
    assert.ok(status);
    assert.equal(
      status.extra,
      [
        '',
        'backend BackendWrapper',
        'archive-dir (. dir)',
        'chain-complete',
        ' full 20261126T212109Z 1 noenc',
        ' inc 20261126T212120Z 1 noenc',
        ' inc 20261126T212128Z 1 noenc',
        'orphaned-sets-num 0',
        'incomplete-sets-num 0',
      ].join('\n'),
    );
    assert.equal(status.text[0], 'Collection Status');
    assert.equal(status.text.at(-1), 'No orphaned or incomplete backup sets found.');
  });

  it('keeps a file name with a newline in one record: escaped in the extra, split over two text lines', () => {
    const record = fixtureRecords('full-verbose').find((r) => r.code === 4 && r.extra.startsWith("'new"));
    assert.deepEqual(record, { level: 'INFO', code: 4, extra: "'new\\nline.txt'", text: ['A new', 'line.txt'] });
  });

  it('gives a record with no text (INFO 2 from the --progress dry run) an empty text', () => {
    const record = fixtureRecords('full-progress-verbose').find((r) => r.code === 2);
    assert.deepEqual(record, { level: 'INFO', code: 2, extra: '10489856', text: [] });
  });

  it('streams: records come out as their blank line arrives, the same as parsing the whole log', () => {
    const log = fixtureLog('incremental-verbose');
    const parser = new LogFdParser();
    const streamed: DuplicityRecord[] = [];
    let emittedOnBlank = 0;
    for (const line of log.split('\n')) {
      const out = parser.push(line);
      if (out.length > 0) {
        assert.equal(line, '');
        emittedOnBlank += out.length;
      }
      streamed.push(...out);
    }
    assert.deepEqual(parser.flush(), []);
    assert.equal(emittedOnBlank, streamed.length);
    assert.deepEqual(streamed, parseLogRecords(log));
    assert.equal(streamed.length, 70);
  });

  it('SIGKILL leaves whole records: duplicity writes each one at once, so the log ends on a blank line', () => {
    const log = fixtureLog('full-killed');
    assert.ok(log.endsWith('\n\n'));
    const records = parseLogRecords(log);
    assert.deepEqual(records.at(-1), { level: 'INFO', code: 2, extra: '201920512', text: ['Processed volume 39'] });
  });

  it('returns from flush() a record the stream ended inside', () => {
    const parser = new LogFdParser();
    assert.deepEqual(parser.push('INFO 2 201920512'), []);
    assert.deepEqual(parser.push('. Processed volume 39'), []);
    assert.deepEqual(parser.flush(), [{ level: 'INFO', code: 2, extra: '201920512', text: ['Processed volume 39'] }]);
    assert.deepEqual(parser.flush(), []);
  });

  it('accepts CRLF, a bare "." text line, and skips text outside records', () => {
    const parser = new LogFdParser();
    assert.deepEqual(parser.push('stray'), []);
    assert.deepEqual(parser.push('WARNING 1\r'), []);
    assert.deepEqual(parser.push('. first'), []);
    assert.deepEqual(parser.push('.'), []);
    assert.deepEqual(parser.push(''), [{ level: 'WARNING', code: 1, extra: '', text: ['first', ''] }]);
    assert.equal(parser.skippedLines, 1);
  });

  it('closes a record whose blank line never came when the next header arrives', () => {
    const records = parseLogRecords(['NOTICE 1', '. one', 'ERROR 13', '. two', '']);
    assert.deepEqual(records, [
      { level: 'NOTICE', code: 1, extra: '', text: ['one'] },
      { level: 'ERROR', code: 13, extra: '', text: ['two'] },
    ]);
  });
});
