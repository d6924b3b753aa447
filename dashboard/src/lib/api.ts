// The read API client (/api/v1, see /api/docs): typed calls, the bearer token on every request
// when one is set, errors turned into ApiError with the server's one-line detail and field errors.

import { getToken } from './auth';
import { chatDelta, readSse } from './sse';
import type {
  CarbonBy,
  CarbonModelRow,
  CarbonSummary,
  CarbonTimelinePoint,
  ChangeEvent,
  DatasetEntry,
  DatasetPreview,
  DatasetStats,
  DeploymentHistory,
  Experiment,
  FieldError,
  FineTuneJob,
  Info,
  InferenceDeployment,
  JobHistory,
  KubeEvent,
  Lineage,
  ListResponse,
  ModelVersion,
  Overview,
  Stage,
  UploadResult,
} from './types';

export const BASE = 'api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** A human sentence for an error of any kind (network failures included). */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return `Not signed in: ${err.message}. Paste a token in Settings.`;
    if (err.status === 403) return `Not allowed: ${err.message}`;
    return err.message;
  }
  if (err instanceof TypeError) return 'The read API could not be reached. Is `model-garden dashboard` running?';
  return err instanceof Error ? err.message : String(err);
}

/** ApiError from a non-2xx response, reading the contract's `{detail}` shapes. */
export async function toApiError(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`.trim();
  let errors: FieldError[] = [];
  try {
    const body = (await res.json()) as { detail?: unknown };
    const detail = body.detail;
    if (typeof detail === 'string') message = detail;
    else if (detail && typeof detail === 'object' && !Array.isArray(detail)) {
      const d = detail as { message?: string; errors?: FieldError[] };
      if (d.message) message = d.message;
      if (Array.isArray(d.errors)) errors = d.errors;
    } else if (Array.isArray(detail)) {
      // FastAPI's own request validation: [{loc: [...], msg}]
      errors = (detail as { loc?: (string | number)[]; msg?: string }[]).map((e) => ({
        field: e.loc ? e.loc.filter((p) => p !== 'body').join('.') : null,
        message: e.msg ?? 'invalid',
      }));
      message = 'The request was refused.';
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, message, errors);
}

type Query = Record<string, string | number | undefined | null>;

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return `${BASE}${path}${qs ? `?${qs}` : ''}`;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const init: RequestInit = { method, headers: headers({ Accept: 'application/json' }) };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = headers({ Accept: 'application/json', 'Content-Type': 'application/json' });
  }
  const res = await fetch(url(path, query), init);
  if (!res.ok) throw await toApiError(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const seg = (ns: string, name: string) => `${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

export interface ListQuery extends Query {
  namespace?: string;
  model?: string;
  experiment?: string;
  condition?: string;
  stage?: string;
  limit?: number;
  continue?: string;
}

export const api = {
  info: () => request<Info>('GET', '/info'),
  overview: () => request<Overview>('GET', '/overview'),

  jobs: (q: ListQuery = {}) => request<ListResponse<FineTuneJob>>('GET', '/finetunejobs', undefined, q),
  job: (ns: string, name: string) => request<FineTuneJob>('GET', `/finetunejobs/${seg(ns, name)}`),
  jobHistory: (ns: string, name: string) => request<JobHistory>('GET', `/finetunejobs/${seg(ns, name)}/history`),
  jobEvents: (ns: string, name: string) =>
    request<{ items: KubeEvent[] }>('GET', `/finetunejobs/${seg(ns, name)}/events`),
  createJob: (manifest: unknown) => request<FineTuneJob>('POST', '/finetunejobs', manifest),
  cancelJob: (ns: string, name: string) => request<FineTuneJob>('POST', `/finetunejobs/${seg(ns, name)}/cancel`),

  versions: (q: ListQuery = {}) => request<ListResponse<ModelVersion>>('GET', '/modelversions', undefined, q),
  version: (ns: string, name: string) => request<ModelVersion>('GET', `/modelversions/${seg(ns, name)}`),
  lineage: (ns: string, name: string) => request<Lineage>('GET', `/modelversions/${seg(ns, name)}/lineage`),
  card: (ns: string, name: string) => request<{ markdown: string }>('GET', `/modelversions/${seg(ns, name)}/card`),
  promote: (ns: string, name: string, stage: Stage) =>
    request<ModelVersion>('POST', `/modelversions/${seg(ns, name)}/promote`, { stage }),

  deployments: (q: ListQuery = {}) =>
    request<ListResponse<InferenceDeployment>>('GET', '/inferencedeployments', undefined, q),
  deployment: (ns: string, name: string) =>
    request<InferenceDeployment>('GET', `/inferencedeployments/${seg(ns, name)}`),
  deploymentHistory: (ns: string, name: string) =>
    request<DeploymentHistory>('GET', `/inferencedeployments/${seg(ns, name)}/history`),
  createDeployment: (body: { namespace: string; name: string; version: string; replicas?: number }) =>
    request<InferenceDeployment>('POST', '/inferencedeployments', body),
  scale: (ns: string, name: string, replicas: number) =>
    request<InferenceDeployment>('PATCH', `/inferencedeployments/${seg(ns, name)}/scale`, { replicas }),
  deleteDeployment: (ns: string, name: string) =>
    request<void>('DELETE', `/inferencedeployments/${seg(ns, name)}`),

  datasets: (namespace?: string) => request<{ items: DatasetEntry[] }>('GET', '/datasets', undefined, { namespace }),
  datasetPreview: (ns: string, name: string, limit = 20) =>
    request<DatasetPreview>('GET', `/datasets/${seg(ns, name)}/preview`, undefined, { limit }),
  datasetStats: (ns: string, name: string) => request<DatasetStats>('GET', `/datasets/${seg(ns, name)}/stats`),
  uploadDataset: (ns: string, file: File) => {
    const form = new FormData();
    form.append('file', file, file.name);
    return request<UploadResult>('POST', `/datasets/${encodeURIComponent(ns)}`, form);
  },

  experiments: () => request<{ items: Experiment[] }>('GET', '/experiments'),
  carbonSummary: (by: CarbonBy) => request<CarbonSummary>('GET', '/carbon/summary', undefined, { by }),
  carbonModels: () => request<{ items: CarbonModelRow[] }>('GET', '/carbon/models'),
  carbonTimeline: (days = 30) =>
    request<{ points: CarbonTimelinePoint[] }>('GET', '/carbon/timeline', undefined, { days }),
};

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Stream a chat completion through the read API, calling onText with each piece. */
export async function streamChat(
  ns: string,
  name: string,
  body: { messages: ChatMessage[]; model?: string; max_tokens?: number; temperature?: number },
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await fetch(url(`/inferencedeployments/${seg(ns, name)}/chat/completions`), {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!res.ok) throw await toApiError(res);
  if (!res.body) throw new ApiError(res.status, 'The server sent no stream.');
  await readSse(
    res.body,
    (ev) => {
      const text = chatDelta(ev.data);
      if (text) onText(text);
    },
    signal,
  );
}

/** Follow /api/v1/stream until aborted, reconnecting after a pause when it drops (a long one
 * when refused: in a cluster the stream needs a token, which Settings may add later). */
export async function followChanges(onChange: (change: ChangeEvent) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let pause = 3000;
    try {
      const res = await fetch(url('/stream'), { headers: headers({ Accept: 'text/event-stream' }), signal });
      if (res.status === 401 || res.status === 403) pause = 30000;
      if (res.ok && res.body) {
        await readSse(
          res.body,
          (ev) => {
            if (ev.event !== 'change') return;
            try {
              onChange(JSON.parse(ev.data) as ChangeEvent);
            } catch {
              /* a malformed event is skipped */
            }
          },
          signal,
        );
      }
    } catch {
      /* dropped: retry below */
    }
    if (signal.aborted) break;
    await new Promise((r) => setTimeout(r, pause));
  }
}
