/**
 * A five-field cron expression (minute hour day-of-month month day-of-week) with `*`, lists, ranges and steps, as
 * crontab(5) reads it: when both day fields are restricted, either may match.
 */
export class CronExpression {
  private readonly fields: Array<Set<number>>;
  private readonly dayOfMonthAny: boolean;
  private readonly dayOfWeekAny: boolean;

  private static readonly RANGES: Array<[number, number]> = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ];

  constructor(readonly source: string) {
    const parts = source.trim().split(/\s+/);
    if (parts.length !== 5) throw new Error(`a cron expression has five fields, not ${parts.length}: ${source}`);
    this.fields = parts.map((part, index) => parseField(part, ...CronExpression.RANGES[index]));
    // Sunday is 0 or 7.
    if (this.fields[4].has(7)) this.fields[4].add(0);
    this.dayOfMonthAny = parts[2] === '*';
    this.dayOfWeekAny = parts[4] === '*';
  }

  /** Whether the expression fires in the minute that holds `date` (local time, as cron does). */
  matches(date: Date): boolean {
    const [minute, hour, dom, month, dow] = this.fields;
    if (!minute.has(date.getMinutes()) || !hour.has(date.getHours()) || !month.has(date.getMonth() + 1)) return false;
    const domMatch = dom.has(date.getDate());
    const dowMatch = dow.has(date.getDay());
    if (this.dayOfMonthAny || this.dayOfWeekAny) return domMatch && dowMatch;
    return domMatch || dowMatch;
  }

  /** The first minute after `from` that fires (searches a little over a year ahead). */
  next(from: Date): Date {
    const candidate = new Date(from.getTime());
    candidate.setSeconds(0, 0);
    for (let i = 0; i < 60 * 24 * 370; i++) {
      candidate.setMinutes(candidate.getMinutes() + 1);
      if (this.matches(candidate)) return new Date(candidate.getTime());
    }
    throw new Error(`${this.source} never fires`);
  }
}

function parseField(field: string, min: number, max: number): Set<number> {
  const values = new Set<number>();
  for (const item of field.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
    if (!match) throw new Error(`not a cron field: ${field}`);
    const step = match[4] ? Number(match[4]) : 1;
    const start = match[1] === '*' ? min : Number(match[2]);
    const end = match[1] === '*' ? max : match[3] !== undefined ? Number(match[3]) : match[4] ? max : start;
    if (start < min || end > max || start > end || step < 1) throw new Error(`cron field out of range: ${field}`);
    for (let value = start; value <= end; value += step) values.add(value);
  }
  return values;
}
