import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../../src/common/errors/app-error';
import { ErrorCode } from '../../../src/common/errors/error-code';
import { FakeRunner } from '../../support/fake-runner';
import { systemPython } from '../../../src/common/process/system-python';
import { FsAttributesService } from '../../../src/providers/fs-attributes/fs-attributes.service';

const FIXTURE = join(process.cwd(), 'test/fixtures/fs-attributes/getfattr-dump.txt');

function service(runner: FakeRunner): FsAttributesService {
  return new FsAttributesService(runner.asProcessRunner());
}

const fixtureLines = (): string[] => readFileSync(FIXTURE, 'utf8').split('\n');

describe('FsAttributesService.capture (fake attribute walker)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fsattr-unit-'));
    mkdirSync(join(dir, 'site'));
    mkdirSync(join(dir, 'out'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the descriptor walker over relative paths in the root and streams blocks into the manifest, minus excluded ones', async () => {
    const runner = new FakeRunner(() => ({ stdout: fixtureLines() }));
    const manifest = join(dir, 'out', 'attrs.dump');
    const result = await service(runner).capture({
      root: join(dir, 'site'),
      paths: ['shadow/', 'info'],
      exclude: ['shadow/var/lib'],
      manifestFile: manifest,
    });

    const request = runner.requests[0];
    assert.equal(request.command, systemPython());
    // -I -S: the standard library only, and no PYTHON* variable of the environment reaches a root process.
    assert.deepEqual(request.args.slice(0, 3), ['-I', '-S', '-c']);
    assert.match(request.args[3], /O_NOFOLLOW/);
    const input = JSON.parse(request.input ?? '') as {
      root: string;
      paths: string[];
      exclude: string[];
      workers: number;
    };
    assert.ok(input.workers >= 1 && input.workers <= 4, 'the walk is shared by one to four processes');
    assert.deepEqual(input.root, join(dir, 'site'));
    assert.deepEqual(input.paths, ['shadow', 'info']);
    assert.deepEqual(input.exclude.slice(0, 1), ['shadow/var/lib'], 'the walk itself skips excluded subtrees');
    assert.equal(request.captureStdout, undefined, 'the dump must not be held in memory');

    const text = readFileSync(manifest, 'utf8');
    const headers = text.split('\n').filter((line) => line.startsWith('# file: '));
    assert.deepEqual(headers, [
      '# file: shadow',
      '# file: shadow/sp ace.txt',
      '# file: shadow/var/lib-not-excluded',
      '# file: shadow/cr\\015x',
      '# file: shadow/new\\012line',
      '# file: shadow/é ü 文件.txt',
      '# file: shadow/back\\134slash',
      '# file: info/siteinfo',
    ]);
    assert.equal(result.entries, 8);
    assert.ok(text.includes('\nuser.empty\n'), 'an empty value is written as a bare name');
    assert.deepEqual(result.warnings, [
      `"shadow/lat\uFFFD": file name is not valid UTF-8; its attributes are not captured`,
    ]);
    assert.deepEqual(readdirSync(join(dir, 'out')), ['attrs.dump'], 'no temporary file left');
  });

  it('turns exit 1 (a file vanished) into warnings and keeps what was read', async () => {
    const runner = new FakeRunner(() => ({
      stdout: ['# file: shadow/a', 'user.x=0sAQ==', ''],
      stderr: ['attribute-walker: shadow/gone: vanished while being read'],
      exitCode: 1,
    }));
    const manifest = join(dir, 'out', 'vanished.dump');
    const result = await service(runner).capture({
      root: join(dir, 'site'),
      paths: ['shadow'],
      exclude: [],
      manifestFile: manifest,
    });
    assert.equal(result.entries, 1);
    assert.deepEqual(result.warnings, ['attribute-walker: shadow/gone: vanished while being read']);
    assert.equal(readFileSync(manifest, 'utf8'), '# file: shadow/a\nuser.x=0sAQ==\n\n');
  });

  it('fails on any other exit, leaving neither a manifest nor a temporary file', async () => {
    const out = mkdtempSync(join(dir, 'fail-'));
    const runner = new FakeRunner(() => ({
      stdout: ['# file: shadow/a', 'user.x=0sAQ=='],
      stderr: ['usage'],
      exitCode: 2,
    }));
    await assert.rejects(
      service(runner).capture({
        root: join(dir, 'site'),
        paths: ['shadow'],
        exclude: [],
        manifestFile: join(out, 'm'),
      }),
      (error: unknown) => error instanceof AppError && /the attribute walk failed \(exit 2\): usage/.test(error.detail),
    );
    assert.deepEqual(readdirSync(out), []);
  });

  it('keeps a manifest placed inside the tree out of its own contents', async () => {
    const runner = new FakeRunner((request) => {
      const temp = readdirSync(join(dir, 'site', 'info')).find((name) => name.endsWith('.tmp'));
      assert.ok(temp, 'the temporary manifest exists while the walker runs');
      assert.ok((JSON.parse(request.input ?? '') as { exclude: string[] }).exclude.includes(`info/${temp}`));
      return {
        stdout: [
          `# file: info/${temp}`,
          'system.posix_acl_access=0sAgAAAA==',
          '',
          '# file: info/x',
          'user.x=0sAQ==',
          '',
        ],
        exitCode: request.command === systemPython() ? 0 : 9,
      };
    });
    mkdirSync(join(dir, 'site', 'info'), { recursive: true });
    const manifest = join(dir, 'site', 'info', 'attrs.dump');
    const result = await service(runner).capture({
      root: join(dir, 'site'),
      paths: ['info'],
      exclude: [],
      manifestFile: manifest,
    });
    assert.equal(result.entries, 1);
    assert.equal(readFileSync(manifest, 'utf8'), '# file: info/x\nuser.x=0sAQ==\n\n');
  });

  it('refuses paths that leave the root, before running anything', async () => {
    const runner = new FakeRunner(() => ({}));
    for (const paths of [['../etc'], ['/etc'], []]) {
      await assert.rejects(
        service(runner).capture({ root: join(dir, 'site'), paths, exclude: [], manifestFile: join(dir, 'out', 'x') }),
        (error: unknown) => error instanceof AppError && error.code === ErrorCode.ValidationFailed,
      );
    }
    assert.equal(runner.requests.length, 0);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    const runner = new FakeRunner(() => {
      controller.abort();
      return { stdout: [], exitCode: 143 };
    });
    const out = mkdtempSync(join(dir, 'cancel-'));
    await assert.rejects(
      service(runner).capture({
        root: join(dir, 'site'),
        paths: ['shadow'],
        exclude: [],
        manifestFile: join(out, 'm'),
        signal: controller.signal,
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(readdirSync(out), []);
  });
});

describe('FsAttributesService.apply (fake setfattr)', () => {
  let dir: string;
  let root: string;
  let manifest: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fsattr-unit-'));
    root = join(dir, 'restored');
    mkdirSync(join(root, 'shadow/www'), { recursive: true });
    mkdirSync(join(root, 'info'));
    mkdirSync(join(dir, 'elsewhere'));
    writeFileSync(join(root, 'shadow/www/index.php'), '');
    writeFileSync(join(root, 'shadow/www/a\nb'), '');
    writeFileSync(join(root, 'info/siteinfo'), '');
    writeFileSync(join(dir, 'elsewhere/passwd'), '');
    // A site user swapped a directory for a symlink pointing out of the tree.
    symlinkSync(join(dir, 'elsewhere'), join(root, 'shadow/evil'));
    manifest = join(dir, 'attrs.dump');
    writeFileSync(
      manifest,
      [
        '# file: shadow/www',
        'system.posix_acl_default=0sAgAAAA==',
        '',
        '# file: shadow/www/index.php',
        'user.x=0sAQ==',
        'user.empty=0s',
        '',
        '# file: shadow/www/a\\012b',
        'user.x=0sAg==',
        '',
        '# file: shadow/www/gone.txt',
        'user.x=0sAw==',
        '',
        '# file: shadow/evil/passwd',
        'system.posix_acl_access=0sAgAAAA==',
        '',
        '# file: ../outside',
        'user.x=0sBA==',
        '',
        '# file: info/siteinfo',
        'user.x=0sBQ==',
        '',
      ].join('\n'),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Records the filtered dump setfattr was given; getfattr (the default-ACL check) finds none unless told. */
  const recordingRunner = (
    seen: { dump?: string },
    result: { stderr?: string[]; exitCode?: number } = {},
    defaultAcls: string[] = [],
  ) =>
    new FakeRunner((request) => {
      if (request.command === 'getfattr') {
        return {
          stdout: defaultAcls.flatMap((path) => [`# file: ${path}`, 'system.posix_acl_default=0sAgAAAA==', '']),
        };
      }
      const restore = request.args.find((arg) => arg.startsWith('--restore='));
      seen.dump = restore ? readFileSync(restore.slice('--restore='.length), 'utf8') : undefined;
      return result;
    });
  const setfattrRequests = (runner: FakeRunner) => runner.requests.filter((request) => request.command === 'setfattr');

  it('applies only entries that exist under real directories, and warns about the others', async () => {
    const seen: { dump?: string } = {};
    const runner = recordingRunner(seen);
    const result = await service(runner).apply({ root, manifestFile: manifest, workDir: dir });
    const [request] = setfattrRequests(runner);
    assert.equal(request.command, 'setfattr');
    assert.equal(request.cwd, root);
    assert.ok(request.args.includes('--no-dereference'));
    assert.equal(
      seen.dump,
      '# file: shadow/www\nsystem.posix_acl_default=0sAgAAAA==\n\n' +
        '# file: shadow/www/index.php\nuser.x=0sAQ==\nuser.empty\n\n' +
        '# file: shadow/www/a\\012b\nuser.x=0sAg==\n\n' +
        '# file: info/siteinfo\nuser.x=0sBQ==\n\n',
    );
    assert.equal(result.applied, 4);
    assert.deepEqual(result.warnings, [
      '"shadow/www/gone.txt": no longer exists; its attributes were not re-applied',
      '"shadow/evil/passwd": "shadow/evil" is not a directory (a symlink?); its attributes were not re-applied',
      '"../outside": not a path inside the restored tree; skipped',
    ]);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('fs-attributes-')),
      [],
      'the filtered dump is removed',
    );
  });

  it('keeps to onlyPaths silently', async () => {
    const seen: { dump?: string } = {};
    const result = await service(recordingRunner(seen)).apply({ root, manifestFile: manifest, onlyPaths: ['info'] });
    assert.equal(seen.dump, '# file: info/siteinfo\nuser.x=0sBQ==\n\n');
    // A path leaving the tree is reported whatever the selection: the manifest was tampered with.
    assert.deepEqual(result, { applied: 1, warnings: ['"../outside": not a path inside the restored tree; skipped'] });
  });

  it('does not run setfattr when nothing is left to apply', async () => {
    const runner = recordingRunner({});
    const result = await service(runner).apply({ root, manifestFile: manifest, onlyPaths: ['shadow/none'] });
    assert.equal(result.applied, 0);
    assert.equal(setfattrRequests(runner).length, 0);
  });

  it('counts files setfattr could not change as not applied', async () => {
    const runner = recordingRunner({}, { stderr: ['setfattr: info/siteinfo: Operation not supported'], exitCode: 1 });
    const result = await service(runner).apply({ root, manifestFile: manifest, onlyPaths: ['info', 'shadow/www'] });
    assert.equal(result.applied, 3);
    assert.ok(result.warnings.includes('setfattr: info/siteinfo: Operation not supported'));
  });

  it('warns when the restored files sit under a default ACL they may have inherited', async () => {
    const runner = recordingRunner({}, {}, ['.', 'shadow']);
    const result = await service(runner).apply({ root, manifestFile: manifest, onlyPaths: ['shadow/www', 'info'] });
    const check = runner.requests.find((request) => request.command === 'getfattr');
    assert.deepEqual(check?.args.slice(check.args.indexOf('--')), ['--', '.', 'shadow']);
    assert.equal(check?.cwd, root);
    for (const directory of [root, join(root, 'shadow')]) {
      assert.ok(
        result.warnings.some((warning) => warning.startsWith(`${JSON.stringify(directory)} has a default ACL`)),
        `${directory} in ${JSON.stringify(result.warnings)}`,
      );
    }
  });

  it('fails clearly when the manifest is missing', async () => {
    await assert.rejects(
      service(recordingRunner({})).apply({ root, manifestFile: join(dir, 'nope.dump') }),
      (error: unknown) => error instanceof AppError && /does not exist/.test(error.detail),
    );
  });
});
