// The bench's task for pgdispatch workers, loaded by the server through TASKS_MODULE (plain
// JavaScript: the server runs built code). The handler is the peers' trivial handler: it reports
// its start time over IPC for marked jobs (pickup latency) and returns nothing, or, for jobs with
// `s` (the limited-queue workload), returns after sleeping `s` ms. It counts the handlers that
// ended, for the soak's progress (asked with `count`): counting unfinished rows in the database
// every 250 ms took 310–450 ms per count at a 1.5M backlog, one of the machine's two cores.
import { defineTask } from '@pgdispatch/worker/task';
import { z } from 'zod';

const now = () => performance.timeOrigin + performance.now();
let handled = 0;
const ended = () => {
  handled++;
};

// Started by the bench with an IPC channel: answer clock pings. unref() so the channel never
// keeps the server alive on shutdown.
if (process.send) {
  process.on('message', (m) => {
    if (m && m.type === 'ping') process.send({ type: 'pong', id: m.id, t: now() });
    if (m && m.type === 'count') process.send({ type: 'count', id: m.id, n: handled });
  });
  process.channel?.unref();
}

export const tasks = [
  defineTask({
    name: 'bench',
    payload: z.unknown(),
    handler: (payload) => {
      if (payload && payload.m === 1 && process.connected) process.send({ type: 'marks', marks: [[payload.i, now()]] });
      if (payload && payload.s > 0) return new Promise((resolve) => setTimeout(resolve, payload.s)).then(ended);
      ended();
    },
  }),
];
