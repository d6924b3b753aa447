import { describe, expect, it } from 'vitest';
import { jobPoint, run, servePoint } from '../test/factories';
import {
  efficiencySeries,
  efficiencySummary,
  lossSeries,
  lossSummary,
  scatterSeries,
  scatterSummary,
  timelineSeries,
  timelineSummary,
} from './series';

describe('loss', () => {
  it('aligns loss and eval loss by step, sorted', () => {
    const pts = [jobPoint(20, 1.1, 1.3), jobPoint(10, 1.8)];
    expect(lossSeries(pts)).toEqual([[10, 20], [1.8, 1.1], [null, 1.3]]);
  });
  it('merges two lines logged for the same step', () => {
    const pts = [jobPoint(10, 1.8), jobPoint(20, 1.1), jobPoint(20, null, 1.3)];
    expect(lossSeries(pts)).toEqual([[10, 20], [1.8, 1.1], [null, 1.3]]);
  });
  it('summarises the curve', () => {
    expect(lossSummary([jobPoint(10, 1.8), jobPoint(20, 1.1, 1.3)])).toBe(
      'Training loss went from 1.8 at step 10 to 1.1 at step 20. Last eval loss 1.3 at step 20.',
    );
    expect(lossSummary([])).toBe('No loss reported yet.');
  });
});

describe('efficiency', () => {
  it('builds time series in seconds', () => {
    const [x, j, g] = efficiencySeries([servePoint(1, 2, 0.5), servePoint(0, 3, null)]);
    expect(x[1] - x[0]).toBe(60);
    expect(j).toEqual([3, 2]);
    expect(g).toEqual([null, 0.5]);
  });
  it('summarises the latest figures', () => {
    expect(efficiencySummary([servePoint(0, 3, 0.6), servePoint(1, 2, 0.5)])).toContain('Latest: 2 J/token, 0.5 g/1k tokens');
    expect(efficiencySummary([servePoint(0, null, null)])).toMatch(/No tokens served/);
  });
});

describe('timeline', () => {
  it('sorts days and sums the period', () => {
    const pts = [
      { day: '2026-11-02', training: 0.2, serving: 0.1, energyKwh: 1 },
      { day: '2026-11-01', training: 0.1, serving: 0, energyKwh: 1 },
    ];
    const [x, t] = timelineSeries(pts);
    expect(x[1] - x[0]).toBe(86400);
    expect(t).toEqual([0.1, 0.2]);
    expect(timelineSummary(pts)).toBe('400 g CO2e over 2 days: 300 g training, 100 g serving. Busiest day 2026-11-02 (300 g).');
  });
});

describe('scatter', () => {
  it('keeps runs with both figures, sorted by CO2e', () => {
    const runs = [run('b', 0.9, 0.002), run('a', 1.1, 0.001), run('c', null, 0.003)];
    expect(scatterSeries(runs)).toEqual([[0.001, 0.002], [1.1, 0.9]]);
    expect(scatterSummary(runs)).toBe('2 runs. Lowest loss 0.9 by b (2 g CO2e); least emissions 1 g by a (loss 1.1).');
  });
});
