import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import {
  blockPath,
  canonicalRelativePath,
  DumpBlockReader,
  DumpBlockSplitter,
  escapeDumpPath,
  formatBlock,
  isMangledName,
  isWithin,
  isWithinAny,
  restorableAttribute,
  restorableBlock,
  unescapeDumpPath,
  WarningList,
  type DumpBlock,
} from '../../../src/providers/fs-attributes/attribute-dump';

/** Real `getfattr -R -d -h -P -m - -e base64 shadow info` output (attr 2.5.1) over awkward names; see README there. */
const FIXTURE = join(process.cwd(), 'test/fixtures/fs-attributes/getfattr-dump.txt');

function readBlocks(text: string): { blocks: DumpBlock[]; reader: DumpBlockReader } {
  const reader = new DumpBlockReader();
  const blocks: DumpBlock[] = [];
  for (const line of text.split('\n')) {
    const block = reader.push(line);
    if (block) blocks.push(block);
  }
  const last = reader.end();
  if (last) blocks.push(last);
  return { blocks, reader };
}

describe('DumpBlockReader on real getfattr output', () => {
  // Decoded as UTF-8, like the process runner does: the Latin-1 name arrives with U+FFFD.
  const { blocks, reader } = readBlocks(readFileSync(FIXTURE, 'utf8'));
  const byPath = new Map(blocks.map((block) => [block.path, block]));

  it('finds every block and no stray line', () => {
    assert.equal(blocks.length, 11);
    assert.equal(reader.strayLines, 0);
  });

  it('unescapes newline, carriage return and backslash, and keeps UTF-8 and spaces as they are', () => {
    for (const path of [
      'shadow/new\nline',
      'shadow/cr\rx',
      'shadow/back\\slash',
      'shadow/é ü 文件.txt',
      'shadow/sp ace.txt',
      'shadow',
      'info/siteinfo',
    ]) {
      assert.ok(byPath.has(path), `missing ${JSON.stringify(path)}; have ${JSON.stringify([...byPath.keys()])}`);
    }
    assert.equal(byPath.get('shadow/new\nline')?.header, '# file: shadow/new\\012line');
  });

  it('keeps attribute lines verbatim, ACL xattrs included', () => {
    assert.deepEqual(byPath.get('shadow/sp ace.txt')?.attributes, [
      'system.posix_acl_access=0sAgAAAAEABgD/////AgAHAOkDAAAEAAQA/////wgABQDqAwAAEAAHAP////8gAAQA/////w==',
      'user.empty=0s',
      'user.fortify=0sAP8K',
      'user.we\\075ird=0sMQ==',
    ]);
    assert.deepEqual(byPath.get('shadow')?.attributes, [
      'system.posix_acl_default=0sAgAAAAEABwD/////AgAHAOkDAAAEAAUA/////xAABwD/////IAAFAP////8=',
    ]);
  });

  it('flags the one name that was not UTF-8', () => {
    assert.deepEqual(
      blocks.filter((block) => isMangledName(block.path)).map((block) => block.path),
      ['shadow/lat\uFFFD'],
    );
  });

  it('formats a block so that reading it again gives the same block', () => {
    for (const block of blocks) {
      const again = readBlocks(formatBlock(block)).blocks;
      assert.equal(again.length, 1);
      assert.equal(again[0].header, block.header);
      assert.equal(again[0].path, block.path);
      assert.deepEqual(again[0].attributes, block.attributes.map(restorableAttribute));
    }
  });
});

describe('DumpBlockSplitter: whole blocks from raw chunks', () => {
  const split = async (chunks: Buffer[]): Promise<string[]> => {
    const blocks: string[] = [];
    await pipeline(Readable.from(chunks), new DumpBlockSplitter((block) => blocks.push(block)));
    return blocks;
  };

  it('gives the same blocks as DumpBlockReader, however the bytes are cut, multi-byte names included', async () => {
    const raw = readFileSync(FIXTURE);
    const expected = readBlocks(raw.toString('utf8')).blocks.map(formatBlock);
    for (const size of [1, 2, 3, 7, 64, 4096, raw.length]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < raw.length; at += size) chunks.push(raw.subarray(at, at + size));
      const blocks = await split(chunks);
      assert.deepEqual(blocks.map(restorableBlock), expected, `chunks of ${size} bytes`);
      assert.deepEqual(
        blocks.map(blockPath),
        readBlocks(raw.toString('utf8')).blocks.map((block) => block.path),
      );
    }
  });

  it('completes a last block cut short, and names no path for text that is not a block', async () => {
    assert.deepEqual(await split([Buffer.from('# file: a\nuser.x=0sAQ==\n\n# file: b\nuser.y=0s')]), [
      '# file: a\nuser.x=0sAQ==\n\n',
      '# file: b\nuser.y=0s\n\n',
    ]);
    assert.equal(restorableBlock('# file: b\nuser.y=0s\nuser.z=0sAA==\n\n'), '# file: b\nuser.y\nuser.z=0sAA==\n\n');
    assert.equal(blockPath('stray line\n\n'), undefined);
    assert.equal(blockPath('# file: ./x\\012y\nuser.a=0s\n\n'), 'x\ny');
  });
});

