import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyMessage,
  isAuthorizationFailure,
  isResourceShown,
  markedCount,
  messagesOf,
  parseApiBlocks,
  parseClientJobProgress,
  parseConfigErrors,
  parseConsoleDirector,
  parseRunningJobs,
  parseEstimate,
  parseGreeting,
  parseJobLog,
  parseJobRecords,
  parseJobSummary,
  parseQueuedJobId,
  parseRestoreSelection,
  parseShownClient,
  parseShownFileSet,
  parseShownStorage,
  parseTable,
  parseWaitStatus,
  splitReplies,
  unreachableDaemon,
} from '../../../src/providers/bacula/bconsole-output';
import { fixture } from './bacula-fixtures';

describe('bconsole output: sessions', () => {
  it('reads the greeting, and finds none when the director is down or the password is wrong', () => {
    assert.deepEqual(parseGreeting(fixture('run-queued.txt')), { director: 't-dir', version: '9.6.7' });
    assert.equal(parseGreeting(fixture('bconsole-director-down.txt')), null);
    assert.equal(parseGreeting(fixture('bconsole-bad-password.txt')), null);
    assert.equal(isAuthorizationFailure(fixture('bconsole-bad-password.txt')), true);
    assert.equal(isAuthorizationFailure(fixture('bconsole-director-down.txt')), false);
  });

  it('splits a session into the reply of each command', () => {
    const commands = [
      'show fileset=apiscp-site12-fs',
      'show client=t-fd',
      'show storage=File1',
      'show pool=File',
      'show jobdefs=apiscp-backup-api-defaults',
      'show client=nosuch',
      'show storage=nosuch',
      'show pool=nosuch',
      'show jobdefs=nosuch',
      'show fileset=nosuch',
      'version',
    ];
    const replies = splitReplies(fixture('show-resources.txt'), commands);
    assert.equal(replies.length, commands.length);
    assert.match(replies[0], /^FileSet: name=apiscp-site12-fs/);
    assert.match(replies[1], /^Client: Name=t-fd/);
    assert.equal(replies[5].trim(), 'client resource nosuch not found.');
    assert.match(replies[10], /t-dir Version: 9\.6\.7/);
    assert.equal(isResourceShown(replies[1], 'Client'), true);
    assert.equal(isResourceShown(replies[2], 'Storage'), true);
    assert.equal(isResourceShown(replies[3], 'Pool'), true);
    assert.equal(isResourceShown(replies[5], 'Client'), false);
    assert.equal(isResourceShown(replies[6], 'Storage'), false);
    assert.equal(isResourceShown(replies[7], 'Pool'), false);
    assert.equal(isResourceShown(replies[9], 'FileSet'), false);
    assert.deepEqual(parseShownFileSet(replies[0]), {
      name: 'apiscp-site12-fs',
      include: ['/tmp/bacproto/site/site12/shadow', '/tmp/bacproto/site/site12/info'],
      exclude: ['/tmp/bacproto/site/site12/shadow/var/lib'],
      patterns: [],
    });
    assert.equal(parseShownFileSet(replies[9]), null);
    assert.deepEqual(parseShownClient(replies[1]), { name: 't-fd', address: '127.0.0.1', port: 19102 });
    assert.deepEqual(parseShownStorage(replies[2]), { name: 'File1', address: '127.0.0.1', port: 19103 });
    assert.equal(parseShownClient(replies[5]), null);
  });

  it('knows a Job shown from one not found', () => {
    assert.equal(isResourceShown(fixture('show-job.txt'), 'Job'), true);
    assert.equal(isResourceShown('show job=nosuch\njob resource nosuch not found.\n', 'Job'), false);
  });

  it('reads the JobId of a queued job, the status `wait` ends with, and an estimate', () => {
    assert.equal(parseQueuedJobId(fixture('run-queued.txt')), 1);
    assert.equal(parseQueuedJobId(fixture('restore-all-queued.txt')), 4);
    assert.equal(parseQueuedJobId(fixture('show-job.txt')), null);
    assert.equal(parseWaitStatus(fixture('wait-ok.txt')), 'T');
    assert.equal(parseWaitStatus('JobId=999\nJobStatus=Unknown term code (?)\n'), '?');
    assert.deepEqual(parseEstimate(fixture('estimate-full.txt')), { files: 47, bytes: 838_860_810 });
    assert.equal(parseEstimate(fixture('estimate-fd-down.txt')), null);
    assert.equal(unreachableDaemon(fixture('estimate-fd-down.txt')), 'client');
  });

  it('reads the Director resource of a bconsole configuration', () => {
    const config = `#\n# comment\nDirector {\n  Name = t-dir\n  DIRport = 19101   # our port\n  address = 127.0.0.1\n  Password = "x;y"\n}\n`;
    assert.deepEqual(parseConsoleDirector(config), { name: 't-dir', address: '127.0.0.1', port: 19101 });
    assert.deepEqual(parseConsoleDirector('Director { Name = d; address = backup.example.net; Password = "p" }'), {
      name: 'd',
      address: 'backup.example.net',
      port: 9101,
    });
    assert.equal(parseConsoleDirector('Console { Name = c }'), null);
  });
});

