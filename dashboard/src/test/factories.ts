// Built data for the tests: resources and API answers as the read API sends them.

import type {
  DeploymentHistoryPoint,
  ExperimentRun,
  FineTuneJob,
  InferenceDeployment,
  JobHistoryPoint,
  ListResponse,
  ModelVersion,
  Overview,
} from '../lib/types';

export function job(name = 'chat-lora', over: Partial<FineTuneJob['status']> = {}): FineTuneJob {
  return {
    apiVersion: 'modelgarden.dev/v1alpha1',
    kind: 'FineTuneJob',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: {
      baseModel: { hub: { id: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'main' } },
      dataset: { uri: 'pvc://model-garden-artifacts/default/datasets/train.jsonl', format: 'chat' },
      method: { type: 'lora', lora: { rank: 16, alpha: 32 } },
      hyperparameters: { epochs: 1, learningRate: '2e-4', batchSize: 4 },
    },
    status: {
      conditions: [{ type: 'Running', status: 'True', reason: 'Training', message: '' }],
      progress: { step: 30, totalSteps: 120, epoch: 0.25, loss: 1.234, evalLoss: null },
      carbon: { energyKwh: 0.012, emissionsKg: 0.0007, emissions: '700 mg', method: 'estimated' },
      ...over,
    },
  };
}

export function version(name = 'chat-v1'): ModelVersion {
  return {
    metadata: { name, namespace: 'default' },
    spec: {
      model: 'chat',
      version: 1,
      artifact: { uri: 'pvc://model-garden-artifacts/default/chat-v1', format: 'adapter', sizeBytes: 2_000_000 },
      source: { fineTuneJob: 'chat-lora' },
      stage: 'none',
    },
    status: { conditions: [{ type: 'Ready', status: 'True' }], lifetimeEmissionsKg: 0.002 },
  };
}

export function deployment(name = 'chat'): InferenceDeployment {
  return {
    metadata: { name, namespace: 'default' },
    spec: { modelVersion: 'chat-v1', replicas: 1 },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      endpoint: 'http://chat.default.svc:8000/v1',
      replicas: 1,
      readyReplicas: 1,
      servedModels: ['chat-v1'],
      carbon: { energyKwh: 0.1, emissionsKg: 0.005, tokens: 12000, gPer1kTokens: 0.42 },
    },
  };
}

export function list<T>(items: T[], next: string | null = null): ListResponse<T> {
  return { items, continue: next, total: items.length };
}

export function overview(over: Partial<Overview> = {}): Overview {
  return {
    runningJobs: 1,
    servingDeployments: 2,
    versions: 3,
    emissionsThisWeekKg: 0.25,
    energyThisWeekKwh: 1.5,
    byRegion: [{ region: 'FRA', emissionsKg: 0.25, energyKwh: 1.5 }],
    recentJobs: [job()],
    ...over,
  };
}

export function jobPoint(step: number, loss: number | null, evalLoss: number | null = null): JobHistoryPoint {
  return {
    time: new Date(Date.UTC(2026, 10, 27, 12, 0, step)).toISOString(),
    step,
    epoch: step / 100,
    loss,
    evalLoss,
    learningRate: 2e-4,
    tokensPerSecond: 500,
  };
}

export function servePoint(minute: number, j: number | null, g: number | null): DeploymentHistoryPoint {
  return {
    time: new Date(Date.UTC(2026, 10, 27, 12, minute)).toISOString(),
    energyKwh: 0.001,
    emissionsKg: 0.00005,
    tokens: 1000,
    tokensPerSecond: 20,
    joulesPerToken: j,
    gramsPer1kTokens: g,
  };
}

export function run(job: string, finalLoss: number | null, emissionsKg: number | null): ExperimentRun {
  return {
    namespace: 'default',
    job,
    model: 'chat',
    status: 'Succeeded',
    method: 'lora',
    hyperparameters: { epochs: 1, learningRate: '2e-4', loraR: 16 },
    finalLoss,
    finalEvalLoss: null,
    durationSeconds: 600,
    energyKwh: 0.02,
    emissionsKg,
  };
}

/** A fetch stub answering by path (after /api/v1) with JSON, or with a Response given as is. */
export function fakeFetch(routes: Record<string, unknown | ((init?: RequestInit) => Response | Promise<Response>)>) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    calls.push({ url, init });
    const path = url.replace(/^.*api\/v1/, '').split('?')[0];
    const key = `${init?.method ?? 'GET'} ${path}`;
    const answer = key in routes ? routes[key] : routes[path];
    if (answer === undefined) return json({ detail: `no route ${key}` }, 404);
    if (typeof answer === 'function') return (answer as (init?: RequestInit) => Response)(init);
    return json(answer);
  };
  return Object.assign(fn, { calls });
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
