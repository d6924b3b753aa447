import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeFetch, json } from '../test/factories';
import { ApiError, api, errorMessage, followChanges, streamChat, toApiError } from './api';
import { setToken } from './auth';

describe('api client', () => {
  beforeEach(() => sessionStorage.clear());
  afterEach(() => vi.unstubAllGlobals());

  it('builds list queries, leaving empty filters out', async () => {
    const f = fakeFetch({ '/finetunejobs': { items: [], continue: null, total: 0 } });
    vi.stubGlobal('fetch', f);
    await api.jobs({ namespace: 'team-a', condition: '', limit: 50 });
    expect(f.calls[0].url).toBe('api/v1/finetunejobs?namespace=team-a&limit=50');
  });

  it('sends the bearer token when one is set', async () => {
    setToken('tok');
    const f = fakeFetch({ 'PATCH /inferencedeployments/default/chat/scale': { metadata: { name: 'chat' } } });
    vi.stubGlobal('fetch', f);
    await api.scale('default', 'chat', 3);
    const init = f.calls[0].init!;
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    expect(init.body).toBe('{"replicas":3}');
  });

  it('turns the contract error shapes into ApiError', async () => {
    const plain = await toApiError(json({ detail: 'forbidden: cannot patch' }, 403));
    expect(plain).toMatchObject({ status: 403, message: 'forbidden: cannot patch' });
    const v = await toApiError(
      json({ detail: { message: 'invalid dataset', errors: [{ field: null, line: 3, message: 'not JSON' }] } }, 422),
    );
    expect(v.message).toBe('invalid dataset');
    expect(v.errors).toEqual([{ field: null, line: 3, message: 'not JSON' }]);
    expect(errorMessage(new ApiError(401, 'token required'))).toMatch(/Settings/);
    expect(errorMessage(new TypeError('fetch failed'))).toMatch(/could not be reached/);
  });

  it('uploads a dataset as multipart field `file`', async () => {
    const f = fakeFetch({ 'POST /datasets/default': { namespace: 'default', name: 'a.jsonl', format: 'chat', rows: 2 } });
    vi.stubGlobal('fetch', f);
    await api.uploadDataset('default', new File(['{}\n'], 'a.jsonl'));
    const body = f.calls[0].init!.body as FormData;
    expect((body.get('file') as File).name).toBe('a.jsonl');
  });

  it('streams chat text from SSE data lines', async () => {
    const sse = 'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\ndata: {"choices":[{"delta":{"content":"lo"}}]}\n\ndata: [DONE]\n\n';
    const f = fakeFetch({
      'POST /inferencedeployments/default/chat/chat/completions': () =>
        new Response(sse, { headers: { 'Content-Type': 'text/event-stream' } }),
    });
    vi.stubGlobal('fetch', f);
    let text = '';
    await streamChat('default', 'chat', { messages: [{ role: 'user', content: 'hi' }] }, (t) => (text += t));
    expect(text).toBe('Hello');
    expect(JSON.parse(f.calls[0].init!.body as string)).toMatchObject({ stream: true });
  });

  it('follows change events', async () => {
    const stop = new AbortController();
    const seen: unknown[] = [];
    const f = fakeFetch({
      '/stream': () =>
        new Response(': ping\n\nevent: change\ndata: {"kind":"FineTuneJob","namespace":"default","name":"a","type":"MODIFIED"}\n\n'),
    });
    vi.stubGlobal('fetch', f);
    const done = followChanges((c) => {
      seen.push(c);
      stop.abort();
    }, stop.signal);
    await done;
    expect(seen).toEqual([{ kind: 'FineTuneJob', namespace: 'default', name: 'a', type: 'MODIFIED' }]);
  });
});
