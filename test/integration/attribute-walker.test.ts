import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessRunner } from '../../src/common/process/process-runner';
import { DumpBlockReader, formatBlock, isMangledName } from '../../src/providers/fs-attributes/attribute-dump';
import { ATTRIBUTE_WALKER_SCRIPT } from '../../src/providers/fs-attributes/attribute-walker';
import { FsAttributesService } from '../../src/providers/fs-attributes/fs-attributes.service';
import { startSwapRacer } from '../support/hostile-tenant';

const setfattr = (...args: string[]): void => void execFileSync('setfattr', args);
const setfacl = (...args: string[]): void => void execFileSync('setfacl', args);

function walker(
  root: string,
  paths: string[],
  exclude: string[] = [],
  symlinksOnly = false,
  split: { workers: number; tasks: number } | Record<string, never> = {},
): { stdout: Buffer; stderr: string; status: number } {
  const result = spawnSync('python3', ['-I', '-S', '-c', ATTRIBUTE_WALKER_SCRIPT], {
    input: JSON.stringify({
      root,
      paths,
      exclude,
      symlinks_only: symlinksOnly,
      ...split,
      trace_split: 'workers' in split,
    }),
    maxBuffer: 256 * 1024 * 1024,
  });
  return { stdout: result.stdout, stderr: result.stderr.toString('utf8'), status: result.status ?? -1 };
}

function getfattr(root: string, paths: string[]): Buffer {
  return execFileSync(
    'getfattr',
    ['--recursive', '--dump', '--physical', '--no-dereference', '--match=-', '--encoding=base64', '--', ...paths],
    { cwd: root, maxBuffer: 256 * 1024 * 1024 },
  );
}

/**
 * The descriptor walker that replaced getfattr for capture must print byte for byte what getfattr printed, so that
 * manifests, `DumpBlockReader` and `setfattr --restore` keep working: compared here on a quiet tree with every kind of
 * name, entry and attribute getfattr handles specially.
 */
