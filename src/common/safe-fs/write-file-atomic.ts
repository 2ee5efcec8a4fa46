import type { OpenedDir } from './opened-dir';

/**
 * Writes `data` to `name` in an opened private directory atomically and durably: a new 0600 file under `partialName`
 * (`O_CREAT|O_EXCL|O_NOFOLLOW`, after removing a leftover of a killed run), fsync, rename, fsync of the directory. A
 * kill leaves the old content or the new one, never half of it.
 */
export async function writeFileAtomic(
  dir: OpenedDir,
  name: string,
  data: string,
  partialName = `.${name}.partial`,
): Promise<void> {
  await dir.unlink(partialName);
  const handle = await dir.createFile(partialName, 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await dir.unlink(partialName);
    throw error;
  }
  await handle.close();
  await dir.rename(partialName, dir, name);
  await dir.sync();
}
