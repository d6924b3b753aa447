import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TOKEN_KEY } from '../lib/auth';
import { publish } from '../lib/live';
import { fakeFetch, job, jobPoint, run } from '../test/factories';
import Carbon from './Carbon.svelte';
import Experiments from './Experiments.svelte';
import JobDetail from './JobDetail.svelte';
import Settings from './Settings.svelte';

beforeEach(() => sessionStorage.clear());
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe('Job page', () => {
  it('shows the loss summary and refetches on a change event for this job', async () => {
    const f = fakeFetch({
      '/finetunejobs/default/chat-lora': job(),
      '/finetunejobs/default/chat-lora/history': { points: [jobPoint(1, 2.0), jobPoint(2, 1.5)], source: 'history' },
      '/finetunejobs/default/chat-lora/events': { items: [] },
    });
    vi.stubGlobal('fetch', f);
    render(JobDetail, { namespace: 'default', name: 'chat-lora' });
    expect(await screen.findByTestId('job-loss-chart-summary')).toHaveTextContent('from 2 at step 1 to 1.5 at step 2');
    expect(screen.getByRole('img', { name: /loss of chat-lora/ })).toBeInTheDocument();
    const before = f.calls.length;
    publish({ kind: 'FineTuneJob', namespace: 'default', name: 'other', type: 'MODIFIED' });
    publish({ kind: 'FineTuneJob', namespace: 'default', name: 'chat-lora', type: 'MODIFIED' });
    await waitFor(() => expect(f.calls.length).toBe(before + 3), { timeout: 2000 });
  });

  it('says so when no loss was logged yet', async () => {
    vi.stubGlobal(
      'fetch',
      fakeFetch({
        '/finetunejobs/default/chat-lora': job(),
        '/finetunejobs/default/chat-lora/history': { points: [], source: 'history' },
        '/finetunejobs/default/chat-lora/events': { items: [] },
      }),
    );
    render(JobDetail, { namespace: 'default', name: 'chat-lora' });
    expect(await screen.findByTestId('job-loss-empty')).toBeInTheDocument();
  });
});

describe('Experiments page', () => {
  it('shows its empty state', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/experiments': { items: [] } }));
    render(Experiments);
    expect(await screen.findByTestId('empty')).toHaveTextContent('No experiments yet');
  });

  it('puts runs side by side with a scatter summary', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/experiments': { items: [{ name: 'lr', runs: [run('a', 1.1, 0.001), run('b', 0.9, 0.002)] }] } }));
    render(Experiments);
    const table = await screen.findByTestId('experiment-runs');
    expect(table).toHaveTextContent('learningRate');
    expect(screen.getByTestId('experiment-scatter-lr-summary')).toHaveTextContent('Lowest loss 0.9 by b');
  });
});

describe('Carbon page', () => {
  it('shows totals with the measured share, and the error of a failing part', async () => {
    vi.stubGlobal(
      'fetch',
      fakeFetch({
        '/carbon/timeline': { points: [] },
        '/carbon/summary': { by: 'model', rows: [{ key: 'chat', energyKwh: 1, emissionsKg: 0.05, operations: 3, measuredShare: 0.5 }] },
        '/carbon/models': () => new Response(JSON.stringify({ detail: 'store unreadable' }), { status: 500 }),
      }),
    );
    render(Carbon);
    expect(await screen.findByTestId('carbon-summary')).toHaveTextContent('50% measured');
    expect(await screen.findByRole('alert')).toHaveTextContent('store unreadable');
    expect(screen.getByText(/No emissions recorded in the last 30 days/)).toBeInTheDocument();
  });
});

describe('Settings page', () => {
  it('keeps a pasted token in session storage', async () => {
    vi.stubGlobal('fetch', fakeFetch({ '/info': { mode: 'cluster', version: '0.1', namespaces: ['a'], prometheus: true, writes: 'caller' } }));
    render(Settings);
    await fireEvent.input(screen.getByLabelText('Token'), { target: { value: 'abc' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe('abc');
    expect(await screen.findByTestId('settings-info')).toHaveTextContent('you (your token)');
  });
});
