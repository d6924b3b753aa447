// Wire types of the read API (/api/v1), camelCase as the CRDs and model_garden.api models.
// Fields the dashboard does not read are left out; everything the server may omit is optional.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string | null;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  resourceVersion?: string;
}

export interface CarbonReport {
  energyKwh?: number;
  emissionsKg?: number;
  gridIntensityGPerKwh?: number | null;
  country?: string | null;
  region?: string | null;
  method?: 'measured' | 'estimated';
  emissions?: string | null;
}

export interface FineTuneJobSpec {
  baseModel: {
    hub?: { id: string; revision?: string } | null;
    modelVersion?: { name: string } | null;
    uri?: string | null;
  };
  dataset: { uri: string; format?: string; maxSeqLength?: number; evalSplit?: string };
  method?: { type?: string; lora?: { rank?: number; alpha?: number; dropout?: string } };
  hyperparameters?: Record<string, string | number | null | undefined>;
  resources?: { gpus?: number; cpu?: string | null; memory?: string | null };
  backend?: string;
  output?: { model?: string | null; storage?: string };
  carbon?: { country?: string | null; region?: string | null; budgetKg?: string | null };
}

export interface FineTuneJobStatus {
  conditions?: Condition[];
  progress?: {
    step?: number;
    totalSteps?: number | null;
    epoch?: number;
    loss?: number | null;
    evalLoss?: number | null;
    learningRate?: number | null;
    tokensPerSecond?: number | null;
    etaSeconds?: number | null;
  } | null;
  carbon?: CarbonReport | null;
  backend?: string | null;
  modelVersion?: string | null;
  startTime?: string | null;
  completionTime?: string | null;
}

export interface FineTuneJob {
  apiVersion?: string;
  kind?: 'FineTuneJob';
  metadata: ObjectMeta;
  spec: FineTuneJobSpec;
  status?: FineTuneJobStatus;
}

export type Stage = 'none' | 'staging' | 'production';
export const STAGES: Stage[] = ['none', 'staging', 'production'];

export interface ModelVersion {
  apiVersion?: string;
  kind?: 'ModelVersion';
  metadata: ObjectMeta;
  spec: {
    model: string;
    version: number;
    artifact: { uri: string; format: string; baseModel?: string | null; sizeBytes?: number | null };
    source?: { fineTuneJob?: string | null };
    metrics?: Record<string, string>;
    trainingCarbon?: { energyKwh?: string; emissionsKg?: string; method?: string } | null;
    evaluation?: { dataset: string; loss: string; perplexity: string; examples: number } | null;
    stage?: Stage;
  };
  status?: {
    conditions?: Condition[];
    servingDeployments?: string[];
    trainingEmissionsKg?: number | null;
    servingEmissionsKg?: number | null;
    servingEnergyKwh?: number | null;
    lifetimeEmissionsKg?: number | null;
    lifetimeEmissions?: string | null;
  };
}

export interface InferenceDeployment {
  apiVersion?: string;
  kind?: 'InferenceDeployment';
  metadata: ObjectMeta;
  spec: {
    modelVersion?: string | null;
    model?: string | null;
    stage?: Stage | null;
    adapters?: { name: string; modelVersion: string }[];
    replicas?: number;
    servedModelName?: string | null;
  };
  status?: {
    conditions?: Condition[];
    endpoint?: string | null;
    modelVersion?: string | null;
    replicas?: number;
    readyReplicas?: number;
    servedModels?: string[];
    carbon?: {
      energyKwh?: number;
      emissionsKg?: number;
      tokens?: number;
      gPer1kTokens?: number | null;
      method?: string;
      region?: string | null;
    } | null;
  };
}

export interface ListResponse<T> {
  items: T[];
  continue: string | null;
  total: number;
}

export interface Info {
  mode: 'local' | 'cluster';
  version: string;
  namespaces: string[];
  prometheus: boolean;
  writes: 'token' | 'caller';
}

export interface Overview {
  runningJobs: number;
  servingDeployments: number;
  versions: number;
  emissionsThisWeekKg: number;
  energyThisWeekKwh: number;
  byRegion: { region: string | null; emissionsKg: number; energyKwh: number }[];
  recentJobs: FineTuneJob[];
}

export interface JobHistoryPoint {
  time: string;
  step: number;
  epoch: number | null;
  loss: number | null;
  evalLoss: number | null;
  learningRate: number | null;
  tokensPerSecond: number | null;
}

export interface JobHistory {
  points: JobHistoryPoint[];
  source: 'prometheus' | 'history';
}

export interface KubeEvent {
  time: string | null;
  type: string | null;
  reason: string | null;
  message: string | null;
}

export interface Lineage {
  job: FineTuneJob | null;
  version: ModelVersion;
  deployments: InferenceDeployment[];
}

export interface DeploymentHistoryPoint {
  time: string;
  energyKwh: number;
  emissionsKg: number;
  tokens: number;
  tokensPerSecond: number | null;
  joulesPerToken: number | null;
  gramsPer1kTokens: number | null;
}

export interface DeploymentHistory {
  points: DeploymentHistoryPoint[];
  source: 'prometheus' | 'history';
}

export interface DatasetEntry {
  namespace: string;
  name: string;
  format: string;
  rows: number;
  bytes: number;
  modified: string;
}

export interface DatasetPreview {
  format: string;
  rows: Record<string, unknown>[];
  total: number;
}

export interface DatasetStats {
  rows: number;
  format: string;
  tokens: { total: number; mean: number; p50: number; p95: number; max: number } | null;
  characters: { total: number; mean: number; max: number };
}

export interface UploadResult {
  namespace: string;
  name: string;
  format: string;
  rows: number;
}

export interface ExperimentRun {
  namespace: string;
  job: string;
  model: string;
  status: string;
  method: string;
  hyperparameters: Record<string, string | number | null>;
  finalLoss: number | null;
  finalEvalLoss: number | null;
  durationSeconds: number | null;
  energyKwh: number | null;
  emissionsKg: number | null;
}

export interface Experiment {
  name: string;
  runs: ExperimentRun[];
}

export type CarbonBy = 'model' | 'version' | 'experiment' | 'namespace' | 'region' | 'method' | 'kind';
export const CARBON_BY: CarbonBy[] = ['model', 'version', 'experiment', 'namespace', 'region', 'method', 'kind'];

export interface CarbonSummary {
  by: CarbonBy;
  rows: { key: string | null; energyKwh: number; emissionsKg: number; operations: number; measuredShare: number }[];
}

export interface CarbonModelRow {
  model: string;
  namespace: string;
  trainingKg: number;
  servingKg: number;
  totalKg: number;
  tokens: number;
  gramsPer1kTokens: number | null;
}

export interface CarbonTimelinePoint {
  day: string;
  training: number;
  serving: number;
  energyKwh: number;
}

export interface ChangeEvent {
  kind: string;
  namespace: string;
  name: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resourceVersion?: string;
}

export interface FieldError {
  field?: string | null;
  line?: number | null;
  message: string;
}
