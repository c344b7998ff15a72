import { z } from 'zod';
import { listSchedulesQuery, scheduleCreateBody, schedulePatchBody } from './schedule-schemas.js';
import { bulkBody, enqueueBatchBody, enqueueBatchQuery, enqueueBody, listJobsQuery, queuePolicyBody, redriveBody, throughputQuery } from './schemas.js';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } } });
/** Query parameters of a zod object schema (refinements aside), each with its own JSON schema. */
const query = (schema: z.ZodType) => {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Record<string, unknown>> };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: false, schema: s, ...(typeof s.description === 'string' ? { description: s.description } : {}) }));
};
const errorResponse = { description: 'Error: `{ error: { code, message, details? } }`' };

/** /openapi.json, generated from the same zod schemas that validate requests. */
export function openApiDocument(version: string): Record<string, unknown> {
  const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };
  const queue = { name: 'queue', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } };
  const name = { ...queue, name: 'name' };
  const resume = [
    { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^\\d{1,15}$' }, description: 'Resume after this event id' },
    { name: 'lastEventId', in: 'query', required: false, schema: { type: 'string', pattern: '^\\d{1,15}$' }, description: 'Same, for clients that cannot set headers' },
  ];
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 413: errorResponse, 503: errorResponse };
  return {
    openapi: '3.1.0',
    info: { title: 'pgdispatch public API', version },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }],
    paths: {
      '/v1/queues/{queue}/jobs': { post: { summary: 'Enqueue a job (201 created, 200 existing by idempotencyKey)', parameters: [queue], requestBody: json(enqueueBody), responses: { 201: { description: 'created' }, 200: { description: 'existing' }, ...errors } } },
      '/v1/queues/{queue}/jobs/batch': { post: { summary: 'Enqueue up to 1000 jobs in one statement; ?return=ids answers { results: [{ id, created }] }', parameters: [queue, ...query(enqueueBatchQuery)], requestBody: json(enqueueBatchBody), responses: { 201: { description: '{ results: [{ job, created }] } (or [{ id, created }] with return=ids)' }, 200: { description: 'every item matched an existing job' }, ...errors } } },
      '/v1/jobs': { get: { summary: 'List jobs, newest first', parameters: query(listJobsQuery), responses: { 200: { description: '{ jobs, nextCursor }' }, ...errors } } },
      '/v1/jobs/{id}': { get: { summary: 'Get a job', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/cancel': { post: { summary: 'Cancel (waiting → cancelled; running → cancel requested)', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/retry': { post: { summary: 'Start a failed or cancelled job again', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/events': { get: { summary: 'Server-sent job events (state, cancel_requested, progress): replay after Last-Event-ID, then live; ends after a final state', parameters: [jobId, ...resume], responses: { 200: { description: 'text/event-stream' }, ...errors } } },
      '/v1/queues': { get: { summary: 'List queues', responses: { 200: { description: '{ queues }' }, ...errors } } },
      '/v1/queues/{name}': { put: { summary: 'Create a queue or update its policy', parameters: [name], requestBody: json(queuePolicyBody), responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/queues/{name}/pause': { post: { summary: 'Pause a queue', parameters: [name], responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/queues/{name}/resume': { post: { summary: 'Resume a queue', parameters: [name], responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/whoami': { get: { summary: 'Scopes of the key sent (answers authenticated: false without a key)', security: [], responses: { 200: { description: '{ authenticated, open, scopes }' }, 401: errorResponse } } },
      '/v1/jobs/{id}/steps': { get: { summary: 'Checkpointed steps of a job', parameters: [jobId], responses: { 200: { description: '{ steps: [{ name, result, attempt, createdAt }] }' }, ...errors } } },
      '/v1/stats/queues': { get: { summary: 'Every queue: counts by state, oldest waiting age, paused, concurrency and rate limits, workersListening', responses: { 200: { description: '{ queues }' }, ...errors } } },
      '/v1/stats/throughput': { get: { summary: 'Jobs finished per bucket (succeeded, failed) by queue over a window', parameters: query(throughputQuery), responses: { 200: { description: '{ bucketSeconds, until, queues }' }, ...errors } } },
      '/v1/workers': { get: { summary: 'Executors that asked this api process for work recently', responses: { 200: { description: '{ presenceSeconds, workers }' }, ...errors } } },
      '/v1/jobs/bulk/retry': { post: { summary: 'Retry failed/cancelled jobs matching a filter (one statement, at most limit); { count }', requestBody: json(bulkBody), responses: { 200: { description: '{ count }' }, ...errors } } },
      '/v1/jobs/bulk/cancel': { post: { summary: 'Cancel waiting jobs and request the cancel of running ones matching a filter; { count }', requestBody: json(bulkBody), responses: { 200: { description: '{ count }' }, ...errors } } },
      '/v1/jobs/bulk/delete': { post: { summary: 'Delete non-running jobs matching a filter, with their steps; { count }', requestBody: json(bulkBody), responses: { 200: { description: '{ count }' }, ...errors } } },
      '/v1/queues/{name}/redrive': { post: { summary: 'Send dead-lettered jobs of this queue back to the queues they failed in; { count }', parameters: [name], requestBody: json(redriveBody), responses: { 200: { description: '{ count }' }, ...errors } } },
      '/v1/queues/{name}/events': { get: { summary: 'Server-sent events of every job of the queue: replay after Last-Event-ID, then live', parameters: [name, ...resume], responses: { 200: { description: 'text/event-stream' }, ...errors } } },
      '/v1/events': { get: { summary: 'Server-sent events of every job of every queue: from now (no replay) or after Last-Event-ID, then live', parameters: resume, responses: { 200: { description: 'text/event-stream' }, ...errors } } },
      '/v1/queues/{name}/stats': { get: { summary: 'Counts by state, oldest waiting age', parameters: [name], responses: { 200: { description: '{ stats }' }, ...errors } } },
      '/v1/schedules': {
        get: { summary: 'List schedules by name', parameters: query(listSchedulesQuery), responses: { 200: { description: '{ schedules }' }, ...errors } },
        post: { summary: 'Create a schedule (409 if the name exists)', requestBody: json(scheduleCreateBody), responses: { 201: { description: '{ schedule }' }, ...errors } },
      },
      '/v1/schedules/{name}': {
        get: { summary: 'Get a schedule', parameters: [name], responses: { 200: { description: '{ schedule }' }, ...errors } },
        patch: { summary: 'Change the given fields (a new cron or zone restarts from now)', parameters: [name], requestBody: json(schedulePatchBody), responses: { 200: { description: '{ schedule }' }, ...errors } },
        delete: { summary: 'Delete a schedule (its jobs stay)', parameters: [name], responses: { 200: { description: '{ schedule }' }, ...errors } },
      },
      '/v1/schedules/{name}/pause': { post: { summary: 'Pause a schedule', parameters: [name], responses: { 200: { description: '{ schedule }' }, ...errors } } },
      '/v1/schedules/{name}/resume': { post: { summary: 'Resume a schedule from now (paused ticks are not caught up)', parameters: [name], responses: { 200: { description: '{ schedule }' }, ...errors } } },
    },
  };
}
