import { describe, expect, it } from 'vitest';
import { buildJobManifest, defaultJobForm, formFieldOf, validateJobForm, type JobForm } from './jobform';

const valid = (over: Partial<JobForm> = {}): JobForm => ({
  ...defaultJobForm(),
  name: 'chat-lora',
  hubId: 'Qwen/Qwen2.5-0.5B-Instruct',
  datasetUri: 'pvc://model-garden-artifacts/default/datasets/train.jsonl',
  ...over,
});

describe('validateJobForm', () => {
  it('accepts the defaults with the required fields filled', () => {
    expect(validateJobForm(valid())).toEqual({});
  });

  it('requires a name, a base model and a dataset', () => {
    const e = validateJobForm(defaultJobForm());
    expect(Object.keys(e).sort()).toEqual(['datasetUri', 'hubId', 'name']);
  });

  it.each<[Partial<JobForm>, keyof JobForm]>([
    [{ name: 'Chat_LoRA' }, 'name'],
    [{ name: 'a'.repeat(51) }, 'name'],
    [{ hubId: 'not a/hub/id' }, 'hubId'],
    [{ datasetUri: 'http://example.com/x.jsonl' }, 'datasetUri'],
    [{ datasetUri: 'pvc://claim/../etc' }, 'datasetUri'],
    [{ learningRate: '0' }, 'learningRate'],
    [{ learningRate: '-1e-4' }, 'learningRate'],
    [{ epochs: '0' }, 'epochs'],
    [{ epochs: '1.5' }, 'epochs'],
    [{ batchSize: '5000' }, 'batchSize'],
    [{ warmupRatio: '1' }, 'warmupRatio'],
    [{ maxSeqLength: '8' }, 'maxSeqLength'],
    [{ loraRank: '0' }, 'loraRank'],
    [{ memory: '16 GB' }, 'memory'],
    [{ budgetKg: '0' }, 'budgetKg'],
    [{ outputModel: 'Bad' }, 'outputModel'],
    [{ baseSource: 'uri', baseUri: 'ftp://x' }, 'baseUri'],
    [{ baseSource: 'modelVersion', baseVersion: '' }, 'baseVersion'],
  ])('refuses %o', (over, field) => {
    expect(validateJobForm(valid(over))).toHaveProperty(field);
  });

  it('allows a long name when the output model is set, and ignores LoRA fields for full', () => {
    expect(validateJobForm(valid({ name: 'a'.repeat(60), outputModel: 'chat' }))).toEqual({});
    expect(validateJobForm(valid({ method: 'full', loraRank: 'x' }))).toEqual({});
  });
});

describe('buildJobManifest', () => {
  it('builds a FineTuneJob with decimals as strings', () => {
    const m = buildJobManifest(valid({ maxSteps: '50', budgetKg: '0.5', experiment: 'lr-sweep', cpu: '2' })) as {
      metadata: { name: string; labels: Record<string, string> };
      spec: Record<string, Record<string, unknown>>;
    };
    expect(m.metadata.name).toBe('chat-lora');
    expect(m.metadata.labels).toEqual({ 'modelgarden.dev/experiment': 'lr-sweep' });
    expect(m.spec.baseModel).toEqual({ hub: { id: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'main' } });
    expect(m.spec.hyperparameters.learningRate).toBe('2e-4');
    expect(m.spec.hyperparameters.epochs).toBe(1);
    expect(m.spec.hyperparameters.maxSteps).toBe(50);
    expect(m.spec.hyperparameters.warmupRatio).toBe('0.03');
    expect(m.spec.dataset.evalSplit).toBe('0.05');
    expect(m.spec.carbon).toEqual({ budgetKg: '0.5' });
    expect(m.spec.resources).toEqual({ gpus: 0, cpu: '2' });
    expect(m.spec.method).toEqual({ type: 'lora', lora: { rank: 16, alpha: 32 } });
  });

  it('uses modelVersion or uri as the base when chosen', () => {
    const mv = buildJobManifest(valid({ baseSource: 'modelVersion', baseVersion: 'chat-v1' })) as { spec: { baseModel: unknown } };
    expect(mv.spec.baseModel).toEqual({ modelVersion: { name: 'chat-v1' } });
    const full = buildJobManifest(valid({ method: 'full' })) as { spec: { method: unknown } };
    expect(full.spec.method).toEqual({ type: 'full' });
  });
});

describe('formFieldOf', () => {
  it('maps server error paths to form fields', () => {
    expect(formFieldOf('spec.hyperparameters.epochs')).toBe('epochs');
    expect(formFieldOf('spec.baseModel.hub.id')).toBe('hubId');
    expect(formFieldOf('metadata.name')).toBe('name');
    expect(formFieldOf('spec.unknown')).toBeNull();
    expect(formFieldOf(null)).toBeNull();
  });
});
