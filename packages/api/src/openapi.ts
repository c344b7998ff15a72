import { z } from 'zod';
import { enqueueBatchBody, enqueueBody, queuePolicyBody } from './schemas.js';

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } } });
const errorResponse = { description: 'Error: `{ error: { code, message, details? } }`' };

/** /openapi.json, generated from the same zod schemas that validate requests. */
export function openApiDocument(version: string): Record<string, unknown> {
  const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };
  const queue = { name: 'queue', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } };
  const name = { ...queue, name: 'name' };
  const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 413: errorResponse, 503: errorResponse };
  return {
    openapi: '3.1.0',
    info: { title: 'pgdispatch public API', version },
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }],
    paths: {
      '/v1/queues/{queue}/jobs': { post: { summary: 'Enqueue a job (201 created, 200 existing by idempotencyKey)', parameters: [queue], requestBody: json(enqueueBody), responses: { 201: { description: 'created' }, 200: { description: 'existing' }, ...errors } } },
      '/v1/queues/{queue}/jobs/batch': { post: { summary: 'Enqueue up to 1000 jobs in one statement', parameters: [queue], requestBody: json(enqueueBatchBody), responses: { 201: { description: 'created' }, ...errors } } },
      '/v1/jobs': { get: { summary: 'List jobs, newest first', parameters: ['queue', 'state', 'task', 'cursor', 'limit'].map((n) => ({ name: n, in: 'query', required: false, schema: { type: 'string' } })), responses: { 200: { description: '{ jobs, nextCursor }' }, ...errors } } },
      '/v1/jobs/{id}': { get: { summary: 'Get a job', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/cancel': { post: { summary: 'Cancel (waiting → cancelled; running → cancel requested)', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/retry': { post: { summary: 'Start a failed or cancelled job again', parameters: [jobId], responses: { 200: { description: '{ job }' }, ...errors } } },
      '/v1/jobs/{id}/events': { get: { summary: 'Server-sent events: state, progress', parameters: [jobId], responses: { 200: { description: 'text/event-stream' }, ...errors } } },
      '/v1/queues': { get: { summary: 'List queues', responses: { 200: { description: '{ queues }' }, ...errors } } },
      '/v1/queues/{name}': { put: { summary: 'Create a queue or update its policy', parameters: [name], requestBody: json(queuePolicyBody), responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/queues/{name}/pause': { post: { summary: 'Pause a queue', parameters: [name], responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/queues/{name}/resume': { post: { summary: 'Resume a queue', parameters: [name], responses: { 200: { description: '{ queue }' }, ...errors } } },
      '/v1/queues/{name}/stats': { get: { summary: 'Counts by state, oldest waiting age', parameters: [name], responses: { 200: { description: '{ stats }' }, ...errors } } },
    },
  };
}
