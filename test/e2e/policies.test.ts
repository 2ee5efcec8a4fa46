import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertProblem } from '../support/problem';
import { makeSites } from '../support/sample-sites';
import { startTestApp, type TestApp } from '../support/test-app';

const WEEKLY = {
  name: 'weekly-cycle',
  provider: 'bacula',
  schedules: {
    full: { cron: '0 2 * * 0#1', timezone: 'Europe/Berlin' },
    differential: { cron: '0 2 * * 0', timezone: 'Europe/Berlin' },
    incremental: { cron: '0 2 * * 1-6', timezone: 'Europe/Berlin' },
  },
  retention: { fullDays: 60, minFulls: 1, differentialDays: 20, incrementalDays: 4 },
  budget: { maxChain: 8 },
};

const NIGHTLY = {
  name: 'nightly-duplicity',
  provider: 'duplicity',
  schedules: { full: { cron: '0 3 1 * *' }, incremental: { cron: '0 3 * * *' } },
  retention: { fullDays: 90, minFulls: 2, differentialDays: 0, incrementalDays: 30 },
};

describe('policies over HTTP', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp({ PROVIDERS: 'duplicity,bacula', SCHEDULE_SPREAD_MINUTES: '30' });
    makeSites(t.config.virtualRoot, [
      { n: 1, domain: 'one.test' },
      { n: 2, domain: 'two.test' },
    ]);
  });
  after(() => t.close());

  it('creates, reads, replaces and deletes a policy (admin writes, monitor reads)', async () => {
    const forbidden = await t.http().post('/v1/policies').set(t.auth('operator')).send(WEEKLY);
    assertProblem(forbidden, 403, 'forbidden');
    const created = await t.http().post('/v1/policies').set(t.auth('admin')).send(WEEKLY).expect(201);
    assert.equal(created.headers.location, `/v1/policies/${created.body.id}`);
    assert.equal(created.body.schedules.incremental.timezone, 'Europe/Berlin');
    assert.equal(created.body.default, false);
    const read = await t.http().get(created.headers.location).set(t.auth('monitor')).expect(200);
    assert.deepEqual(read.body, created.body);
    const replaced = await t
      .http()
      .put(created.headers.location)
      .set(t.auth('admin'))
      .send({ ...WEEKLY, retention: { ...WEEKLY.retention, incrementalDays: 7 } })
      .expect(200);
    assert.equal(replaced.body.retention.incrementalDays, 7);
    assert.equal(replaced.body.createdAt, created.body.createdAt);
    const list = await t.http().get('/v1/policies').set(t.auth('monitor')).expect(200);
    assert.deepEqual(
      list.body.map((p: { id: string }) => p.id),
      [created.body.id],
    );
    await t.http().delete(created.headers.location).set(t.auth('admin')).expect(204);
    assertProblem(await t.http().get(created.headers.location).set(t.auth('monitor')), 404, 'policy-not-found');
  });

  it('names the field that is wrong, and changes nothing', async () => {
    const cases: Array<[object, string]> = [
      [{ ...NIGHTLY, schedules: { differential: { cron: '0 2 * * 0' } } }, 'body.schedules.differential'],
      [{ ...NIGHTLY, retention: { ...NIGHTLY.retention, fullDays: 0, minFulls: 0 } }, 'body.retention.minFulls'],
      [{ ...NIGHTLY, schedules: { full: { cron: '0 2 * *' } } }, 'body.schedules.full.cron'],
      [{ ...NIGHTLY, schedules: { full: { cron: '0 2 * * 9' } } }, 'body.schedules.full.cron'],
      [
        { ...NIGHTLY, schedules: { full: { cron: '0 2 * * 0', timezone: 'Mars/Olympus' } } },
        'body.schedules.full.timezone',
      ],
      [{ ...NIGHTLY, retention: { ...NIGHTLY.retention, fullDays: -1 } }, 'body.retention.fullDays'],
      [{ ...NIGHTLY, provider: 'tar' }, 'body.provider'],
      [{ ...NIGHTLY, budget: {} }, 'body.budget'],
      [{ ...NIGHTLY, budget: { maxChain: 0 } }, 'body.budget.maxChain'],
      [{ ...NIGHTLY, schedules: { hourly: { cron: '0 * * * *' } } }, 'body.schedules.hourly'],
    ];
    for (const [body, field] of cases) {
      const res = await t.http().post('/v1/policies').set(t.auth('admin')).send(body);
      assertProblem(res, 400, 'validation-failed');
      const fields = (res.body.errors as Array<{ field: string }>).map((e) => e.field);
      assert.ok(fields.includes(field), `${JSON.stringify(body)}: ${JSON.stringify(res.body.errors)}`);
    }
    const list = await t.http().get('/v1/policies').set(t.auth('monitor')).expect(200);
    assert.deepEqual(list.body, []);
  });

  it('assigns policies per site, falls back to the default, and shows the next runs in the site status', async () => {
    const none = await t.http().get('/v1/sites/site1/policy').set(t.auth('monitor')).expect(200);
    assert.deepEqual(none.body, { site: 'site1', source: 'none', policy: null, nextRuns: [] });
    const weekly = (await t.http().post('/v1/policies').set(t.auth('admin')).send(WEEKLY).expect(201)).body;
    const nightly = (
      await t
        .http()
        .post('/v1/policies')
        .set(t.auth('admin'))
        .send({ ...NIGHTLY, default: true })
        .expect(201)
    ).body;
    const fallback = await t.http().get('/v1/sites/two.test/policy').set(t.auth('monitor')).expect(200);
    assert.equal(fallback.body.source, 'default');
    assert.equal(fallback.body.policy.id, nightly.id);

    assertProblem(
      await t.http().put('/v1/sites/site1/policy').set(t.auth('operator')).send({ policy: weekly.id }),
      403,
      'forbidden',
    );
    assertProblem(
      await t.http().put('/v1/sites/site1/policy').set(t.auth('admin')).send({ policy: 'no-such-policy' }),
      404,
      'policy-not-found',
    );
    const assigned = await t
      .http()
      .put('/v1/sites/one.test/policy')
      .set(t.auth('admin'))
      .send({ policy: weekly.id })
      .expect(200);
    assert.equal(assigned.body.source, 'site');
    assert.equal(assigned.body.policy.id, weekly.id);
    assertProblem(await t.http().delete(`/v1/policies/${weekly.id}`).set(t.auth('admin')), 409, 'policy-in-use');

    const status = await t.http().get('/v1/sites/site1/status').set(t.auth('monitor')).expect(200);
    const runs = status.body.nextRuns as Array<{ level: string; at: string; policy: string; provider: string }>;
    assert.deepEqual(runs.map((run) => run.level).sort(), ['differential', 'full', 'incremental']);
    for (const run of runs) {
      assert.equal(run.policy, weekly.id);
      assert.equal(run.provider, 'bacula');
      assert.ok(Date.parse(run.at) > Date.now(), run.at);
      // 02:00 in Berlin is 00:00 or 01:00 UTC, plus the site's offset within the 30-minute spread.
      const local = new Date(run.at);
      const minutes = (local.getUTCHours() * 60 + local.getUTCMinutes()) % 60;
      assert.ok(minutes < 30, run.at);
    }
    // A differential on the first Sunday is superseded by the full: the full's next run is a first Sunday.
    const full = new Date(runs.find((run) => run.level === 'full')!.at);
    assert.equal(full.getUTCDay(), 0);
    assert.ok(full.getUTCDate() <= 7);

    await t.http().put('/v1/sites/site1/policy').set(t.auth('admin')).send({ policy: null }).expect(200);
    const back = await t.http().get('/v1/sites/site1/policy').set(t.auth('monitor')).expect(200);
    assert.equal(back.body.source, 'default');
  });

  it('refuses a prune without a policy, and a real prune without an admin token', async () => {
    makeSites(t.config.virtualRoot, [{ n: 3 }]);
    await t.http().put('/v1/policies/none').set(t.auth('admin')).send(NIGHTLY).expect(404);
    const list = (await t.http().get('/v1/policies').set(t.auth('monitor'))).body as Array<{ id: string }>;
    for (const policy of list) {
      const sites = ['site1', 'site2', 'site3'];
      for (const site of sites)
        await t.http().put(`/v1/sites/${site}/policy`).set(t.auth('admin')).send({ policy: null });
      await t
        .http()
        .put(`/v1/policies/${policy.id}`)
        .set(t.auth('admin'))
        .send({ ...NIGHTLY, name: `n-${policy.id.slice(0, 8)}`, default: false });
    }
    assertProblem(
      await t.http().post('/v1/sites/site3/prune').set(t.auth('operator')).send({ dryRun: true }),
      422,
      'policy-required',
    );
    const policy = list[0];
    await t.http().put('/v1/sites/site3/policy').set(t.auth('admin')).send({ policy: policy.id }).expect(200);
    assertProblem(await t.http().post('/v1/sites/site3/prune').set(t.auth('operator')).send({}), 403, 'forbidden');
    assertProblem(
      await t.http().post('/v1/sites/site3/prune').set(t.auth('operator')).send({ dryRun: 'yes' }),
      400,
      'validation-failed',
    );
  });
});
