import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartDir } from './helm.js';

const valuesText = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
const values = parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode;

interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  oneOf?: SchemaNode[];
}

const params = [...valuesText.matchAll(/^\s*## @param (\S+) (.+)$/gm)].map((m) => ({ path: m[1]!, description: m[2]! }));
const documented = new Set(params.map((p) => p.path));

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Keys with no `## @param` of their own or of an ancestor (an ancestor's @param covers a free-form map). */
function undocumented(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (documented.has(path)) return [];
    if (isPlainObject(value) && Object.keys(value).length > 0) return undocumented(value, path);
    return [path];
  });
}

function hasKey(path: string): boolean {
  const keys = path.split('.');
  const parent = keys.slice(0, -1).reduce<unknown>((cur, key) => (isPlainObject(cur) ? cur[key] : undefined), values);
  return isPlainObject(parent) && keys.at(-1)! in parent;
}

function schemaAt(path: string): SchemaNode | undefined {
  return path.split('.').reduce<SchemaNode | undefined>((cur, key) => cur?.properties?.[key], schema);
}

describe('values.yaml documentation and schema', () => {
  it('every key has a ## @param description', () => {
    expect(undocumented(values)).toEqual([]);
  });

  it('every ## @param names a key that exists, once', () => {
    for (const { path } of params) expect(hasKey(path), path).toBe(true);
    expect(params.map((p) => p.path).filter((p, i, all) => all.indexOf(p) !== i)).toEqual([]);
  });

  it('keys are grouped under ## @section headings', () => {
    const firstSection = valuesText.indexOf('## @section');
    const firstParam = valuesText.indexOf('## @param');
    expect(firstSection).toBeGreaterThan(-1);
    expect(firstSection).toBeLessThan(firstParam);
    expect(valuesText.match(/^## @section /gm)!.length).toBeGreaterThanOrEqual(8);
  });

  it('the schema types every documented key', () => {
    const missing = params.filter(({ path }) => {
      const node = schemaAt(path);
      return !node || (node.type === undefined && node.oneOf === undefined);
    });
    expect(missing.map((p) => p.path)).toEqual([]);
  });

  it('the schema closes every object whose keys the chart owns', () => {
    const open: string[] = [];
    const walk = (node: SchemaNode, path: string) => {
      if (node.properties) {
        if (node.additionalProperties !== false) open.push(path || '(root)');
        for (const [k, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${k}` : k);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('config keys map one to one onto the server environment variables', () => {
    const toEnv = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
    const envs = Object.keys(values.config as object).map(toEnv);
    expect(envs).toEqual([
      'LOG_LEVEL', 'PORT', 'LEASE_MS', 'HEARTBEAT_MS', 'CLAIM_BATCH_MAX', 'POLL_INTERVAL_MS', 'REAPER_INTERVAL_MS',
      'RETENTION_SECONDS', 'RETENTION_FAILED_SECONDS', 'MAX_PAYLOAD_BYTES', 'BODY_LIMIT_BYTES', 'WORKER_CONCURRENCY',
      'DEQUEUE_MAX_WAIT_MS', 'SHUTDOWN_GRACE_MS', 'TASKS_MODULE',
    ]);
    const configMap = readFileSync(join(chartDir, 'templates', 'configmap.yaml'), 'utf8');
    for (const env of envs) expect(configMap, env).toMatch(new RegExp(`^  ${env}: `, 'm'));
  });
});
