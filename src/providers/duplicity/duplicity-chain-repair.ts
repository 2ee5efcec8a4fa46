import { sleepUnlessAborted } from '../../common/abortable-sleep';
import { parseDuplicityFileName, toDuplicityTime, type DuplicitySetType } from './duplicity-names';

/*
 * What makes a duplicity chain unusable, and how to undo it from file names alone (collection-status itself fails on
 * some of these states with `AssertionError` in `get_sorted_chains`, so it cannot be the judge):
 *
 * - two complete sets ending in the same second (an incremental `A.to.T` and a full `T` made right after it): every
 *   duplicity action on the name fails from then on. Renaming the later set (the full) to the next free second keeps
 *   both restorable: neither manifests nor signatures hold the set's own time (checked with 0.8.22).
 * - a set without a manifest on the target: the run that wrote it was killed (duplicity uploads volumes, then the
 *   signatures, then the manifest), so nothing can restore from it. Its files are removed.
 * - the local archive dir (a cache of the target's manifests and signatures) holding `.part` files or sets the target
 *   no longer has: it is emptied, and duplicity rebuilds it from the target on its next run.
 */

export interface TargetSet {
  type: DuplicitySetType;
  /** The set's (end) time, duplicity form. */
  time: string;
  /** An incremental's start time: the time of the set it builds on. */
  startTime?: string;
  files: string[];
  /** Its manifest is on the target: the run that wrote it finished. */
  complete: boolean;
}

export interface RepairPlan {
  /** Target files of runs that did not finish. */
  remove: string[];
  /** Target files renamed, `[from, to]`, in order. */
  rename: Array<[string, string]>;
  /** Whether the local archive dir must be emptied (rebuilt by duplicity from the target). */
  clearArchive: boolean;
  /** One line per repair, for the job. */
  notes: string[];
  /** Set when the target cannot be repaired safely: what to remove by hand. */
  unsafe: string | null;
  /** The newest set time once the plan is carried out (duplicity form), null for an empty target. */
  newestTime: string | null;
}

function setKey(type: DuplicitySetType, time: string, startTime?: string): string {
  return `${type}:${startTime ?? ''}:${time}`;
}

/** The duplicity sets among `names`, each with its files. Names duplicity did not write are left out. */
export function groupSets(names: Iterable<string>): TargetSet[] {
  const sets = new Map<string, TargetSet>();
  for (const name of names) {
    const parsed = parseDuplicityFileName(name);
    if (!parsed) continue;
    const key = setKey(parsed.set.type, parsed.set.time, parsed.set.startTime);
    let set = sets.get(key);
    if (!set) {
      set = { type: parsed.set.type, time: parsed.set.time, files: [], complete: false };
      if (parsed.set.startTime) set.startTime = parsed.set.startTime;
      sets.set(key, set);
    }
    set.files.push(name);
    if (parsed.content === 'manifest' && !parsed.partial) set.complete = true;
  }
  return [...sets.values()].sort((a, b) => a.time.localeCompare(b.time) || a.type.localeCompare(b.type));
}

function nextSecond(time: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(time)!;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  return toDuplicityTime(new Date(Date.UTC(year, month - 1, day, hour, minute, second + 1)));
}

/** Plans the repair of one chain from the target's file names and the local archive dir's. */
export function planRepair(targetNames: readonly string[], archiveNames: readonly string[]): RepairPlan {
  const plan: RepairPlan = {
    remove: [],
    rename: [],
    clearArchive: false,
    notes: [],
    unsafe: null,
    newestTime: null,
  };
  const sets = groupSets(targetNames);
  for (const set of sets.filter((candidate) => !candidate.complete)) {
    plan.remove.push(...set.files);
    plan.notes.push(
      `removed the ${set.type === 'full' ? 'full' : 'incremental'} set ${set.time} that a killed run left without a manifest (${set.files.length} file(s))`,
    );
  }
  const complete = sets.filter((set) => set.complete);
  const times = new Set(complete.flatMap((set) => [set.time, ...(set.startTime ? [set.startTime] : [])]));
  const byEnd = new Map<string, TargetSet[]>();
  for (const set of complete) byEnd.set(set.time, [...(byEnd.get(set.time) ?? []), set]);
  for (const [time, sharing] of byEnd) {
    if (sharing.length < 2) continue;
    const fulls = sharing.filter((set) => set.type === 'full');
    const building = complete.filter((set) => set.startTime === time);
    const next = nextSecond(time);
    if (sharing.length === 2 && fulls.length === 1 && building.length === 0 && !times.has(next)) {
      // The incremental ended the run before; the full started in that same second, after it.
      const full = fulls[0];
      for (const file of full.files) plan.rename.push([file, file.replace(`.${time}.`, `.${next}.`)]);
      full.time = next;
      times.add(next);
      plan.notes.push(
        `the full set ${time} shared its second with the incremental ending then; renamed it to ${next} (restore point duplicity-${next})`,
      );
      continue;
    }
    const later = [...fulls, ...building];
    const toRemove = (later.length > 0 ? later : sharing.slice(1)).flatMap((set) => set.files).sort();
    plan.unsafe =
      `${sharing.length} backup sets end in the same second (${time}) and which chain each later set extends cannot ` +
      `be told apart. Remove these files from the target (and empty the archive dir of this name): ${toRemove.join(', ')}`;
    return plan;
  }
  const remaining = new Set(
    complete.flatMap((set) => set.files.map((file) => plan.rename.find(([from]) => from === file)?.[1] ?? file)),
  );
  const stale = archiveNames.filter((name) => {
    const parsed = parseDuplicityFileName(name);
    if (!parsed) return false;
    // The archive dir holds plain copies of what the target holds compressed or encrypted.
    return parsed.partial || !hasTargetCopy(name, remaining);
  });
  if (stale.length > 0 || plan.remove.length > 0 || plan.rename.length > 0) {
    plan.clearArchive = archiveNames.some((name) => parseDuplicityFileName(name) !== null);
    if (stale.length > 0) {
      plan.notes.push(
        `emptied the local archive dir: it held ${stale.length} file(s) of unfinished or removed sets (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', …' : ''})`,
      );
    }
  }
  plan.newestTime =
    complete
      .map((set) => set.time)
      .sort()
      .at(-1) ?? null;
  return plan;
}

function hasTargetCopy(archiveName: string, targetNames: ReadonlySet<string>): boolean {
  const base = archiveName.replace(/(\.gz|\.gpg|\.z)$/, '');
  return [base, `${base}.gz`, `${base}.gpg`, `${base}.z`].some((name) => targetNames.has(name));
}

/** Milliseconds to wait so that a set started now cannot share a second with `newestTime`. */
export function msUntilAfter(newestTime: string | null, nowMs: number): number {
  if (!newestTime) return 0;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(newestTime);
  if (!m) return 0;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const firstFreeMs = Date.UTC(year, month - 1, day, hour, minute, second + 1);
  return Math.max(0, firstFreeMs - nowMs);
}

/**
 * Resolves once `clock()` has left the second `newestTime` names. A timer can fire a millisecond before the wall clock
 * reaches its end, so the clock is read again after each wait (seen: `--current-time` of the newest set's own second,
 * then duplicity's AssertionError on that name).
 */
export async function sleepUntilAfter(
  newestTime: string | null,
  clock: () => number,
  signal: AbortSignal,
): Promise<void> {
  for (let wait = msUntilAfter(newestTime, clock()); wait > 0; wait = msUntilAfter(newestTime, clock())) {
    await sleepUnlessAborted(wait, signal);
  }
}
