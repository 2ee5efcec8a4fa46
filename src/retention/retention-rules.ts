import type { Retention } from '../policies/policy';
import type { RestorePoint } from '../providers/backup-provider';

/** What an engine can delete: single backups (Bacula jobs) or only whole chains, oldest first (duplicity). */
export type PruneUnit = 'point' | 'chain';

export interface RetentionPlan {
  /** Complete points the policy keeps, newest first, each with why. */
  keep: Array<{ point: RestorePoint; reason: string }>;
  /** Complete points to remove, newest first. */
  remove: Array<{ point: RestorePoint; reason: string }>;
  /** Incomplete and orphaned sets: never decided here (duplicity's cleanup or a later backup deals with them). */
  untouched: RestorePoint[];
}

const DAY_MS = 86_400_000;

/**
 * Decides, from restore points alone, what a policy keeps at `now`. Pure: the clock is an argument.
 * - a full is kept while younger than `fullDays`, and the `minFulls` newest fulls whatever their age;
 * - a differential while younger than `differentialDays`, an incremental while younger than `incrementalDays`;
 * - the newest complete point (so its chain, the newest complete chain) is always kept;
 * - every point in a kept point's chain is kept;
 * - with `unit: 'chain'`, a chain is kept whole when any of its points is, and every chain newer than a kept one is
 *   kept too (duplicity's remove-older-than deletes whole chains, oldest first).
 */
export function planRetention(
  points: readonly RestorePoint[],
  retention: Retention,
  now: Date,
  unit: PruneUnit,
): RetentionPlan {
  const complete = points.filter((point) => point.state === 'complete').sort(newestFirst);
  const untouched = points.filter((point) => point.state !== 'complete').sort(newestFirst);
  const byId = new Map(complete.map((point) => [point.id, point]));
  const reasons = new Map<string, string>();
  const keep = (point: RestorePoint, reason: string) => {
    if (!reasons.has(point.id)) reasons.set(point.id, reason);
  };
  const age = (point: RestorePoint) => now.getTime() - Date.parse(point.time);

  if (complete.length > 0) keep(complete[0], 'the newest complete point');
  let fullsSeen = 0;
  for (const point of complete) {
    if (point.level === 'full') {
      fullsSeen += 1;
      if (age(point) <= retention.fullDays * DAY_MS) keep(point, `a full younger than ${retention.fullDays} day(s)`);
      else if (fullsSeen <= retention.minFulls) keep(point, `one of the ${retention.minFulls} newest full(s)`);
    } else if (point.level === 'differential') {
      if (age(point) <= retention.differentialDays * DAY_MS)
        keep(point, `a differential younger than ${retention.differentialDays} day(s)`);
    } else if (age(point) <= retention.incrementalDays * DAY_MS) {
      keep(point, `an incremental younger than ${retention.incrementalDays} day(s)`);
    }
  }
  // Chains: a kept point needs every backup it replays.
  for (const id of [...reasons.keys()]) {
    for (const member of byId.get(id)!.chain) {
      if (member !== id && byId.has(member)) keep(byId.get(member)!, `needed to restore ${id}`);
    }
  }

  if (unit === 'chain') {
    const chains = new Map<string, RestorePoint[]>();
    for (const point of complete) {
      const head = point.chain[0] ?? point.id;
      chains.set(head, [...(chains.get(head) ?? []), point]);
    }
    // Oldest chain first; once one chain is kept, every newer chain is kept too.
    const ordered = [...chains.entries()].sort(([a], [b]) => byId.get(a)!.time.localeCompare(byId.get(b)!.time));
    let keptChainSeen = false;
    for (const [head, members] of ordered) {
      const anyKept = members.some((point) => reasons.has(point.id));
      if (anyKept) {
        for (const point of members)
          keep(point, `its chain (from ${head}) holds a kept point; duplicity removes whole chains`);
        keptChainSeen = true;
      } else if (keptChainSeen) {
        for (const point of members) keep(point, 'an older chain is kept, and duplicity removes chains oldest first');
      }
    }
  }

  const plan: RetentionPlan = { keep: [], remove: [], untouched };
  for (const point of complete) {
    const reason = reasons.get(point.id);
    if (reason) plan.keep.push({ point, reason });
    else plan.remove.push({ point, reason: `a ${point.level} past its retention, needed by no kept point` });
  }
  return plan;
}

function newestFirst(a: RestorePoint, b: RestorePoint): number {
  return b.time.localeCompare(a.time) || b.id.localeCompare(a.id);
}
