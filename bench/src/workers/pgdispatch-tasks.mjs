// The bench's task for pgdispatch workers, loaded by the server through TASKS_MODULE (plain
// JavaScript: the server runs built code). The handler is the peers' trivial handler: it reports
// its start time over IPC for marked jobs (pickup latency) and returns nothing, or, for jobs with
// `s` (the limited-queue workload), returns after sleeping `s` ms.
import { defineTask } from '@pgdispatch/worker/task';
import { z } from 'zod';

const now = () => performance.timeOrigin + performance.now();

// Started by the bench with an IPC channel: answer clock pings. unref() so the channel never
// keeps the server alive on shutdown.
if (process.send) {
  process.on('message', (m) => {
    if (m && m.type === 'ping') process.send({ type: 'pong', id: m.id, t: now() });
  });
  process.channel?.unref();
}

export const tasks = [
  defineTask({
    name: 'bench',
    payload: z.unknown(),
    handler: (payload) => {
      if (payload && payload.m === 1 && process.connected) process.send({ type: 'marks', marks: [[payload.i, now()]] });
      if (payload && payload.s > 0) return new Promise((resolve) => setTimeout(resolve, payload.s));
    },
  }),
];