describe('DumpBlockReader edge cases', () => {
  it('counts lines outside any block and tolerates a missing final blank line', () => {
    const { blocks, reader } = readBlocks('user.orphan=0sAA==\n# file: a\nuser.x=0sAQ==');
    assert.equal(reader.strayLines, 1);
    assert.deepEqual(blocks, [{ header: '# file: a', path: 'a', attributes: ['user.x=0sAQ=='] }]);
  });

  it('drops a leading ./ from paths (getfattr run on ".")', () => {
    const { blocks } = readBlocks('# file: ./shadow/x\nuser.x=0sAQ==\n\n# file: .\nuser.y=0sAQ==\n\n');
    assert.deepEqual(
      blocks.map((block) => block.path),
      ['shadow/x', '.'],
    );
  });
});

describe('unescapeDumpPath / escapeDumpPath', () => {
  it('decodes three-digit octal escapes only, like setfattr', () => {
    assert.equal(unescapeDumpPath('a\\012b\\015c\\134d'), 'a\nb\rc\\d');
    assert.equal(unescapeDumpPath('a\\0123'), 'a\n3');
    assert.equal(unescapeDumpPath('a\\x\\08\\'), 'a\\x\\08\\');
    assert.equal(unescapeDumpPath('plain é'), 'plain é');
  });

  it('escapes exactly what getfattr escapes and round-trips', () => {
    const name = 'dir/a\nb\rc\\d e=f é\t"';
    assert.equal(escapeDumpPath(name), 'dir/a\\012b\\015c\\134d e=f é\t"');
    assert.equal(unescapeDumpPath(escapeDumpPath(name)), name);
  });
});

describe('canonicalRelativePath', () => {
  it('normalises spelling', () => {
    assert.equal(canonicalRelativePath('shadow/'), 'shadow');
    assert.equal(canonicalRelativePath('./shadow//var/lib/'), 'shadow/var/lib');
    assert.equal(canonicalRelativePath('.'), '.');
    assert.equal(canonicalRelativePath('./'), '.');
    assert.equal(canonicalRelativePath('a/./b'), 'a/b');
    assert.equal(canonicalRelativePath('..dots/x'), '..dots/x');
  });

  it('refuses paths that could leave the root', () => {
    for (const path of ['', '/etc', '../etc', 'shadow/../../etc', 'a/..', 'a\0b']) {
      assert.equal(canonicalRelativePath(path), undefined, JSON.stringify(path));
    }
  });
});

describe('isWithin', () => {
  it('matches the path itself and what lies under it, not siblings sharing a prefix', () => {
    assert.ok(isWithin('shadow/var/lib', 'shadow/var/lib'));
    assert.ok(isWithin('shadow/var/lib/mysql/ibdata1', 'shadow/var/lib'));
    assert.ok(!isWithin('shadow/var/lib-not-excluded', 'shadow/var/lib'));
    assert.ok(!isWithin('shadow/var', 'shadow/var/lib'));
    assert.ok(isWithin('anything/at/all', '.'));
    assert.ok(isWithinAny('info/current', ['shadow', 'info']));
    assert.ok(!isWithinAny('information', ['shadow', 'info']));
    assert.ok(!isWithinAny('x', []));
  });
});

describe('restorableAttribute', () => {
  it('writes an empty base64 value as a bare name and leaves others alone', () => {
    assert.equal(restorableAttribute('user.empty=0s'), 'user.empty');
    assert.equal(restorableAttribute('user.x=0sAP8K'), 'user.x=0sAP8K');
    assert.equal(restorableAttribute('user.x=0sMA=='), 'user.x=0sMA==');
  });
});

describe('WarningList', () => {
  it('keeps the first ones and counts the rest', () => {
    const warnings = new WarningList(2);
    for (const n of [1, 2, 3, 4]) warnings.add(`w${n}`);
    assert.equal(warnings.size, 4);
    assert.deepEqual(warnings.toArray(), ['w1', 'w2', '… and 2 more warnings like these']);
  });
});
