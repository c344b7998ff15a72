import { describe, expect, it } from 'vitest';
import { createSseParser } from './events.js';

describe('createSseParser', () => {
  it('parses messages split across chunks, with CRLF, comments and multi-line data', () => {
    const got: unknown[] = [];
    const feed = createSseParser((m) => got.push(m));
    for (const chunk of ['event: state\r\nda', 'ta: {"a":1}\r\nid: 7\r\n\r\n', ': keep-alive\n\n', 'data: x\ndata: y\n', '\n', 'id: 9\n\n']) feed(chunk);
    expect(got).toEqual([{ id: '7', event: 'state', data: '{"a":1}' }, { event: 'message', data: 'x\ny' }]);
  });
});
