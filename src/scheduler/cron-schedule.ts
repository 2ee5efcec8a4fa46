import { Cron } from 'croner';

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week, crontab(5) semantics, plus croner's
 * `L` and `#n`) read in an IANA time zone. croner owns the calendar: DST gaps and repeated hours, and steps on day
 * fields, which the hand-written matcher this replaces got wrong.
 */
export class CronSchedule {
  private readonly cron: Cron;

  /** Throws an Error saying what is wrong with the expression or the zone. */
  constructor(
    readonly expression: string,
    readonly timezone?: string,
  ) {
    const problem = cronProblem(expression, timezone);
    if (problem) throw new Error(problem);
    this.cron = new Cron(expression.trim(), { paused: true, timezone });
  }

  /** The first slot strictly after `after`, or null when there is none. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }

  /** The latest slot at or before `at`, or null. */
  latest(at: Date): Date | null {
    return this.cron.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null;
  }

  /** Slots at or before `at`, newest first, down to the first one at or before `until` (included), at most `max`. */
  latestSince(at: Date, until: Date, max: number): Date[] {
    const slots: Date[] = [];
    let cursor = new Date(at.getTime() + 1);
    while (slots.length < max) {
      const batch = this.cron.previousRuns(Math.min(8, max - slots.length), cursor);
      if (batch.length === 0) break;
      for (const slot of batch) {
        slots.push(slot);
        if (slot.getTime() <= until.getTime() || slots.length >= max) return slots;
      }
      cursor = batch[batch.length - 1];
    }
    return slots;
  }
}

/** Why `expression` in `timezone` is not a usable schedule, or undefined when it is. */
export function cronProblem(expression: string, timezone?: string): string | undefined {
  if (typeof expression !== 'string') return 'must be a cron expression';
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5)
    return `a cron expression has five fields (minute hour day month weekday), not ${fields.length}`;
  if (timezone !== undefined && !isTimeZone(timezone)) return `${JSON.stringify(timezone)} is not an IANA time zone`;
  try {
    const cron = new Cron(expression.trim(), { paused: true, timezone });
    if (!cron.nextRun(new Date())) return 'the expression never fires';
  } catch (error) {
    return (error as Error).message.replace(/^CronPattern: /, '');
  }
  return undefined;
}

export function isTimeZone(zone: string): boolean {
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
