import { graphileEnqueue, graphileProfiles } from './graphile-worker.js';
import { pgBossEnqueue, pgBossProfiles } from './pg-boss.js';
import { allBounded, allThroughput } from './pgdispatch-all.js';
import { engineEnqueue, engineLoopProfile } from './pgdispatch-engine.js';
import { httpEnqueue } from './pgdispatch-http.js';
import { splitProfile } from './pgdispatch-split.js';
import type { EnqueueTarget, WorkerProfile } from './types.js';

/** Every enqueue path measured, pgdispatch first. */
export const ENQUEUE_TARGETS: EnqueueTarget[] = [engineEnqueue, httpEnqueue, graphileEnqueue, pgBossEnqueue];

/** Every worker profile measured for processing and pickup latency. */
export const WORKER_PROFILES: WorkerProfile[] = [allThroughput, allBounded, splitProfile, engineLoopProfile, ...graphileProfiles, ...pgBossProfiles];

/** pgdispatch profiles measured for backlog scaling. */
export const BACKLOG_PROFILES: WorkerProfile[] = [allThroughput, engineLoopProfile];