describe('attribute walker: the same dump as getfattr, by descriptor', () => {
  let root: string;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'attr-walker-'));
    const s = (rel: string): string => join(root, 'shadow', rel);
    mkdirSync(s('var/www/html/sub dir'), { recursive: true });
    mkdirSync(s('var/lib/mysql'), { recursive: true });
    mkdirSync(s('empty-dir'));
    mkdirSync(join(root, 'info'));
    const files = [
      'var/www/html/index.php',
      'var/www/html/sub dir/sp ace.txt',
      'new\nline',
      'cr\rx',
      'back\\slash',
      'tab\there',
      'é ü 文件.txt',
      'plain-no-attrs',
      'var/lib/mysql/ibdata1',
    ];
    for (const file of files) writeFileSync(s(file), `${file}\n`);
    // A Latin-1 name (an old FTP client's): not valid UTF-8, so made by bytes.
    execFileSync('python3', [
      '-c',
      "import os, sys; p = os.fsencode(sys.argv[1]) + b'/lat\\xe9'; open(p, 'w').close(); os.setxattr(p, 'user.latin', b'x')",
      s(''),
    ]);
    writeFileSync(join(root, 'info', 'siteinfo'), 'domain = x\n');
    for (const file of files) setfattr('-n', 'user.mark', '-v', file.length.toString(), s(file));
    setfattr('-n', 'user.empty', '-v', '', s('var/www/html/index.php'));
    setfattr('-n', 'user.a=b', '-v', '0x00ff10', s('var/www/html/index.php'));
    setfattr('-n', 'user.z', '-v', 'last', s('var/www/html/index.php'));
    setfattr('-n', 'trusted.service', '-v', '0sAAEC', s('var/www'));
    setfacl('-m', 'u:1001:rwx,g:1002:r-x', s('var/www/html/index.php'));
    setfacl('-m', 'u:1001:rwx', s('var/www/html'));
    setfacl('-d', '-m', 'u:1001:rx', s('var/www/html'));
    setfacl('-d', '-m', 'g:1002:rwx', s('empty-dir'));
    symlinkSync('/etc/passwd', s('link-out'));
    symlinkSync('var/www', s('link-in'));
    setfattr('-h', '-n', 'trusted.link', '-v', 'own', s('link-out'));
    execFileSync('mkfifo', [s('fifo')]);
    setfattr('-n', 'trusted.fifo', '-v', '1', s('fifo'));
    execFileSync('mknod', [s('zero'), 'c', '1', '5']);
    symlinkSync('/dev/zero', s('zero-link'));
    setfattr('-n', 'user.info', '-v', 'i', join(root, 'info', 'siteinfo'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints byte for byte what getfattr prints over shadow and info', () => {
    const mine = walker(root, ['shadow', 'info']);
    assert.equal(mine.stderr, '');
    assert.equal(mine.status, 0);
    const theirs = getfattr(root, ['shadow', 'info']);
    assert.ok(theirs.includes('\\012line'), 'the tree really has the odd names');
    assert.ok(theirs.includes('system.posix_acl_default='));
    assert.ok(theirs.includes('trusted.link='));
    assert.ok(theirs.includes('user.empty=0s\n'));
    assert.equal(mine.stdout.toString('latin1'), theirs.toString('latin1'));
  });

  it('prints the same for the root itself, for a single file, a link and a nested directory given as paths', () => {
    for (const paths of [['.'], ['shadow/var/www/html/index.php'], ['shadow/link-out'], ['shadow/var/www']]) {
      const mine = walker(root, paths);
      assert.equal(mine.status, 0, mine.stderr);
      assert.equal(mine.stdout.toString('latin1'), getfattr(root, paths).toString('latin1'), paths.join(','));
    }
  });

  it('split over several worker processes, prints the same bytes in the same order, warnings and exclusions too', () => {
    // Enough directories, two levels deep, that the walk is cut below its first level.
    const many = join(root, 'shadow', 'many');
    for (let d = 0; d < 8; d++) {
      for (let e = 0; e < 3; e++) {
        mkdirSync(join(many, `d${d}`, `e${e}`), { recursive: true });
        writeFileSync(join(many, `d${d}`, `e${e}`, 'f'), `${d}${e}`);
        setfattr('-n', 'user.n', '-v', `${d}.${e}`, join(many, `d${d}`, `e${e}`, 'f'));
      }
    }
    try {
      const theirs = getfattr(root, ['shadow', 'info']).toString('latin1');
      for (const split of [
        { workers: 2, tasks: 2 },
        { workers: 2, tasks: 12 },
        { workers: 3, tasks: 12 },
      ]) {
        const mine = walker(root, ['shadow', 'info'], [], false, split);
        assert.equal(mine.status, 0, mine.stderr);
        assert.match(mine.stderr, /^split shadow into \d+ subtrees for [23] workers$/m, JSON.stringify(split));
        assert.equal(mine.stdout.toString('latin1'), theirs, JSON.stringify(split));
      }
    } finally {
      rmSync(many, { recursive: true, force: true });
    }
    const serial = walker(root, ['shadow/nope', 'shadow/link-in/html', 'shadow'], ['shadow/var/www/html']);
    const split = walker(root, ['shadow/nope', 'shadow/link-in/html', 'shadow'], ['shadow/var/www/html'], false, {
      workers: 2,
      tasks: 4,
    });
    assert.equal(split.status, 1);
    assert.equal(split.stdout.toString('latin1'), serial.stdout.toString('latin1'));
    assert.ok(!split.stdout.toString('latin1').includes('shadow/var/www/html'));
    assert.equal(split.stderr.replace(/^split .*\n/m, ''), serial.stderr);
  });

  it('skips excluded subtrees without walking them', () => {
    const mine = walker(root, ['shadow'], ['shadow/var/lib', 'shadow/var/www/html']).stdout.toString('latin1');
    assert.ok(!mine.includes('shadow/var/lib'));
    assert.ok(!mine.includes('shadow/var/www/html'));
    assert.ok(mine.includes('# file: shadow/var/www\n'));
  });

  it('reports a missing path and a path through a link as warnings with exit 1, and still prints the rest', () => {
    const mine = walker(root, ['shadow/nope', 'shadow/link-in/html', 'info']);
    assert.equal(mine.status, 1);
    assert.match(mine.stderr, /shadow\/nope: No such file or directory/);
    assert.match(mine.stderr, /shadow\/link-in\/html: a component is not a directory/);
    assert.equal(mine.stdout.toString('utf8'), '# file: info/siteinfo\nuser.info=0saQ==\n\n');
  });

  it("with symlinks_only, prints exactly getfattr's blocks of the symlinks, also for a link given as a path", () => {
    const blocksOf = (dump: string): string[] => dump.split('\n\n').filter((block) => block.startsWith('# file: '));
    const links = ['shadow/link-out', 'shadow/link-in', 'shadow/zero-link'];
    const expected = blocksOf(getfattr(root, ['shadow', 'info']).toString('latin1')).filter((block) =>
      links.some((link) => block.startsWith(`# file: ${link}\n`)),
    );
    assert.equal(expected.length, 1, 'of the links, only link-out has an attribute');
    const mine = walker(root, ['shadow', 'info'], [], true);
    assert.equal(mine.status, 0, mine.stderr);
    assert.deepEqual(blocksOf(mine.stdout.toString('latin1')), expected);
    assert.deepEqual(blocksOf(walker(root, ['shadow/link-out'], [], true).stdout.toString('latin1')), expected);
    assert.deepEqual(blocksOf(walker(root, ['shadow/var/www/html/index.php'], [], true).stdout.toString('latin1')), []);
  });

  it('with symlinks_only, leaves out excluded subtrees, also ones whose names hold pattern characters', () => {
    const odd = join(root, 'shadow', 'var', 'www', 'c[ache]*?');
    mkdirSync(odd, { recursive: true });
    symlinkSync('x', join(odd, 'in-odd'));
    setfattr('-h', '-n', 'trusted.odd', '-v', '1', join(odd, 'in-odd'));
    try {
      const all = walker(root, ['shadow'], [], true).stdout.toString('latin1');
      assert.match(all, /# file: shadow\/var\/www\/c\[ache\]\*\?\/in-odd\ntrusted.odd=/);
      const excluded = walker(root, ['shadow'], ['shadow/var/www/c[ache]*?', 'shadow/link-out'], true);
      assert.equal(excluded.status, 0, excluded.stderr);
      assert.ok(!excluded.stdout.toString('latin1').includes('in-odd'), 'the excluded directory is not read');
      assert.ok(!excluded.stdout.toString('latin1').includes('link-out'), 'an excluded link is not read');
      // A pattern character must not widen the exclusion: `c[ache]*?` does not leave out `ca`.
      mkdirSync(join(root, 'shadow', 'var', 'www', 'ca'));
      symlinkSync('y', join(root, 'shadow', 'var', 'www', 'ca', 'kept'));
      setfattr('-h', '-n', 'trusted.kept', '-v', '1', join(root, 'shadow', 'var', 'www', 'ca', 'kept'));
      const kept = walker(root, ['shadow'], ['shadow/var/www/c[ache]*?'], true).stdout.toString('latin1');
      assert.match(kept, /# file: shadow\/var\/www\/ca\/kept\ntrusted.kept=/);
    } finally {
      rmSync(odd, { recursive: true, force: true });
      rmSync(join(root, 'shadow', 'var', 'www', 'ca'), { recursive: true, force: true });
    }
  });

  it('fails with exit 2, not the "some entries unreadable" 1, when something unexpected breaks it', () => {
    const broken = walker(join(root, 'no-such-root'), ['shadow']);
    assert.equal(broken.status, 2);
    assert.match(broken.stderr, /FileNotFoundError/);
  });

  it('capture writes the manifest the getfattr-based capture wrote (UTF-8 names, empty values as bare names)', async () => {
    const manifestFile = join(root, 'manifest.dump');
    const service = new FsAttributesService(new ProcessRunner());
    const captured = await service.capture({
      root,
      paths: ['shadow', 'info'],
      exclude: ['shadow/var/lib'],
      manifestFile,
    });
    const reader = new DumpBlockReader();
    let expected = '';
    const take = (block: ReturnType<DumpBlockReader['push']>): void => {
      if (block && !block.path.startsWith('shadow/var/lib') && !isMangledName(block.path))
        expected += formatBlock(block);
    };
    for (const line of getfattr(root, ['shadow', 'info']).toString('utf8').split('\n')) take(reader.push(line));
    take(reader.end());
    assert.equal(readFileSync(manifestFile, 'utf8'), expected);
    assert.ok(expected.includes('\nuser.empty\n'));
    assert.equal(captured.warnings.length, 1, JSON.stringify(captured.warnings));
    assert.match(captured.warnings[0], /not valid UTF-8/);
  });
});

