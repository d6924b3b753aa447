import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deployment, fakeFetch, job, json, list, overview, version } from '../test/factories';
import Datasets from './Datasets.svelte';
import DeploymentDetail from './DeploymentDetail.svelte';
import Jobs from './Jobs.svelte';
import NewJob from './NewJob.svelte';
import Overview from './Overview.svelte';
import VersionDetail from './VersionDetail.svelte';

beforeEach(() => sessionStorage.clear());
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('Jobs page', () => {
  it('shows a loading state, then its empty state', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/finetunejobs': list([]) }));
    render(Jobs);
    expect(screen.getByTestId('loading')).toBeInTheDocument();
    expect(await screen.findByTestId('empty')).toHaveTextContent('No fine-tune jobs');
  });

  it('shows the error with a retry that reloads', async () => {
    let fail = true;
    vi.stubGlobal(
      'fetch',
      fakeFetch({ '/finetunejobs': () => (fail ? json({ detail: 'watch cache not synced' }, 503) : json(list([job()]))) }),
    );
    render(Jobs);
    expect(await screen.findByRole('alert')).toHaveTextContent('watch cache not synced');
    fail = false;
    await fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('link', { name: 'chat-lora' })).toHaveAttribute('href', '#/jobs/default/chat-lora');
  });

  it('lists jobs with status, progress and CO2e', async () => {
    const done = job('done-run', {
      conditions: [{ type: 'Succeeded', status: 'True' }],
      progress: { step: 120, totalSteps: 120, loss: 0.9 },
    });
    vi.stubGlobal('fetch', fakeFetch({ '/finetunejobs': list([job(), done]) }));
    render(Jobs);
    const rows = await screen.findAllByTestId('job-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('Running');
    expect(rows[0]).toHaveTextContent('700 mg');
    expect(rows[1]).toHaveTextContent('Succeeded');
    expect(screen.getByRole('progressbar', { name: 'Progress of chat-lora' })).toHaveAttribute('aria-valuenow', '25');
  });
});

describe('Overview page', () => {
  it('shows the week and recent jobs', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/overview': overview() }));
    render(Overview);
    expect(await screen.findByTestId('overview-emissions')).toHaveTextContent('250 g CO2e');
    expect(screen.getByTestId('overview-running-jobs')).toHaveTextContent('1');
    expect(screen.getByTestId('overview-by-region')).toHaveTextContent('FRA');
    expect(screen.getByRole('link', { name: 'chat-lora' })).toBeInTheDocument();
  });

  it('invites a first job when there is none', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/overview': overview({ recentJobs: [], byRegion: [] }) }));
    render(Overview);
    expect(await screen.findByTestId('overview-no-jobs')).toHaveTextContent('No fine-tune jobs yet');
  });
});

describe('New fine-tune form', () => {
  it('shows field errors and posts nothing while invalid', async () => {
    const f = fakeFetch({});
    vi.stubGlobal('fetch', f);
    render(NewJob);
    await fireEvent.input(screen.getByLabelText(/Learning rate/), { target: { value: '-1' } });
    await fireEvent.click(screen.getByTestId('new-job-submit'));
    expect(screen.getByTestId('error-name')).toHaveTextContent('Name is required');
    expect(screen.getByTestId('error-hubId')).toBeInTheDocument();
    expect(screen.getByTestId('error-datasetUri')).toBeInTheDocument();
    expect(screen.getByTestId('error-learningRate')).toHaveTextContent('positive decimal');
    expect(screen.getByTestId('field-name')).toHaveAttribute('aria-invalid', 'true');
    expect(f.calls).toHaveLength(0);
  });

  it('posts a manifest and shows the server field errors', async () => {
    const f = fakeFetch({
      'POST /finetunejobs': () =>
        json({ detail: { message: 'invalid FineTuneJob', errors: [{ field: 'spec.hyperparameters.epochs', line: null, message: 'too many' }] } }, 422),
    });
    vi.stubGlobal('fetch', f);
    render(NewJob);
    await fireEvent.input(screen.getByTestId('field-name'), { target: { value: 'chat-lora' } });
    await fireEvent.input(screen.getByLabelText(/Hub model id/), { target: { value: 'Qwen/Qwen2.5-0.5B-Instruct' } });
    await fireEvent.input(screen.getByLabelText(/Dataset URI/), { target: { value: 'file:///data/train.jsonl' } });
    await fireEvent.click(screen.getByTestId('new-job-submit'));
    expect(await screen.findByTestId('error-epochs')).toHaveTextContent('too many');
    expect(screen.getByTestId('new-job-server-error')).toHaveTextContent('invalid FineTuneJob');
    const body = JSON.parse(f.calls[0].init!.body as string);
    expect(body).toMatchObject({ kind: 'FineTuneJob', metadata: { name: 'chat-lora', namespace: 'default' } });
    expect(body.spec.hyperparameters.learningRate).toBe('2e-4');
  });
});