describe('bconsole output: the catalog', () => {
  it('reads a job record from llist jobid=N', () => {
    const [record, ...rest] = parseJobRecords(fixture('llist-jobid-ok.txt'));
    assert.equal(rest.length, 0);
    assert.deepEqual(record, {
      jobId: 1,
      name: 'apiscp-site12',
      job: 'apiscp-site12.2026-11-26_21.21.36_03',
      type: 'B',
      level: 'F',
      clientName: 't-fd',
      status: 'T',
      startTime: '2026-11-26 21:21:38',
      endTime: '2026-11-26 21:21:38',
      jobTDate: 1795728098,
      files: 6,
      bytes: 167,
      readBytes: 10,
      errors: 0,
      fileSet: 'apiscp-site12-fs',
      purgedFiles: false,
    });
  });

  it('reads every job of llist jobname=X, whatever its status', () => {
    const records = parseJobRecords(fixture('llist-jobname.txt'));
    assert.deepEqual(
      records.map((record) => `${record.jobId}${record.level}${record.status}`),
      ['1FT', '2IT', '3FA', '5IT', '7IT', '8If', '9If', '17DT', '18IT'],
    );
    assert.equal(records[1].bytes, 839_193_600);
    assert.deepEqual(parseJobRecords(fixture('llist-jobname-empty.txt')), []);
  });

  it('reads T with JobErrors as a job with errors', () => {
    const [record] = parseJobRecords(fixture('llist-jobid-warnings.txt'));
    assert.equal(record.status, 'T');
    assert.equal(record.errors, 1);
  });

  it('reads the tables of list jobs', () => {
    const rows = parseTable(fixture('list-jobs.txt'));
    assert.deepEqual(rows, [
      {
        JobId: '1',
        Name: 'apiscp-site12',
        StartTime: '2026-11-26 21:21:38',
        Type: 'B',
        Level: 'F',
        JobFiles: '6',
        JobBytes: '167',
        JobStatus: 'T',
      },
    ]);
  });
});

