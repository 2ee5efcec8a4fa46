import type { ProviderName } from '../../config/app-config';
import type { RestorePoint } from '../backup-provider';
import { DuplicityCode } from './duplicity-events';
import type { DuplicityRecord } from './duplicity-log-fd';
import {
  duplicityTimeToIso,
  parseDuplicityFileName,
  type DuplicitySetRef,
  type DuplicitySetType,
} from './duplicity-names';

export interface DuplicitySet {
  type: DuplicitySetType;
  /** duplicity form, e.g. `20261126T212109Z` (an incremental's end time). */
  time: string;
  iso: string;
  volumes: number;
  encrypted: boolean;
}

export interface DuplicityChain {
  /**
   * `chain-complete`: the newest chain, matched by its signature chain; the next incremental extends it.
   * The others (`chain-no-sig N`, a misnomer: they usually do have signatures) are older chains, or every chain when
   * the newest one's signatures are gone. Both kinds restore (checked with real duplicity, signatures deleted too).
   */
  primary: boolean;
  /** Oldest first: the full, then its incrementals. */
  sets: DuplicitySet[];
}

export interface CollectionStatus {
  backend: string | null;
  /** Oldest first (duplicity prints the secondary chains by time, then the primary one). */
  chains: DuplicityChain[];
  /** Sets whose full is gone (duplicity lists their files in a WARNING 6: see `orphaned`). */
  orphanedSets: number;
  /**
   * Sets on the target without a manifest, from an interrupted run. Only counted when the archive dir holds no
   * `.part` manifest for it: with one, duplicity counts the set complete (see `partialSetsIn`).
   */
  incompleteSets: number;
  /** The orphaned sets by name, when duplicity's warning listed them. */
  orphaned: DuplicitySetRef[];
  /** Lines of the status block that were not understood (empty on every output seen so far). */
  unrecognized: string[];
}

/** Reads collection-status's INFO 3 record; null when the log has none (the command failed). */
export function parseCollectionStatus(records: Iterable<DuplicityRecord>): CollectionStatus | null {
  let block: DuplicityRecord | null = null;
  const orphaned = new Map<string, DuplicitySetRef>();
  for (const record of records) {
    if (record.level === 'INFO' && record.code === DuplicityCode.info.collectionStatus && record.extra.includes('\n')) {
      block = record;
    }
    if (record.level === 'WARNING' && record.code === DuplicityCode.warning.orphanedBackup) {
      for (const set of orphanedSetsIn(record.text)) orphaned.set(set.time, set);
    }
  }
  if (!block) return null;

  const status: CollectionStatus = {
    backend: null,
    chains: [],
    orphanedSets: 0,
    incompleteSets: 0,
    orphaned: [...orphaned.values()].sort((a, b) => a.time.localeCompare(b.time)),
    unrecognized: [],
  };
  let chain: DuplicityChain | null = null;
  for (const line of block.extra.split('\n')) {
    if (line.trim() === '') continue;
    const set = /^ (full|inc) (\d{8}T\d{6}Z) (\d+) (enc|noenc)$/.exec(line);
    if (set && chain) {
      const [, type, time, volumes, enc] = set;
      chain.sets.push({
        type: type as DuplicitySetType,
        time,
        iso: duplicityTimeToIso(time),
        volumes: Number(volumes),
        encrypted: enc === 'enc',
      });
      continue;
    }
    const [key, ...rest] = line.split(' ');
    const value = rest.join(' ');
    if (key === 'chain-complete' || (key === 'chain-no-sig' && /^\d+$/.test(value))) {
      chain = { primary: key === 'chain-complete', sets: [] };
      status.chains.push(chain);
    } else if (key === 'orphaned-sets-num' && /^\d+$/.test(value)) {
      status.orphanedSets = Number(value);
    } else if (key === 'incomplete-sets-num' && /^\d+$/.test(value)) {
      status.incompleteSets = Number(value);
    } else if (key === 'backend') {
      status.backend = value;
    } else if (key !== 'archive-dir') {
      // archive-dir prints a Path object's repr, "(. dir)": nothing to read there.
      status.unrecognized.push(line);
    }
  }
  return status;
}

/** WARNING 6 lists each orphaned set as `[name, name, ...]`, one set a line. */
function orphanedSetsIn(text: string[]): DuplicitySetRef[] {
  const sets: DuplicitySetRef[] = [];
  for (const line of text) {
    const m = /^\[(.*)\]$/.exec(line.trim());
    if (!m) continue;
    const names = m[1].split(', ').map(parseDuplicityFileName);
    const set = names.find((n) => n !== null)?.set;
    if (set) sets.push(set);
  }
  return sets;
}

export interface RestorePointOptions {
  /** Sets an interrupted run left half-written (`partialSetsIn` of the archive dir's listing). */
  partialSets?: readonly DuplicitySetRef[];
}

export function duplicityRestorePointId(time: string): string {
  return `duplicity-${time}`;
}

/**
 * Restore points, newest first. A set of any listed chain is `complete`: secondary chains restore as well as the
 * primary one. A set the archive dir holds a `.part` manifest for is `incomplete` (duplicity still lists it in a
 * chain, and a restore of it "succeeds" with only the files written before the interruption), and so is everything
 * after it in its chain. Orphaned sets are `orphaned`; their chain is only themselves, since their full is gone.
 */
export function toRestorePoints(
  status: CollectionStatus,
  provider: ProviderName = 'duplicity',
  options: RestorePointOptions = {},
): RestorePoint[] {
  const partial = new Set((options.partialSets ?? []).map((set) => set.time));
  const points = new Map<string, RestorePoint>();
  const point = (set: DuplicitySetRef, chain: string[], state: RestorePoint['state']): RestorePoint => ({
    id: duplicityRestorePointId(set.time),
    provider,
    time: set.iso,
    level: set.type === 'full' ? 'full' : 'incremental',
    chain,
    bytes: null,
    files: null,
    state,
  });

  for (const chain of status.chains) {
    const ids: string[] = [];
    let broken = false;
    for (const set of chain.sets) {
      ids.push(duplicityRestorePointId(set.time));
      broken ||= partial.has(set.time);
      points.set(set.time, point(set, [...ids], broken ? 'incomplete' : 'complete'));
    }
  }
  for (const set of status.orphaned) {
    if (!points.has(set.time)) points.set(set.time, point(set, [duplicityRestorePointId(set.time)], 'orphaned'));
  }
  for (const set of options.partialSets ?? []) {
    if (points.has(set.time)) continue;
    // Not in any chain (the status was read without this archive dir): hang it under the chain it extends.
    const base = set.startTime ? points.get(set.startTime) : undefined;
    const chain = [...(base?.chain ?? []), duplicityRestorePointId(set.time)];
    points.set(set.time, point(set, chain, 'incomplete'));
  }
  return [...points.values()].sort((a, b) => b.time.localeCompare(a.time));
}
