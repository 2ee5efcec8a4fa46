import { groupSets } from './duplicity-chain-repair';
import { duplicityTimeToIso, parseDuplicityFileName } from './duplicity-names';
import type { CollectionStatus, DuplicityChain, DuplicitySet } from './duplicity-collection-status';

/**
 * The chains of a target read from its file names alone, as collection-status would report them. collection-status
 * first copies every manifest and signature file of the target into an archive dir (on a 100,000-file site, tens of
 * megabytes per set, and a fresh scratch dir every time), then walks them; the names already say which sets exist,
 * which finished (a manifest is written last), and which set each incremental builds on (`start.to.end`).
 */
export function collectionFromNames(targetNames: readonly string[]): CollectionStatus {
  const complete = groupSets(targetNames).filter((set) => set.complete);
  const chains: DuplicityChain[] = [];
  const orphaned: CollectionStatus['orphaned'] = [];
  for (const set of complete) {
    const volumes = set.files.filter((name) => parseDuplicityFileName(name)?.content === 'volume');
    const entry: DuplicitySet = {
      type: set.type,
      time: set.time,
      iso: duplicityTimeToIso(set.time),
      volumes: volumes.length,
      encrypted: set.files.some((name) => parseDuplicityFileName(name)?.encrypted === true),
    };
    if (set.type === 'full') {
      chains.push({ primary: false, sets: [entry] });
      continue;
    }
    const chain = chains.find((candidate) => candidate.sets.at(-1)?.time === set.startTime);
    if (chain) chain.sets.push(entry);
    else orphaned.push({ type: set.type, time: set.time, iso: entry.iso, startTime: set.startTime });
  }
  if (chains.length > 0) chains[chains.length - 1].primary = true;
  return {
    backend: null,
    chains,
    orphanedSets: orphaned.length,
    incompleteSets: groupSets(targetNames).filter((set) => !set.complete).length,
    orphaned,
    unrecognized: [],
  };
}

/** Whether the target holds a finished full set, so that an incremental has something to build on. */
export function hasCompleteFull(targetNames: readonly string[]): boolean {
  return groupSets(targetNames).some((set) => set.type === 'full' && set.complete);
}
