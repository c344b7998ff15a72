import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { useTestDatabase } from '../testing/database.js';
import { claimOne, insertJob } from '../testing/factories.js';
import { jobAssertLease } from './job-admin.js';
import { jobCompleteMany } from './job-complete.js';
import { jobProgress } from './job-events.js';
import { jobFailMany } from './job-fail.js';
import { jobHeartbeatMany } from './job-heartbeat.js';
import { jobReleaseMany } from './job-release.js';
import { jobStepSave, jobStepsLoad } from './job-steps.js';

const db = useTestDatabase();
const LEASE = 30_000;
const snapshot = (id: number) => db.sql`select * from jobs where id = ${id}`.then((r) => r[0]);
const ref = (j: ClaimedJob) => ({ id: j.id, leaseToken: j.leaseToken });

/** One running job in an allowed queue and one in a queue outside the scope. */
async function pair(tag: string): Promise<{ mine: ClaimedJob; theirs: ClaimedJob; scope: string[] }> {
  await insertJob(db.sql, { queue: `${tag}-mine` });
  await insertJob(db.sql, { queue: `${tag}-theirs` });
  return { mine: await claimOne(db.sql, `${tag}-mine`, LEASE), theirs: await claimOne(db.sql, `${tag}-theirs`, LEASE), scope: [`${tag}-mine`] };
}
const forbidden = (id: number) => ({ id, ok: false, code: 'forbidden', message: expect.stringContaining(`job ${id}`) });

describe('every holder write is scoped to the credential queues, per item', () => {
  it('heartbeat, complete, fail and release: the allowed item applies, the other is forbidden and its row unchanged', async () => {
    for (const op of ['heartbeat', 'complete', 'fail', 'release'] as const) {
      const { mine, theirs, scope } = await pair(`scope-${op}`);
      const before = await snapshot(theirs.id);
      const items = [ref(theirs), ref(mine)];
      const out =
        op === 'heartbeat' ? await jobHeartbeatMany(db.sql, { items, leaseMs: LEASE, queues: scope })
        : op === 'complete' ? await jobCompleteMany(db.sql, { items, queues: scope })
        : op === 'fail' ? await jobFailMany(db.sql, { items: items.map((i) => ({ ...i, error: { message: 'no' } })), queues: scope })
        : await jobReleaseMany(db.sql, { items, queues: scope });
      expect(out[0], op).toEqual(forbidden(theirs.id));
      expect(out[1], op).toMatchObject({ id: mine.id, ok: true });
      expect(await snapshot(theirs.id), op).toEqual(before);
      // '*' (role all, or a credential for every queue) may touch both.
      if (op === 'heartbeat') expect((await jobHeartbeatMany(db.sql, { items, leaseMs: LEASE, queues: '*' }))[0]).toMatchObject({ ok: true });
    }
  });

  it('a forbidden job stays forbidden whatever token is named (and an unknown id is lease_lost)', async () => {
    const { theirs, scope } = await pair('scope-token');
    const out = await jobHeartbeatMany(db.sql, {
      items: [{ id: theirs.id, leaseToken: '00000000-0000-4000-8000-000000000000' }, { id: 987_654_321, leaseToken: theirs.leaseToken }],
      leaseMs: LEASE,
      queues: scope,
    });
    expect(out).toEqual([forbidden(theirs.id), { id: 987_654_321, ok: false, code: 'lease_lost' }]);
  });

  it('step save, progress and the child-enqueue lease check refuse a job outside the scope with forbidden and write nothing', async () => {
    const { mine, theirs, scope } = await pair('scope-single');
    const before = await snapshot(theirs.id);
    const isForbidden = (e: unknown) => e instanceof DispatchError && e.code === 'forbidden';
    await expect(jobStepSave(db.sql, { ...ref(theirs), name: 's', result: 1, queues: scope })).rejects.toSatisfy(isForbidden);
    await expect(jobProgress(db.sql, { ...ref(theirs), data: 1, queues: scope })).rejects.toSatisfy(isForbidden);
    await expect(jobAssertLease(db.sql, { ...ref(theirs), queues: scope })).rejects.toSatisfy(isForbidden);
    expect(await jobStepsLoad(db.sql, { id: theirs.id })).toEqual({});
    expect(await snapshot(theirs.id)).toEqual(before);
    await jobStepSave(db.sql, { ...ref(mine), name: 's', result: 1, queues: scope });
    await jobProgress(db.sql, { ...ref(mine), data: 1, queues: scope });
    expect(await jobAssertLease(db.sql, { ...ref(mine), queues: scope })).toEqual({ queue: 'scope-single-mine', attempt: 1 });
    expect(await jobStepsLoad(db.sql, { id: mine.id })).toEqual({ s: 1 });
  });
});