/**
 * `apply` runs setfattr by path, on a restored tree only the service can reach (nobody races it), but that tree can hold
 * links restored from the backup: nothing may be read or set through them.
 */
describe('apply on a restored tree that holds a link to a directory outside', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'attr-apply-links-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('neither looks for a default ACL nor sets attributes through the link', async () => {
    const outsideDir = join(work, 'outside', 'www');
    mkdirSync(outsideDir, { recursive: true });
    writeFileSync(join(outsideDir, 'x'), 'outside\n');
    setfacl('-d', '-m', 'u:1001:rwx', outsideDir);
    const restored = join(work, 'restored');
    mkdirSync(join(restored, 'shadow'), { recursive: true });
    symlinkSync(join(work, 'outside'), join(restored, 'shadow', 'var'));
    const manifestFile = join(work, 'manifest.dump');
    writeFileSync(manifestFile, '# file: shadow/var/www/x\nuser.evil=0sAQ==\n\n');

    const service = new FsAttributesService(new ProcessRunner());
    const result = await service.apply({
      root: restored,
      manifestFile,
      onlyPaths: ['shadow/var/www/x'],
      workDir: work,
    });
    assert.equal(result.applied, 0);
    assert.ok(!result.warnings.some((w) => /default ACL/.test(w)), JSON.stringify(result.warnings));
    assert.ok(
      result.warnings.some((w) => /"shadow\/var" is not a directory/.test(w)),
      JSON.stringify(result.warnings),
    );
    const outsideAttrs = execFileSync('getfattr', ['--dump', '--match=-', join(outsideDir, 'x')], { encoding: 'utf8' });
    assert.ok(!outsideAttrs.includes('user.evil'));
  });
});

