// Server-Sent Events parsing for fetch streams (EventSource cannot send Authorization), used
// for /api/v1/stream and for the chat playground's `stream: true` completions.

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser: feed text chunks, get the events completed so far. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      // A lone trailing \r may be the first half of \r\n: wait for the next chunk.
      if (width === 1 && this.buffer[newline] === '\r' && newline === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(newline + width);
      const done = this.line(line);
      if (done) out.push(done);
    }
    return out;
  }

  /** The event left when the stream ends without a final blank line. */
  end(): SseEvent[] {
    const tail = this.buffer ? this.line(this.buffer) : null;
    this.buffer = '';
    const last = this.line('');
    return [tail, last].filter((e): e is SseEvent => e !== null);
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return null;
      }
      const ev: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) ev.id = this.id;
      this.event = '';
      this.data = [];
      return ev;
    }
    if (line.startsWith(':')) return null; // a comment, e.g. the server's ping
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
    return null;
  }
}

/** Read a streamed body, calling onEvent for each event; resolves when the stream ends. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: SseEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      if (signal?.aborted) break;
      const { value, done } = await reader.read();
      if (done) break;
      for (const ev of parser.push(decoder.decode(value, { stream: true }))) onEvent(ev);
    }
    for (const ev of parser.push(decoder.decode())) onEvent(ev);
    for (const ev of parser.end()) onEvent(ev);
  } finally {
    reader.releaseLock();
  }
}

/** The text an OpenAI chat-completion chunk adds, null for `[DONE]`, '' for none. */
export function chatDelta(data: string): string | null {
  if (data.trim() === '[DONE]') return null;
  try {
    const chunk = JSON.parse(data) as {
      choices?: { delta?: { content?: string | null }; text?: string }[];
    };
    const choice = chunk.choices?.[0];
    return choice?.delta?.content ?? choice?.text ?? '';
  } catch {
    return '';
  }
}
