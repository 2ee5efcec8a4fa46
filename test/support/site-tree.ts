import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  appendFile,
  chmod,
  chown,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' };

/** Facts about the tree `buildSiteTree` makes, for tests to assert against. */
export const SITE_TREE = {
  domain: 'fortified-site.test',
  /** What a site backup holds, relative to the site root. */
  paths: ['shadow', 'info'],
  /** What it must leave out (raw database files). */
  exclude: ['shadow/var/lib'],
  docroot: 'shadow/var/www/html',
  /** Has an access ACL (u:1001:rwx,g:1002:r-x) on a 0600 file: its group bits show the mask. */
  aclFile: 'shadow/var/www/html/wp-config.php',
  /** Has a default ACL, and files created in it inherited it. */
  defaultAclDir: 'shadow/var/www/html/wp-content/cache',
  /** Has a binary user.fortify xattr, an empty user.empty-flag, and no ACL. */
  xattrFile: 'shadow/home/admin1/.bashrc',
  /** No ACL, no xattr, mode 0640. */
  plainFile: 'shadow/var/www/html/readme.txt',
  largeFile: 'shadow/var/www/html/wp-content/uploads/2024/archive.bin',
  utf8File: 'shadow/var/www/html/é ü 文件.txt',
  spacesFile: 'shadow/var/www/html/name with spaces.html',
  /** Present only with `{ newlineName: true }`. */
  newlineFile: 'shadow/var/www/html/line\nbreak.txt',
  databaseFile: 'shadow/var/lib/mysql/ibdata1',
} as const;

export interface SiteTreeOptions {
  /** Size of the random large file; 20 MiB by default. */
  largeFileBytes?: number;
  /**
   * Adds a file whose name holds a newline. Off by default: it is legal and it happens, but it breaks line-oriented
   * parsers of tool output, so only tests that mean to prove that case should ask for it.
   */
  newlineName?: boolean;
}

/**
 * Builds a realistic ApisCP site under `siteRoot`: `shadow/` (the site's filesystem layer) with several owners, modes
 * with setgid and sticky bits, symlinks (relative, absolute, dangling), user and trusted xattrs, access and default
 * ACLs (and files that inherited them), a database directory that backups must exclude, and `info/` with the site's
 * configuration. Needs root (chown, trusted.* xattrs) and a filesystem with xattrs and ACLs.
 */