/**
 * With symlinks_only, GNU find lists the links and the walker reads each from its parent opened by descriptor: a
 * tenant swapping a directory for a link to an outside tree of links (with root's trusted.* attributes, which links
 * can carry) may make find print names outside, but the walker must never read them.
 */
describe('attribute walker, symlinks_only, against a directory swapped for a link mid-walk', () => {
  const root = mkdtempSync(join(tmpdir(), 'attr-walker-race-'));
  const outside = join(root, 'outside');
  const site = join(root, 'site');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('never prints an attribute of a link outside the site', async () => {
    for (const base of [outside, join(site, 'shadow', 'sub')]) {
      for (let d = 0; d < 20; d++) {
        mkdirSync(join(base, `d${d}`), { recursive: true });
        for (let f = 0; f < 20; f++) symlinkSync('target', join(base, `d${d}`, `l${f}`));
      }
    }
    execFileSync('find', [
      outside,
      '-type',
      'l',
      '-exec',
      'setfattr',
      '-h',
      '-n',
      'trusted.outside',
      '-v',
      '1',
      '{}',
      '+',
    ]);
    execFileSync('find', [site, '-type', 'l', '-exec', 'setfattr', '-h', '-n', 'trusted.inside', '-v', '1', '{}', '+']);
    const racer = await startSwapRacer(join(site, 'shadow', 'sub'), outside, { maxMs: 60_000 });
    let inside = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const run = walker(site, ['shadow'], [], true);
        assert.ok(run.status === 0 || run.status === 1, run.stderr);
        const dump = run.stdout.toString('latin1');
        assert.ok(!dump.includes('trusted.outside'), 'no attribute of a link outside the site is printed');
        inside += dump.split('trusted.inside').length - 1;
      }
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 20, `the racer swapped ${rounds} times`);
    }
    assert.ok(inside > 0, 'the links inside were read while the racer ran');
  });
});

describe('attribute walker shared by several processes, against a directory swapped for a link mid-walk', () => {
  const root = mkdtempSync(join(tmpdir(), 'attr-walker-split-race-'));
  const outside = join(root, 'outside');
  const site = join(root, 'site');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('never prints an attribute of a file outside the site, whether the swap meets the split or a worker', async () => {
    for (const [base, mark] of [
      [outside, 'trusted.outside'],
      [join(site, 'shadow', 'sub'), 'trusted.inside'],
    ] as const) {
      for (let d = 0; d < 20; d++) {
        mkdirSync(join(base, `d${d}`), { recursive: true });
        for (let f = 0; f < 20; f++) writeFileSync(join(base, `d${d}`, `f${f}`), `${d}/${f}`);
      }
      execFileSync('find', [base, '-type', 'f', '-exec', 'setfattr', '-n', mark, '-v', '1', '{}', '+']);
    }
    const racer = await startSwapRacer(join(site, 'shadow', 'sub'), outside, { maxMs: 60_000 });
    let inside = 0;
    let splits = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const run = walker(site, ['shadow'], [], false, { workers: 2, tasks: 8 });
        assert.ok(run.status === 0 || run.status === 1, run.stderr);
        const dump = run.stdout.toString('latin1');
        assert.ok(!dump.includes('trusted.outside'), 'no attribute of a file outside the site is printed');
        inside += dump.split('trusted.inside').length - 1;
        if (/^split shadow into \d+ subtrees for 2 workers$/m.test(run.stderr)) splits++;
      }
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 20, `the racer swapped ${rounds} times`);
    }
    assert.ok(inside > 0, 'the files inside were read while the racer ran');
    assert.ok(splits > 0, 'some walks were shared by the workers');
  });
});
