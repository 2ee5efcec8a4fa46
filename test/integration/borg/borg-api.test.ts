import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { holdBorgLock, writeSecretFile } from '../../support/deduplicating-engines';
import { describeDeduplicatingEngine } from '../../support/deduplicating-engine-suite';

const SECRET = 'borg-secret-correct-horse-battery';

/** borg 1.2 with real repositories (one per site) on this machine, driven through the HTTP API. */
describeDeduplicatingEngine({
  provider: 'borg',
  secret: SECRET,
  lockedCode: 'borg-repository-locked',
  wrongSecretCode: 'borg-wrong-passphrase',
  env: (root) => ({
    BORG_REPOSITORY_ROOT: join(root, 'repos'),
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'passphrase'), SECRET),
  }),
  wrongSecretEnv: (root) => ({
    BORG_REPOSITORY_ROOT: join(root, 'repos'),
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'wrong-passphrase'), 'not-the-passphrase'),
  }),
  unreachableEnv: (root) => ({
    // An ssh server that refuses connections.
    BORG_REPOSITORY_ROOT: 'ssh://backup@127.0.0.1:1/srv/borg',
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'passphrase'), SECRET),
  }),
  walksFromOpenedDirectories: true,
  isLocked: (t) => existsSync(join(t.config.borg.repositoryRoot, 'site1', 'lock.exclusive')),
  holdLock: (t, host) =>
    holdBorgLock(
      join(t.config.borg.repositoryRoot, 'site1'),
      t.config.borg.passphraseFile!,
      join(t.root, 'lock-holder-borg'),
      host,
    ),
});
