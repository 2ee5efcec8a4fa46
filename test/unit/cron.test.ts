import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CronExpression } from '../../src/common/schedule/cron';

describe('CronExpression', () => {
  it('matches the default nightly schedule once a day at 02:30', () => {
    const cron = new CronExpression('30 2 * * *');
    assert.equal(cron.matches(new Date(2026, 10, 26, 2, 30)), true);
    assert.equal(cron.matches(new Date(2026, 10, 26, 2, 31)), false);
    assert.deepEqual(cron.next(new Date(2026, 10, 26, 2, 30, 10)), new Date(2026, 10, 27, 2, 30));
  });

  it('reads lists, ranges and steps, and either day field as crontab does', () => {
    const cron = new CronExpression('*/15 1-3,22 * * 1-5');
    assert.equal(cron.matches(new Date(2026, 10, 23, 22, 45)), true); // a Monday
    assert.equal(cron.matches(new Date(2026, 10, 22, 22, 45)), false); // a Sunday
    const either = new CronExpression('0 0 1 * 0');
    assert.equal(either.matches(new Date(2026, 10, 1, 0, 0)), true); // the 1st
    assert.equal(either.matches(new Date(2026, 10, 22, 0, 0)), true); // a Sunday
    assert.equal(either.matches(new Date(2026, 10, 23, 0, 0)), false);
    assert.equal(new CronExpression('0 0 * * 7').matches(new Date(2026, 10, 22, 0, 0)), true);
  });

  it('refuses malformed expressions', () => {
    for (const bad of ['* * * *', '61 * * * *', '* 24 * * *', 'a b c d e', '5-1 * * * *', '*/0 * * * *']) {
      assert.throws(() => new CronExpression(bad), Error, bad);
    }
  });
});
