import { readFileSync } from 'node:fs';

/** Tags of the kernel's `system.posix_acl_*` xattr value (linux/posix_acl_xattr.h). */
const TAGS: Record<number, string> = {
  0x01: 'user',
  0x02: 'user',
  0x04: 'group',
  0x08: 'group',
  0x10: 'mask',
  0x20: 'other',
};
const NAMED_USER = 0x02;
const NAMED_GROUP = 0x08;
const XATTR_VERSION = 2;

/** uid and gid → name, as libacl's text form shows them (numeric when the id has no name). */
export interface IdNames {
  user(uid: number): string;
  group(gid: number): string;
}

/** Names from /etc/passwd and /etc/group, read once per use (a download); the files are the operator's. */
export function readIdNames(passwd = '/etc/passwd', group = '/etc/group'): IdNames {
  const load = (file: string): Map<number, string> => {
    const names = new Map<number, string>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return names;
    }
    for (const line of text.split('\n')) {
      const fields = line.split(':');
      const id = Number(fields[2]);
      if (fields.length >= 3 && fields[0] && Number.isInteger(id) && !names.has(id)) names.set(id, fields[0]);
    }
    return names;
  };
  const users = load(passwd);
  const groups = load(group);
  return {
    user: (uid) => users.get(uid) ?? String(uid),
    group: (gid) => groups.get(gid) ?? String(gid),
  };
}

/**
 * The text form GNU tar writes in `SCHILY.acl.access` / `SCHILY.acl.default` (libacl's `acl_to_text`: one
 * `tag:qualifier:perms` entry per line), from the binary `system.posix_acl_*` xattr value. Undefined when the value
 * is not a well-formed ACL.
 */
export function aclXattrToText(value: Buffer, names: IdNames): string | undefined {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== XATTR_VERSION) return undefined;
  let text = '';
  for (let offset = 4; offset < value.length; offset += 8) {
    const tag = value.readUInt16LE(offset);
    const perm = value.readUInt16LE(offset + 2);
    const id = value.readUInt32LE(offset + 4);
    const name = TAGS[tag];
    if (!name) return undefined;
    const qualifier = tag === NAMED_USER ? names.user(id) : tag === NAMED_GROUP ? names.group(id) : '';
    const perms = `${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`;
    text += `${name}:${qualifier}:${perms}\n`;
  }
  return text;
}