describe('bconsole output: job logs', () => {
  it('finds the warnings of a job that ended "Backup OK -- with warnings"', () => {
    const log = parseJobLog(fixture('llist-joblog-warnings.txt'));
    assert.ok(log.length >= 5);
    assert.deepEqual(messagesOf(log, ['warning', 'error']), [
      't-fd: Could not stat "/tmp/bacproto/site/site13/missing": ERR=No such file or directory',
    ]);
    const summary = parseJobSummary(log);
    assert.equal(summary.get('Termination'), 'Backup OK -- with warnings');
    assert.equal(summary.get('Non-fatal FD errors'), '1');
    assert.ok(log.every((entry) => !/JobId: {2,}\d/.test(entry.text) || entry.severity === 'summary'));
  });

  it('finds the fatal errors of a job whose file daemon or storage daemon was down, and which daemon it was', () => {
    const fd = parseJobLog(fixture('llist-joblog-fd-down.txt'));
    const fdErrors = messagesOf(fd, ['fatal', 'error']);
    assert.match(
      fdErrors[0],
      /^t-dir: Fatal error: bsockcore\.c:208 Unable to connect to Client: t-fd on 127\.0\.0\.1:19102\. ERR=Connection refused$/,
    );
    assert.equal(unreachableDaemon(fdErrors.join('\n')), 'client');
    assert.equal(parseJobSummary(fd).get('Termination'), '*** Backup Error ***');

    const sd = parseJobLog(fixture('llist-joblog-sd-down.txt'));
    const sdErrors = messagesOf(sd, ['fatal', 'error']);
    assert.match(sdErrors.join('\n'), /Unable to connect to Storage daemon on 127\.0\.0\.1:19103/);
    assert.equal(unreachableDaemon(sdErrors.join('\n')), 'storage');
  });

  it('reads a cancelled job log and its termination', () => {
    const log = parseJobLog(fixture('llist-joblog-cancelled.txt'));
    assert.equal(parseJobSummary(log).get('Termination'), 'Backup Canceled');
    assert.deepEqual(messagesOf(log, ['fatal', 'error', 'warning']), []);
    assert.equal(log[0].daemon, 't-dir');
    assert.equal(log[0].time, '2026-11-26 21:22:36');
    assert.match(log[0].text, /^Start Backup JobId 3/);
  });

  it('tells why an incremental became a full, from a session of llist + llist joblog', () => {
    const commands = ['llist jobid=14', 'llist joblog jobid=14'];
    const [recordReply, logReply] = splitReplies(fixture('llist-jobid-and-joblog-upgraded.txt'), commands);
    const records = parseJobRecords(recordReply);
    assert.deepEqual(
      records.map((record) => [record.jobId, record.level]),
      [[14, 'F']],
    );
    const log = parseJobLog(logReply);
    assert.ok(
      log.some((entry) => entry.text === 'No prior Full backup Job record found.' && entry.severity === 'info'),
    );
    assert.equal(parseJobSummary(log).get('Backup Level'), 'Full (upgraded from Incremental)');
  });

  it('classifies messages by the prefixes Bacula gives them', () => {
    assert.equal(classifyMessage('Fatal error: boom'), 'fatal');
    assert.equal(classifyMessage('Error: lost'), 'error');
    assert.equal(classifyMessage('Warning: odd'), 'warning');
    assert.equal(classifyMessage('     Could not open "/x": ERR=Permission denied'), 'warning');
    assert.equal(classifyMessage('Start Backup JobId 3'), 'info');
    assert.equal(
      classifyMessage('Error: Bacula t-dir 9.6.7 (10Dec20):\n  Termination:  *** Backup Error ***'),
      'summary',
    );
  });
});

describe('bconsole output: the running jobs of `.status dir running`', () => {
  it('reads each running job with its description and status letter, a long job name included', () => {
    const jobs = parseRunningJobs(fixture('status-dir-running.txt'));
    assert.deepEqual(
      [...(jobs?.values() ?? [])],
      [
        { jobId: 2, status: 'R', description: 'is running' },
        { jobId: 3, status: 'C', description: 'is waiting execution' },
      ],
    );
  });

  it('reads "No Jobs running." as an empty listing, and a reply that is no listing as null (never "ended")', () => {
    assert.equal(parseRunningJobs(fixture('status-dir-idle.txt'))?.size, 0);
    assert.equal(parseRunningJobs('Connecting to Director 127.0.0.1:9101\n.status dir running\n'), null);
    assert.equal(parseRunningJobs(fixture('llist-jobid-ok.txt')), null);
  });

  it('knows the failed states the follower stops waiting on', () => {
    const row = (description: string) =>
      parseRunningJobs(
        ` JobId  Type Level     Files     Bytes  Name              Status\n${'='.repeat(70)}\n     7  Back Incr         12    1.2 M  apiscp-site1      ${description}\n====\n`,
      )?.get(7)?.status;
    assert.equal(row('has a fatal error'), 'f');
    assert.equal(row('has erred'), 'E');
    assert.equal(row('has been canceled'), 'A');
    assert.equal(row('is waiting on Storage "File1"'), 'C');
  });
});

