import { describe, expect, it } from 'vitest';
import { SseParser, chatDelta, readSse } from './sse';

describe('SseParser', () => {
  it('parses events split across chunks, skipping comments', () => {
    const p = new SseParser();
    expect(p.push(': ping\n\nevent: change\nda')).toEqual([]);
    expect(p.push('ta: {"kind":"FineTuneJob"}\n\n')).toEqual([{ event: 'change', data: '{"kind":"FineTuneJob"}' }]);
  });

  it('joins multi-line data and defaults the event name', () => {
    const p = new SseParser();
    expect(p.push('data: a\ndata: b\n\n')).toEqual([{ event: 'message', data: 'a\nb' }]);
  });

  it('handles CRLF, including a CR at the end of a chunk', () => {
    const p = new SseParser();
    expect(p.push('data: x\r')).toEqual([]);
    expect(p.push('\n\r\n')).toEqual([{ event: 'message', data: 'x' }]);
  });

  it('flushes an unterminated last event at the end', () => {
    const p = new SseParser();
    p.push('data: [DONE]');
    expect(p.end()).toEqual([{ event: 'message', data: '[DONE]' }]);
  });
});

describe('chatDelta', () => {
  it('reads OpenAI chunks', () => {
    expect(chatDelta('{"choices":[{"delta":{"content":"Hel"}}]}')).toBe('Hel');
    expect(chatDelta('{"choices":[{"delta":{"role":"assistant"}}]}')).toBe('');
    expect(chatDelta('[DONE]')).toBeNull();
    expect(chatDelta('not json')).toBe('');
  });
});

describe('readSse', () => {
  it('reads a byte stream into events', async () => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'));
        c.enqueue(enc.encode('data: [DONE]\n\n'));
        c.close();
      },
    });
    const seen: string[] = [];
    await readSse(body, (e) => seen.push(e.data));
    expect(seen).toEqual(['{"choices":[{"delta":{"content":"Hi"}}]}', '[DONE]']);
  });
});