export async function buildSiteTree(siteRoot: string, options: SiteTreeOptions = {}): Promise<void> {
  const at = (path: string): string => join(siteRoot, path);
  const dirs: [string, number, number, number][] = [
    // path, mode, uid, gid
    ['shadow', 0o755, 0, 0],
    ['shadow/var', 0o755, 0, 0],
    ['shadow/var/www', 0o755, 0, 0],
    ['shadow/var/www/html', 0o2775, 1000, 1000],
    ['shadow/var/www/html/wp-content', 0o2775, 1000, 1000],
    ['shadow/var/www/html/wp-content/uploads', 0o2775, 1000, 1000],
    ['shadow/var/www/html/wp-content/uploads/2024', 0o2775, 1000, 1000],
    ['shadow/var/www/html/wp-content/cache', 0o2770, 1000, 1001],
    ['shadow/var/www/html/private', 0o750, 1000, 1000],
    ['shadow/home', 0o755, 0, 0],
    ['shadow/home/admin1', 0o700, 1000, 1000],
    ['shadow/home/admin1/mail', 0o700, 1000, 1000],
    ['shadow/tmp', 0o1777, 0, 0],
    ['shadow/var/lib', 0o755, 0, 0],
    ['shadow/var/lib/mysql', 0o750, 1002, 1002],
    ['shadow/var/lib/mysql/site1_wp', 0o700, 1002, 1002],
    ['info', 0o750, 0, 0],
    ['info/current', 0o750, 0, 0],
  ];
  for (const [path] of dirs) await mkdir(at(path), { recursive: true });

  // Default ACLs first, so the files written below inherit them the way a fortified site's new uploads do.
  await tool('setfacl', ['-d', '-m', 'u:1001:rwx,g:1002:r-x,m::rwx', at(SITE_TREE.defaultAclDir)]);
  await tool('setfacl', ['-m', 'u:1001:rwx', at(SITE_TREE.defaultAclDir)]);
  await tool('setfacl', ['-d', '-m', 'g:1001:rwx', at('shadow/var/www/html/wp-content/uploads')]);

  const files: [string, string | Buffer, number, number, number][] = [
    // path, content, mode, uid, gid
    ['shadow/var/www/html/index.php', '<?php\nrequire __DIR__ . "/wp-blog-header.php";\n', 0o644, 1000, 1000],
    [SITE_TREE.aclFile, "<?php\ndefine('DB_NAME', 'site1_wp');\ndefine('DB_PASSWORD', 'x');\n", 0o600, 1000, 1000],
    [SITE_TREE.plainFile, 'Read me.\n', 0o640, 1000, 1001],
    ['shadow/var/www/html/empty.txt', '', 0o644, 1000, 1000],
    [SITE_TREE.utf8File, 'Grüße, 世界\n', 0o664, 1000, 1000],
    [SITE_TREE.spacesFile, '<html>spaces</html>\n', 0o644, 1001, 1000],
    ['shadow/var/www/html/private/.htpasswd', 'admin:$apr1$abc$def\n', 0o640, 1000, 48],
    ['shadow/var/www/html/wp-content/cache/page-1.html', '<p>cached 1</p>\n', 0o664, 1001, 1001],
    ['shadow/var/www/html/wp-content/cache/page-2.html', '<p>cached 2</p>\n', 0o660, 1001, 1001],
    ['shadow/var/www/html/wp-content/uploads/2024/logo.png', randomBytes(4096), 0o644, 1000, 1000],
    [SITE_TREE.xattrFile, 'export PATH=$HOME/bin:$PATH\n', 0o644, 1000, 1000],
    ['shadow/home/admin1/mail/inbox', 'From: a@b.test\n\nhello\n', 0o600, 1000, 1000],
    ['shadow/tmp/sess_abc', 'session', 0o600, 1001, 1001],
    [SITE_TREE.databaseFile, randomBytes(65536), 0o660, 1002, 1002],
    ['shadow/var/lib/mysql/site1_wp/wp_posts.ibd', randomBytes(16384), 0o660, 1002, 1002],
    [
      'info/current/siteinfo',
      `[siteinfo]\ndomain = ${SITE_TREE.domain}\nadmin_user = admin1\nemail = admin@${SITE_TREE.domain}\n`,
      0o600,
      0,
      0,
    ],
    ['info/current/aliases', `[aliases]\naliases = www.${SITE_TREE.domain}\n`, 0o600, 0, 0],
  ];
  if (options.newlineName) files.push([SITE_TREE.newlineFile, 'newline in my name\n', 0o644, 1000, 1000]);
  for (const [path, content] of files) await writeFile(at(path), content);
  await writeRandomFile(at(SITE_TREE.largeFile), options.largeFileBytes ?? 20 * 1024 * 1024);

  await symlink('wp-content/uploads', at('shadow/var/www/html/uploads'));
  await symlink('/var/www/html/index.php', at('shadow/var/www/html/absolute-link.php'));
  await symlink('does-not-exist.txt', at('shadow/var/www/html/dangling'));
  await lchown(at('shadow/var/www/html/uploads'), 1000, 1000);

  // chown clears setgid on files, so modes are set after owners; ACLs after modes (chmod rewrites the mask).
  for (const [path, , uid, gid] of dirs) await chown(at(path), uid, gid);
  for (const [path, , , uid, gid] of files) await chown(at(path), uid, gid);
  await chown(at(SITE_TREE.largeFile), 1000, 1000);
  for (const [path, mode] of dirs) await chmod(at(path), mode);
  for (const [path, , mode] of files) await chmod(at(path), mode);

  await tool('setfacl', ['-m', 'u:1001:rwx,g:1002:r-x', at(SITE_TREE.aclFile)]);
  await tool('setfacl', ['-m', 'u:1001:r-x', at('shadow/var/www/html/private')]);
  await tool('setfacl', ['-d', '-m', 'u:1001:r-x', at('shadow/var/www/html/private')]);
  await tool('setfacl', ['-m', 'u:1002:rw-', at(SITE_TREE.databaseFile)]);

  await tool('setfattr', ['-n', 'user.fortify', '-v', '0x00ff0a0d5c3d22', at(SITE_TREE.xattrFile)]);
  await tool('setfattr', ['-n', 'user.empty-flag', at(SITE_TREE.xattrFile)]);
  await tool('setfattr', ['-n', 'user.fortify', '-v', 'ro', at('shadow/var/www/html')]);
  await tool('setfattr', ['-n', 'user.apiscp.origin', '-v', 'upload', at(SITE_TREE.utf8File)]);
  await tool('setfattr', [
    '-n',
    'user.mime_type',
    '-v',
    'image/png',
    at('shadow/var/www/html/wp-content/uploads/2024/logo.png'),
  ]);
  await tool('setfattr', ['-n', 'trusted.apiscp.quota', '-v', '0x0100000000000000', at('shadow/home/admin1')]);
  await tool('setfattr', ['-n', 'user.fortify', '-v', 'db', at(SITE_TREE.databaseFile)]);
  if (options.newlineName) await tool('setfattr', ['-n', 'user.odd', '-v', 'yes', at(SITE_TREE.newlineFile)]);
}

