// Runs every conformance case (cases.ts) against every Transport implementation (subjects.ts):
// the in-process control plane, the HTTP transport talking to the real createApp on an
// ephemeral port, and the fake transport the runtime's unit tests rely on.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { cases } from './cases.js';
import type { Subject } from './subject.js';
import { subjects } from './subjects.js';

for (const factory of subjects) {
  describe(`Transport conformance: ${factory.name}`, () => {
    let subject: Subject;
    beforeAll(async () => {
      subject = await factory.start();
    });
    afterAll(async () => {
      await subject?.close();
    });

    for (const c of cases) {
      // A known engine bug shows against PostgreSQL only; the fake must pass the case already.
      const run = c.knownEngineBug !== undefined && factory.postgres ? it.fails : it;
      run(c.name, async () => {
        const tag = randomBytes(4).toString('hex');
        await c.run(subject, { queue: `conf-${tag}`, otherQueue: `conf-${tag}-other` });
      });
    }
  });
}
