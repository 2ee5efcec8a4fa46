/** Why a descriptor-based operation inside a tenant's tree was refused. */
export type SafeFsRefusal =
  /** A path component is a symlink, or not a directory where one was needed. */
  | 'not-a-directory'
  /** The name is a symlink where a file was expected. */
  | 'symlink'
  /** A FIFO, socket, device node or directory where a regular file was expected. */
  | 'not-regular'
  /** The file has more than one hard link: it may be someone else's file linked in. */
  | 'hardlinked'
  /** A directory root writes into belongs to someone else or is writable by others. */
  | 'not-private'
  /** The file is larger than the caller accepts. */
  | 'too-large'
  /** Reading took longer than the caller accepts. */
  | 'timeout'
  /** A name with `/`, NUL, `.` or `..`, or empty. */
  | 'bad-name'
  /** The name kept vanishing between creating and opening it: someone else renames it. */
  | 'unstable'
  /** The opened directory was removed while in use (replaced by a rename of the tree's owner): nothing can be made in it. */
  | 'removed';

/** A refused filesystem step; `reason` says which rule refused it, `path` is for messages only. */
export class SafeFsError extends Error {
  constructor(
    readonly reason: SafeFsRefusal,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'SafeFsError';
  }
}

export function isErrno(error: unknown, ...codes: string[]): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}