/**
 * The sample site as ApisCP lays one out: `buildSiteTree` at `<virtualRoot>/site1`, and its domain
 * (`SITE_TREE.domain`) a symlink to it, so the API finds it by either name. Returns the site root.
 */
export async function addSampleSite(virtualRoot: string, options: SiteTreeOptions = {}): Promise<string> {
  const site = join(virtualRoot, 'site1');
  await buildSiteTree(site, options);
  await symlink('site1', join(virtualRoot, SITE_TREE.domain));
  return site;
}

/**
 * Changes the tree built by `buildSiteTree` so each incremental backup has real work: content changed, files added
 * and deleted, an ACL and an xattr changed, a mode changed. Steps 1, 2 and 3 each do different things.
 */
export async function mutateSiteTree(siteRoot: string, step: number): Promise<void> {
  const at = (path: string): string => join(siteRoot, path);
  switch (step) {
    case 1:
      await appendFile(at('shadow/var/www/html/index.php'), '// step 1\n');
      await writeFile(at('shadow/var/www/html/wp-content/cache/page-3.html'), '<p>cached 3</p>\n');
      await rm(at('shadow/var/www/html/empty.txt'));
      await tool('setfacl', ['-m', 'u:1003:r--', at(SITE_TREE.aclFile)]);
      await tool('setfattr', ['-n', 'user.fortify', '-v', '0x0102', at(SITE_TREE.xattrFile)]);
      await chmod(at(SITE_TREE.plainFile), 0o600);
      return;
    case 2:
      await writeFile(at('shadow/home/admin1/mail/inbox'), 'From: c@d.test\n\nsecond mail\n');
      await mkdir(at('shadow/var/www/html/new-dir'));
      await tool('setfacl', ['-d', '-m', 'u:1001:rwx', at('shadow/var/www/html/new-dir')]);
      await writeFile(at('shadow/var/www/html/new-dir/inherits.txt'), 'inherits a default ACL\n');
      await rm(at('shadow/var/www/html/dangling'));
      await tool('setfacl', ['-b', at('shadow/var/www/html/private')]);
      await tool('setfattr', ['-x', 'user.apiscp.origin', at(SITE_TREE.utf8File)]);
      await chmod(at('shadow/home/admin1/mail'), 0o750);
      return;
    case 3: {
      const large = await open(at(SITE_TREE.largeFile), 'r+');
      try {
        await large.write(randomBytes(1024 * 1024), 0, 1024 * 1024, 4096);
      } finally {
        await large.close();
      }
      await rename(at(SITE_TREE.spacesFile), at('shadow/var/www/html/renamed with spaces.html'));
      await chown(at('shadow/var/www/html/index.php'), 1001, 1000);
      await writeFile(at('shadow/tmp/sess_def'), 'another session');
      await tool('setfattr', ['-n', 'user.fortify', '-v', '0xfeff00', at('shadow/tmp/sess_def')]);
      await tool('setfacl', ['-d', '-m', 'g:1003:r-x', at(SITE_TREE.defaultAclDir)]);
      await chmod(at('shadow/var/www/html/private'), 0o2750);
      return;
    }
    default:
      throw new Error(`mutateSiteTree knows steps 1, 2 and 3, not ${step}`);
  }
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface TreeEntry {
  /** Relative to the snapshot's root. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky, in octal, e.g. `2775`. */
  mode: string;
  uid: number;
  gid: number;
  /** Regular files only: a directory's size depends on its history, not its content. */
  size: number | null;
  sha256: string | null;
  /** Symlinks only. */
  target: string | null;
  /** `name=value` lines from `getfattr -d -h -m - -e base64`, sorted; ACLs show here as system.posix_acl_*. */
  xattrs: string[];
  /** Entry lines of `getfacl -p -n -E` (access, then `default:` ones); null for symlinks, which have none. */
  acl: string[] | null;
}

export interface TreeSnapshot {
  /** Sorted by path. */
  entries: TreeEntry[];
}

/**
 * Describes every entry under `root/paths` (minus `exclude`, both relative) so two trees can be compared: type, full
 * mode, owner, content hash, symlink target, every xattr and the ACLs. It reads each file's attributes with its own
 * getfattr/getfacl call, independently of the code under test.
 */
export async function snapshotTree(root: string, paths: string[], exclude: string[] = []): Promise<TreeSnapshot> {
  const found: string[] = [];
  const excluded = (path: string): boolean => exclude.some((e) => path === e || path.startsWith(`${e}/`));
  const walk = async (path: string): Promise<void> => {
    if (excluded(path)) return;
    const info = await lstat(join(root, path)).catch(() => undefined);
    if (!info) return;
    found.push(path);
    if (info.isDirectory()) {
      for (const name of await readdir(join(root, path))) await walk(`${path}/${name}`);
    }
  };
  for (const path of paths) await walk(path);
  const entries = await mapLimited([...new Set(found)].sort(), 16, (path) => describeEntry(root, path));
  return { entries };
}

async function describeEntry(root: string, path: string): Promise<TreeEntry> {
  const full = join(root, path);
  const info = await lstat(full);
  const type: EntryType = info.isFile()
    ? 'file'
    : info.isDirectory()
      ? 'dir'
      : info.isSymbolicLink()
        ? 'symlink'
        : 'other';
  const xattrs = (await tool('getfattr', ['-d', '-h', '-m', '-', '-e', 'base64', '--', path], root))
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('# file: '))
    .sort();
  const acl =
    type === 'symlink'
      ? null
      : (await tool('getfacl', ['-p', '-n', '-E', '--', path], root))
          .split('\n')
          .filter((line) => line !== '' && !line.startsWith('#'));
  return {
    path,
    type,
    mode: (info.mode & 0o7777).toString(8).padStart(4, '0'),
    uid: info.uid,
    gid: info.gid,
    size: type === 'file' ? info.size : null,
    sha256: type === 'file' ? await sha256File(full) : null,
    target: type === 'symlink' ? await readlink(full) : null,
    xattrs,
    acl,
  };
}

