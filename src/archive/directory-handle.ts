import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { isErrno, OpenedDir, SafeFsError } from '../common/safe-fs';

/**
 * Opens `root/parts…` through safe-fs: `root` (a site or a work area of ours) is trusted, every component below it
 * is opened relative to the one before with O_DIRECTORY|O_NOFOLLOW, so a symlink on the way, or a directory a tenant
 * swaps for a link meanwhile, fails instead of leading outside. The caller closes the result.
 */
export async function openDirectoryBeneath(root: string, parts: string[], shown: string): Promise<OpenedDir> {
  const top = await OpenedDir.openTrusted(root);
  try {
    return parts.length ? await top.openDir(parts.join('/')) : await top.reopen();
  } catch (error) {
    if (isErrno(error, 'ENOENT')) throw new AppError(ErrorCode.ArchivePathNotFound, `${shown} does not exist.`);
    if (error instanceof SafeFsError) {
      throw new AppError(
        ErrorCode.ArchivePathNotFound,
        `${shown} is not a directory (a file or a symbolic link on the way).`,
      );
    }
    throw error;
  } finally {
    await top.close();
  }
}