describe('Datasets page', () => {
  it('shows the refusal with line numbers', async () => {
    vi.stubGlobal(
      'fetch',
      fakeFetch({
        '/info': { mode: 'local', version: '0.1', namespaces: ['default'], prometheus: false, writes: 'token' },
        '/datasets': { items: [] },
        'POST /datasets/default': () =>
          json({ detail: { message: 'bad.jsonl is not a valid dataset', errors: [{ line: 2, message: 'not valid JSON' }] } }, 422),
      }),
    );
    render(Datasets);
    expect(await screen.findByTestId('empty')).toHaveTextContent('No datasets');
    const input = screen.getByTestId('dataset-upload-input');
    await fireEvent.change(input, { target: { files: [new File(['{}\n{oops\n'], 'bad.jsonl')] } });
    await fireEvent.click(screen.getByTestId('dataset-upload-submit'));
    const report = screen.getByTestId('dataset-upload-report');
    await waitFor(() => expect(report).toHaveTextContent('line 2: not valid JSON'));
    expect(report).toHaveTextContent('Not stored');
  });
});

describe('Deployment page', () => {
  it('scales and shows the new replica count', async () => {
    const scaled = deployment();
    scaled.spec.replicas = 3;
    const f = fakeFetch({
      '/inferencedeployments/default/chat': deployment(),
      '/inferencedeployments/default/chat/history': { points: [], source: 'history' },
      'PATCH /inferencedeployments/default/chat/scale': scaled,
    });
    vi.stubGlobal('fetch', f);
    render(DeploymentDetail, { namespace: 'default', name: 'chat' });
    expect(await screen.findByTestId('deployment-endpoint')).toHaveTextContent('http://chat.default.svc:8000/v1');
    await fireEvent.input(screen.getByTestId('scale-input'), { target: { value: '3' } });
    await fireEvent.click(screen.getByTestId('scale-submit'));
    expect(await screen.findByTestId('scale-message')).toHaveTextContent('Scaled to 3 replicas');
    expect(screen.getByTestId('deployment-replicas')).toHaveTextContent('1 ready of 3');
  });

  it('refuses a bad replica count without calling the API', async () => {
    const f = fakeFetch({
      '/inferencedeployments/default/chat': deployment(),
      '/inferencedeployments/default/chat/history': { points: [], source: 'history' },
    });
    vi.stubGlobal('fetch', f);
    render(DeploymentDetail, { namespace: 'default', name: 'chat' });
    await screen.findByTestId('scale-input');
    await fireEvent.input(screen.getByTestId('scale-input'), { target: { value: '-2' } });
    await fireEvent.click(screen.getByTestId('scale-submit'));
    expect(screen.getByTestId('scale-error')).toHaveTextContent('whole number');
    expect(f.calls.filter((c) => c.init?.method === 'PATCH')).toHaveLength(0);
  });
});

describe('Version page', () => {
  it('shows lineage and renders the model card without raw HTML', async () => {
    vi.stubGlobal(
      'fetch',
      fakeFetch({
        '/modelversions/default/chat-v1/lineage': { job: job(), version: version(), deployments: [deployment()] },
        '/modelversions/default/chat-v1/card': { markdown: '# chat-v1\n\n<script>alert(1)</script>' },
      }),
    );
    render(VersionDetail, { namespace: 'default', name: 'chat-v1' });
    const lineage = await screen.findByTestId('version-lineage');
    expect(lineage).toHaveTextContent('chat-lora');
    expect(lineage).toHaveTextContent('chat');
    const card = await screen.findByTestId('model-card');
    expect(card.querySelector('script')).toBeNull();
    expect(card).toHaveTextContent('<script>alert(1)</script>');
  });
});