/**
 * Every difference between two snapshots as one readable line (empty when they are equal), e.g.
 * `"shadow/x": mode 0600 (source) → 0670 (restored)` or `"shadow/y": xattr user.fortify only in source`.
 */
export function diffSnapshots(
  a: TreeSnapshot,
  b: TreeSnapshot,
  labels: [string, string] = ['source', 'restored'],
): string[] {
  const [la, lb] = labels;
  const differences: string[] = [];
  const inB = new Map(b.entries.map((entry) => [entry.path, entry]));
  const inA = new Map(a.entries.map((entry) => [entry.path, entry]));
  for (const ea of a.entries) {
    const name = JSON.stringify(ea.path);
    const eb = inB.get(ea.path);
    if (!eb) {
      differences.push(`${name}: ${ea.type} only in ${la}`);
      continue;
    }
    for (const field of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target'] as const) {
      if (ea[field] !== eb[field]) {
        differences.push(`${name}: ${field} ${String(ea[field])} (${la}) → ${String(eb[field])} (${lb})`);
      }
    }
    const xa = attributeMap(ea.xattrs);
    const xb = attributeMap(eb.xattrs);
    for (const [key, value] of xa) {
      if (!xb.has(key)) differences.push(`${name}: xattr ${key} only in ${la}`);
      else if (xb.get(key) !== value)
        differences.push(`${name}: xattr ${key} ${value} (${la}) → ${xb.get(key)} (${lb})`);
    }
    for (const key of xb.keys()) if (!xa.has(key)) differences.push(`${name}: xattr ${key} only in ${lb}`);
    const aclA = ea.acl ?? [];
    const aclB = eb.acl ?? [];
    for (const line of aclA) if (!aclB.includes(line)) differences.push(`${name}: acl ${line} only in ${la}`);
    for (const line of aclB) if (!aclA.includes(line)) differences.push(`${name}: acl ${line} only in ${lb}`);
  }
  for (const eb of b.entries) {
    if (!inA.has(eb.path)) differences.push(`${JSON.stringify(eb.path)}: ${eb.type} only in ${lb}`);
  }
  return differences;
}

function attributeMap(lines: string[]): Map<string, string> {
  return new Map(
    lines.map((line) => {
      const equals = line.indexOf('=');
      return equals < 0 ? [line, ''] : [line.slice(0, equals), line.slice(equals + 1)];
    }),
  );
}

async function tool(command: string, args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run(command, args, { cwd, env: TOOL_ENV, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    for (let written = 0; written < bytes;) {
      const chunk = randomBytes(Math.min(1024 * 1024, bytes - written));
      await file.write(chunk);
      written += chunk.length;
    }
  } finally {
    await file.close();
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function mapLimited<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
