/**
 * Working as root inside a tenant's tree from opened descriptors (`/proc/self/fd/<fd>/<name>`): see
 * docs/security.md and /work/shared/reference/safe-fs.md. Nothing here checks a path and then uses it.
 */
export { MAX_TREE_DEPTH, OpenedDir, readBounded, withDir } from './opened-dir';
export type { DirEntry, OpenedRegularFile, ReadLimits } from './opened-dir';
export { isErrno, SafeFsError } from './safe-fs-error';
export type { SafeFsRefusal } from './safe-fs-error';
export { removeServiceTree } from './remove-service-tree';
export { walk } from './walk';
export type { WalkEntry, WalkOptions } from './walk';
export { writeFileAtomic } from './write-file-atomic';
