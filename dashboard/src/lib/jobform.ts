// The "new fine-tune" form: its fields, validation mirroring the FineTuneJob CRD
// (crds/modelgarden.dev_finetunejobs.yaml) and the manifest it posts.

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SEGMENT = '([^/.][^/]*|\\.([^/.][^/]*)?|\\.\\.[^/]+)?';
const PVC = `pvc://${LABEL}(\\.${LABEL})*(/${SEGMENT})*`;
export const STORAGE_URI = new RegExp(`^(${PVC}|s3://.+|file://.+)$`);
export const LOCAL_URI = new RegExp(`^(${PVC}|file://.+)$`);
export const POSITIVE_DECIMAL = /^([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([eE][-+]?[0-9]+)?$/;
export const FRACTION = /^(0+(\.[0-9]*)?|0*\.[0-9]+)$/;
export const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$/;
export const COUNTRY = /^[A-Z]{3}$/;
export const MODEL_NAME_MAX = 50;
export const LABEL_MAX = 63;

export const BASE_SOURCES = ['hub', 'modelVersion', 'uri'] as const;
export const DATASET_FORMATS = ['auto', 'alpaca', 'chat', 'completion', 'text'] as const;
export const METHODS = ['lora', 'qlora', 'full'] as const;
export const SCHEDULERS = ['linear', 'cosine', 'constant', 'constant_with_warmup'] as const;
export const BACKENDS = ['auto', 'unsloth', 'transformers'] as const;

export interface JobForm {
  namespace: string;
  name: string;
  baseSource: (typeof BASE_SOURCES)[number];
  hubId: string;
  hubRevision: string;
  baseVersion: string;
  baseUri: string;
  datasetUri: string;
  datasetFormat: (typeof DATASET_FORMATS)[number];
  maxSeqLength: string;
  evalSplit: string;
  method: (typeof METHODS)[number];
  loraRank: string;
  loraAlpha: string;
  epochs: string;
  maxSteps: string;
  learningRate: string;
  batchSize: string;
  gradientAccumulationSteps: string;
  warmupRatio: string;
  lrScheduler: (typeof SCHEDULERS)[number];
  backend: (typeof BACKENDS)[number];
  outputModel: string;
  gpus: string;
  cpu: string;
  memory: string;
  budgetKg: string;
  experiment: string;
}

export type JobFormErrors = Partial<Record<keyof JobForm, string>>;

/** The form as it opens: the CRD's defaults. */
export function defaultJobForm(namespace = 'default'): JobForm {
  return {
    namespace,
    name: '',
    baseSource: 'hub',
    hubId: '',
    hubRevision: 'main',
    baseVersion: '',
    baseUri: '',
    datasetUri: '',
    datasetFormat: 'auto',
    maxSeqLength: '2048',
    evalSplit: '0.05',
    method: 'lora',
    loraRank: '16',
    loraAlpha: '32',
    epochs: '1',
    maxSteps: '',
    learningRate: '2e-4',
    batchSize: '4',
    gradientAccumulationSteps: '1',
    warmupRatio: '0.03',
    lrScheduler: 'linear',
    backend: 'auto',
    outputModel: '',
    gpus: '0',
    cpu: '',
    memory: '',
    budgetKg: '',
    experiment: '',
  };
}

function intIn(value: string, min: number, max: number | null, what: string): string | undefined {
  const v = value.trim();
  if (!/^[0-9]+$/.test(v)) return `${what} must be a whole number`;
  const n = Number(v);
  if (n < min) return `${what} must be at least ${min}`;
  if (max !== null && n > max) return `${what} must be at most ${max}`;
  return undefined;
}

/** Field errors, empty when the form can be posted. */
export function validateJobForm(f: JobForm): JobFormErrors {
  const e: JobFormErrors = {};
  const name = f.name.trim();
  if (!f.namespace.trim()) e.namespace = 'Namespace is required';
  else if (!DNS_LABEL.test(f.namespace.trim())) e.namespace = 'Lowercase letters, digits and "-" only';
  if (!name) e.name = 'Name is required';
  else if (!DNS_LABEL.test(name) || name.length > LABEL_MAX)
    e.name = 'A DNS label: lowercase letters, digits and "-", at most 63 characters';
  else if (!f.outputModel.trim() && name.length > MODEL_NAME_MAX)
    e.name = `At most ${MODEL_NAME_MAX} characters unless an output model name is set`;

  if (f.baseSource === 'hub') {
    if (!f.hubId.trim()) e.hubId = 'A Hub model id is required, e.g. Qwen/Qwen2.5-0.5B-Instruct';
    else if (!HUB_ID.test(f.hubId.trim())) e.hubId = 'Not a Hub id: owner/name with letters, digits, ".", "_" and "-"';
    if (!f.hubRevision.trim()) e.hubRevision = 'Revision is required (a branch, tag or commit)';
  } else if (f.baseSource === 'modelVersion') {
    if (!f.baseVersion.trim()) e.baseVersion = 'A ModelVersion name is required';
    else if (!DNS_LABEL.test(f.baseVersion.trim())) e.baseVersion = 'Not a ModelVersion name';
  } else if (!f.baseUri.trim()) e.baseUri = 'A model URI is required';
  else if (!STORAGE_URI.test(f.baseUri.trim())) e.baseUri = 'Use pvc://<claim>/<path>, s3://<bucket>/<path> or file://<path>';

  if (!f.datasetUri.trim()) e.datasetUri = 'A dataset URI is required';
  else if (!STORAGE_URI.test(f.datasetUri.trim()))
    e.datasetUri = 'Use pvc://<claim>/<path>, s3://<bucket>/<path> or file://<path>';
  if (!DATASET_FORMATS.includes(f.datasetFormat)) e.datasetFormat = 'Choose a format';
  e.maxSeqLength = intIn(f.maxSeqLength, 16, 1_048_576, 'Max sequence length');
  if (!FRACTION.test(f.evalSplit.trim())) e.evalSplit = 'A fraction below 1 written as a decimal, e.g. 0.05';

  if (!METHODS.includes(f.method)) e.method = 'Choose a method';
  if (f.method !== 'full') {
    e.loraRank = intIn(f.loraRank, 1, 1024, 'LoRA rank');
    e.loraAlpha = intIn(f.loraAlpha, 1, 4096, 'LoRA alpha');
  }
  e.epochs = intIn(f.epochs, 1, 1000, 'Epochs');
  if (f.maxSteps.trim()) e.maxSteps = intIn(f.maxSteps, 1, null, 'Max steps');
  if (!POSITIVE_DECIMAL.test(f.learningRate.trim())) e.learningRate = 'A positive decimal, e.g. 2e-4';
  e.batchSize = intIn(f.batchSize, 1, 4096, 'Batch size');
  e.gradientAccumulationSteps = intIn(f.gradientAccumulationSteps, 1, 1024, 'Gradient accumulation');
  if (!FRACTION.test(f.warmupRatio.trim())) e.warmupRatio = 'A fraction below 1, e.g. 0.03';
  if (!SCHEDULERS.includes(f.lrScheduler)) e.lrScheduler = 'Choose a schedule';
  if (!BACKENDS.includes(f.backend)) e.backend = 'Choose a backend';

  const out = f.outputModel.trim();
  if (out && (!DNS_LABEL.test(out) || out.length > MODEL_NAME_MAX))
    e.outputModel = `A DNS label of at most ${MODEL_NAME_MAX} characters`;
  e.gpus = intIn(f.gpus, 0, 64, 'GPUs');
  if (f.cpu.trim() && !QUANTITY.test(f.cpu.trim())) e.cpu = 'A quantity, e.g. 4 or 500m';
  if (f.memory.trim() && !QUANTITY.test(f.memory.trim())) e.memory = 'A quantity, e.g. 16Gi';
  if (f.budgetKg.trim() && !POSITIVE_DECIMAL.test(f.budgetKg.trim())) e.budgetKg = 'A positive decimal in kg, e.g. 0.5';
  const exp = f.experiment.trim();
  if (exp && (exp.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(exp)))
    e.experiment = 'A label value: letters, digits, "-", "_" and ".", at most 63 characters';

  for (const k of Object.keys(e) as (keyof JobForm)[]) if (e[k] === undefined) delete e[k];
  return e;
}

/** The FineTuneJob manifest for a valid form; numbers as numbers, decimals kept as strings. */
export function buildJobManifest(f: JobForm): Record<string, unknown> {
  const base =
    f.baseSource === 'hub'
      ? { hub: { id: f.hubId.trim(), revision: f.hubRevision.trim() } }
      : f.baseSource === 'modelVersion'
        ? { modelVersion: { name: f.baseVersion.trim() } }
        : { uri: f.baseUri.trim() };
  const hyperparameters: Record<string, unknown> = {
    epochs: Number(f.epochs),
    learningRate: f.learningRate.trim(),
    batchSize: Number(f.batchSize),
    gradientAccumulationSteps: Number(f.gradientAccumulationSteps),
    warmupRatio: f.warmupRatio.trim(),
    lrScheduler: f.lrScheduler,
  };
  if (f.maxSteps.trim()) hyperparameters.maxSteps = Number(f.maxSteps);
  const method: Record<string, unknown> = { type: f.method };
  if (f.method !== 'full') method.lora = { rank: Number(f.loraRank), alpha: Number(f.loraAlpha) };
  const resources: Record<string, unknown> = { gpus: Number(f.gpus) };
  if (f.cpu.trim()) resources.cpu = f.cpu.trim();
  if (f.memory.trim()) resources.memory = f.memory.trim();
  const spec: Record<string, unknown> = {
    baseModel: base,
    dataset: {
      uri: f.datasetUri.trim(),
      format: f.datasetFormat,
      maxSeqLength: Number(f.maxSeqLength),
      evalSplit: f.evalSplit.trim(),
    },
    method,
    hyperparameters,
    resources,
    backend: f.backend,
  };
  if (f.outputModel.trim()) spec.output = { model: f.outputModel.trim() };
  if (f.budgetKg.trim()) spec.carbon = { budgetKg: f.budgetKg.trim() };
  const metadata: Record<string, unknown> = { name: f.name.trim(), namespace: f.namespace.trim() };
  if (f.experiment.trim()) metadata.labels = { 'modelgarden.dev/experiment': f.experiment.trim() };
  return { apiVersion: 'modelgarden.dev/v1alpha1', kind: 'FineTuneJob', metadata, spec };
}

const SERVER_FIELDS: [string, keyof JobForm][] = [
  ['metadata.name', 'name'],
  ['metadata.namespace', 'namespace'],
  ['spec.baseModel.hub.id', 'hubId'],
  ['spec.baseModel.hub.revision', 'hubRevision'],
  ['spec.baseModel.modelVersion', 'baseVersion'],
  ['spec.baseModel.uri', 'baseUri'],
  ['spec.baseModel', 'hubId'],
  ['spec.dataset.uri', 'datasetUri'],
  ['spec.dataset.format', 'datasetFormat'],
  ['spec.dataset.maxSeqLength', 'maxSeqLength'],
  ['spec.dataset.evalSplit', 'evalSplit'],
  ['spec.method.type', 'method'],
  ['spec.method.lora.rank', 'loraRank'],
  ['spec.method.lora.alpha', 'loraAlpha'],
  ['spec.hyperparameters.epochs', 'epochs'],
  ['spec.hyperparameters.maxSteps', 'maxSteps'],
  ['spec.hyperparameters.learningRate', 'learningRate'],
  ['spec.hyperparameters.batchSize', 'batchSize'],
  ['spec.hyperparameters.gradientAccumulationSteps', 'gradientAccumulationSteps'],
  ['spec.hyperparameters.warmupRatio', 'warmupRatio'],
  ['spec.hyperparameters.lrScheduler', 'lrScheduler'],
  ['spec.backend', 'backend'],
  ['spec.output.model', 'outputModel'],
  ['spec.resources.gpus', 'gpus'],
  ['spec.resources.cpu', 'cpu'],
  ['spec.resources.memory', 'memory'],
  ['spec.carbon.budgetKg', 'budgetKg'],
];

/** The form field a server error's path (`spec.hyperparameters.epochs`) belongs to. */
export function formFieldOf(path: string | null | undefined): keyof JobForm | null {
  if (!path) return null;
  for (const [prefix, field] of SERVER_FIELDS) {
    if (path === prefix || path.startsWith(`${prefix}.`)) return field;
  }
  return null;
}
