import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase } from '../testing/database.js';
import { insertJob, claimOne as claimJob } from '../testing/factories.js';
import { jobComplete } from './job-complete.js';
import { jobFail } from './job-fail.js';
import { jobPurge } from './job-maintenance.js';
import { jobStepSave, jobStepsLoad } from './job-steps.js';

const db = useTestDatabase();

const claimOne = (queue: string, leaseMs = 30_000) => claimJob(db.sql, queue, leaseMs);

describe('job steps', () => {
  it('saves step results as JSON values and loads them back by name', async () => {
    await insertJob(db.sql, { queue: 'steps' });
    const c = await claimOne('steps');
    const ref = { id: c.id, leaseToken: c.leaseToken };
    await jobStepSave(db.sql, { ...ref, name: 'fetch', result: { rows: [1, 2] } });
    await jobStepSave(db.sql, { ...ref, name: 'count', result: 2 });
    await jobStepSave(db.sql, { ...ref, name: 'label', result: 'done' });
    await jobStepSave(db.sql, { ...ref, name: 'nothing', result: undefined });
    expect(await jobStepsLoad(db.sql, { id: c.id })).toEqual({ fetch: { rows: [1, 2] }, count: 2, label: 'done', nothing: null });
    const [row] = await db.sql`select jsonb_typeof(result) as t, attempt from job_steps where job_id = ${c.id} and name = 'fetch'`;
    expect(row).toEqual({ t: 'object', attempt: 1 });
  });

  it('the first result recorded for a name wins', async () => {
    await insertJob(db.sql, { queue: 'steps-first' });
    const c = await claimOne('steps-first');
    await jobStepSave(db.sql, { id: c.id, leaseToken: c.leaseToken, name: 's', result: 'first' });
    await jobStepSave(db.sql, { id: c.id, leaseToken: c.leaseToken, name: 's', result: 'second' });
    expect(await jobStepsLoad(db.sql, { id: c.id })).toEqual({ s: 'first' });
  });

  it('steps survive a retry, so the next attempt can skip them', async () => {
    await insertJob(db.sql, { queue: 'steps-retry' });
    const first = await claimOne('steps-retry');
    await jobStepSave(db.sql, { id: first.id, leaseToken: first.leaseToken, name: 'charge', result: { chargeId: 'ch_1' } });
    await jobFail(db.sql, { id: first.id, leaseToken: first.leaseToken, error: { message: 'later step failed' }, random: () => 0 });
    const second = await claimOne('steps-retry');
    expect(second.attempt).toBe(2);
    expect(await jobStepsLoad(db.sql, { id: second.id })).toEqual({ charge: { chargeId: 'ch_1' } });
    await jobStepSave(db.sql, { id: second.id, leaseToken: second.leaseToken, name: 'email', result: true });
    const rows = await db.sql`select name, attempt from job_steps where job_id = ${second.id} order by name`;
    expect(rows).toEqual([{ name: 'charge', attempt: 1 }, { name: 'email', attempt: 2 }]);
  });

  it('a save without the current lease gets lease_lost and writes nothing', async () => {
    await insertJob(db.sql, { queue: 'steps-fenced' });
    const c = await claimOne('steps-fenced');
    const err = await jobStepSave(db.sql, { id: c.id, leaseToken: '00000000-0000-4000-8000-000000000000', name: 'x', result: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe('lease_lost');
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken });
    await expect(jobStepSave(db.sql, { id: c.id, leaseToken: c.leaseToken, name: 'late', result: 1 })).rejects.toMatchObject({ code: 'lease_lost' });
    expect(await jobStepsLoad(db.sql, { id: c.id })).toEqual({});
  });

  it('without a foreign key no step outlives its job: steps saved while it ran, the last one holding up its completion, go with the purge; a save after it stores nothing', async () => {
    await insertJob(db.sql, { queue: 'steps-gone' });
    const c = await claimOne('steps-gone');
    await jobStepSave(db.sql, { id: c.id, leaseToken: c.leaseToken, name: 'kept', result: 1 });
    // A save holds the running row (for share) until it commits: a completion and the purge after it wait for it.
    let release!: () => void;
    const saving = db.sql.begin(async (tx) => {
      await jobStepSave(tx, { id: c.id, leaseToken: c.leaseToken, name: 'late', result: 2 });
      await new Promise<void>((r) => (release = r));
    });
    while (!release) await new Promise((r) => setTimeout(r, 5));
    const completing = jobComplete(db.connect(1), { id: c.id, leaseToken: c.leaseToken });
    await new Promise((r) => setTimeout(r, 50));
    release();
    await saving;
    await completing;
    await db.sql`update jobs set finished_at = now() - interval '1 hour' where id = ${c.id}`;
    expect(await jobPurge(db.sql, { retentionSeconds: 60, failedRetentionSeconds: 60 })).toBeGreaterThanOrEqual(1);
    await expect(jobStepSave(db.sql, { id: c.id, leaseToken: c.leaseToken, name: 'after', result: 3 })).rejects.toMatchObject({ code: 'lease_lost' });
    expect((await db.sql`select name from job_steps where job_id = ${c.id}`).length).toBe(0);
  });

  it('loading the steps of a job without any is an empty record', async () => {
    expect(await jobStepsLoad(db.sql, { id: 424_242 })).toEqual({});
  });
});
