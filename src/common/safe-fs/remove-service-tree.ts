import { basename, dirname } from 'node:path';
import { OpenedDir, withDir } from './opened-dir';
import { isErrno } from './safe-fs-error';

/** Removes a directory the service made under a trusted parent (VIRTUAL_ROOT, DATA_DIR) without following links. */
export async function removeServiceTree(path: string): Promise<void> {
  try {
    await withDir(OpenedDir.openTrusted(dirname(path)), (parent) => parent.removeTree(basename(path)));
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
}