describe('bconsole output: .api 2 status', () => {
  it('reads the file daemon progress from `.status client` without `.api` too (the follower asks so)', () => {
    const progress = parseClientJobProgress(fixture('status-client-running.txt'), 2);
    assert.equal(progress?.files, 5101);
    assert.equal(progress?.readBytes, 2_020_000);
    assert.equal(parseClientJobProgress(fixture('status-client-running.txt'), 3), null);
  });

  it('reads the file daemon progress of a running backup', () => {
    assert.deepEqual(parseClientJobProgress(fixture('api-status-client-running.txt'), 2), {
      jobId: 2,
      status: 'R',
      files: 2,
      bytes: 22_356_642,
      readBytes: 22_413_312,
      examined: 7,
      expectedFiles: null,
      currentFile: '/tmp/bacproto/site/site12/shadow/big/f23',
    });
  });

  it('reads the file daemon progress of a running restore, with the files it expects', () => {
    const text = fixture('api-status-client-and-dir-restore-running.txt');
    const progress = parseClientJobProgress(text, 16);
    assert.equal(progress?.expectedFiles, 47);
    assert.equal(progress?.files, 25);
  });

  it('reads the terminated jobs list, and nothing from a client that cannot be reached', () => {
    const blocks = parseApiBlocks(fixture('api-status-dir-terminated.txt'));
    assert.equal(blocks.length, 10);
    assert.deepEqual(
      blocks.slice(0, 3).map((block) => [block.jobid, block.level, block.status, block.jobbytes]),
      [
        ['1', 'F', 'T', '167'],
        ['2', 'I', 'T', '839193600'],
        ['3', 'F', 'A', '0'],
      ],
    );
    const down = fixture('api-status-client-down.txt');
    assert.equal(parseClientJobProgress(down, 2), null);
    assert.equal(unreachableDaemon(down), 'client');
  });
});

describe('bconsole output: reload and restore dialogues', () => {
  it('collects the config errors a failed reload queued as messages, once each', () => {
    const errors = parseConfigErrors(fixture('reload-error-messages.txt'));
    assert.equal(
      errors[0],
      'Keyword Bogus not permitted in this resource (line 3, col 17 of file /tmp/bacproto/include/zz-broken.conf)',
    );
    assert.equal(new Set(errors).size, errors.length);
    assert.equal(errors.length, 5);
  });

  it('follows the cd/mark steps of a restore and what they marked', () => {
    const selection = parseRestoreSelection(fixture('restore-tree-marks.txt'));
    assert.deepEqual(
      selection.steps.map((step) => [step.command, markedCount(step.reply)]),
      [
        ['cd /tmp/bacproto/site/site12', 0],
        ['mark info', 2],
        ['cd "/tmp/bacproto/site/site12/shadow/var/www"', 0],
        ['mark "sp ace"', 2],
        ['mark st\\*r.txt', 2],
        ['mark "q\\"uote.txt"', 1],
        ['mark nonexist', 0],
        ['cd /tmp/bacproto/nonexist', 0],
        ['lsmark', 0],
        ['done', 0],
      ],
    );
    assert.equal(selection.steps[0].reply, 'cwd is: /tmp/bacproto/site/site12/');
    assert.match(
      selection.steps[7].reply,
      /^Invalid path given\.\ncwd is: \/tmp\/bacproto\/site\/site12\/shadow\/var\/www\/$/,
    );
    assert.equal(selection.selectedFiles, 10);
    assert.equal(selection.jobId, 6);
  });

  it('sees the job queued right after done when yes was on the command line', () => {
    const selection = parseRestoreSelection(fixture('restore-tree-marks-yes.txt'));
    assert.equal(selection.selectedFiles, 2);
    assert.equal(selection.jobId, 12);
    assert.equal(markedCount('1 file marked.'), 1);
    assert.equal(markedCount('No files marked.'), 0);
    assert.equal(markedCount('1,234 files marked.'), 1234);
  });
});
