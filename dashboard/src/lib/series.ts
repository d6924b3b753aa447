// Chart data for uPlot (aligned arrays) and the text summaries that stand beside each chart.

import { formatGPer1k, formatJPerToken, formatKg, formatNumber } from './format';
import type { CarbonTimelinePoint, DeploymentHistoryPoint, ExperimentRun, JobHistoryPoint } from './types';

export type Aligned = [number[], ...(number | null)[][]];

const seconds = (iso: string) => Math.round(new Date(iso).getTime() / 1000);
const last = <T>(xs: T[]) => xs[xs.length - 1];

/** One point per step (the trainer may log a step twice: once for loss, once for eval loss);
 * a later non-null figure wins. */
export function byStep(points: JobHistoryPoint[]): JobHistoryPoint[] {
  const merged = new Map<number, JobHistoryPoint>();
  for (const p of points) {
    const seen = merged.get(p.step);
    merged.set(
      p.step,
      seen ? { ...seen, ...p, loss: p.loss ?? seen.loss, evalLoss: p.evalLoss ?? seen.evalLoss } : p,
    );
  }
  return [...merged.values()].sort((a, b) => a.step - b.step);
}

/** x = step; loss and eval loss (eval loss only at the steps it was measured). */
export function lossSeries(points: JobHistoryPoint[]): Aligned {
  const steps = byStep(points);
  return [steps.map((p) => p.step), steps.map((p) => p.loss ?? null), steps.map((p) => p.evalLoss ?? null)];
}

export function lossSummary(points: JobHistoryPoint[]): string {
  const steps = byStep(points);
  const losses = steps.filter((p) => p.loss !== null && p.loss !== undefined);
  if (losses.length === 0) return 'No loss reported yet.';
  const first = losses[0];
  const end = last(losses);
  const evals = steps.filter((p) => p.evalLoss !== null && p.evalLoss !== undefined);
  let text =
    losses.length === 1
      ? `Training loss ${formatNumber(end.loss)} at step ${end.step}.`
      : `Training loss went from ${formatNumber(first.loss)} at step ${first.step} to ${formatNumber(end.loss)} at step ${end.step}.`;
  if (evals.length) {
    const e = evals.reduce((a, b) => (a.step >= b.step ? a : b));
    text += ` Last eval loss ${formatNumber(e.evalLoss)} at step ${e.step}.`;
  }
  return text;
}

/** x = time (s); J/token and g CO2e per 1k tokens. */
export function efficiencySeries(points: DeploymentHistoryPoint[]): Aligned {
  const sorted = [...points].sort((a, b) => seconds(a.time) - seconds(b.time));
  return [sorted.map((p) => seconds(p.time)), sorted.map((p) => p.joulesPerToken ?? null), sorted.map((p) => p.gramsPer1kTokens ?? null)];
}

export function efficiencySummary(points: DeploymentHistoryPoint[]): string {
  const measured = points.filter((p) => p.gramsPer1kTokens !== null || p.joulesPerToken !== null);
  if (measured.length === 0) return 'No tokens served yet, so no per-token figures.';
  const end = measured.reduce((a, b) => (seconds(a.time) >= seconds(b.time) ? a : b));
  const tokens = points.reduce((s, p) => s + (p.tokens || 0), 0);
  const kg = points.reduce((s, p) => s + (p.emissionsKg || 0), 0);
  return `Latest: ${formatJPerToken(end.joulesPerToken)}, ${formatGPer1k(end.gramsPer1kTokens)}. ${tokens.toLocaleString('en')} tokens served for ${formatKg(kg)} CO2e over ${points.length} samples.`;
}

/** x = day (s at midnight UTC); training kg, serving kg. */
export function timelineSeries(points: CarbonTimelinePoint[]): Aligned {
  const sorted = [...points].sort((a, b) => a.day.localeCompare(b.day));
  return [sorted.map((p) => seconds(`${p.day}T00:00:00Z`)), sorted.map((p) => p.training), sorted.map((p) => p.serving)];
}

export function timelineSummary(points: CarbonTimelinePoint[]): string {
  if (points.length === 0) return 'No emissions recorded in this period.';
  const training = points.reduce((s, p) => s + p.training, 0);
  const serving = points.reduce((s, p) => s + p.serving, 0);
  const peak = points.reduce((a, b) => (a.training + a.serving >= b.training + b.serving ? a : b));
  return `${formatKg(training + serving)} CO2e over ${points.length} days: ${formatKg(training)} training, ${formatKg(serving)} serving. Busiest day ${peak.day} (${formatKg(peak.training + peak.serving)}).`;
}

/** Runs with both figures, x = CO2e (kg, ascending as uPlot needs), y = final loss. */
export function scatterPoints(runs: ExperimentRun[]): { x: number; y: number; run: ExperimentRun }[] {
  return runs
    .filter((r) => typeof r.emissionsKg === 'number' && typeof r.finalLoss === 'number')
    .map((r) => ({ x: r.emissionsKg as number, y: r.finalLoss as number, run: r }))
    .sort((a, b) => a.x - b.x);
}

export function scatterSeries(runs: ExperimentRun[]): Aligned {
  const pts = scatterPoints(runs);
  return [pts.map((p) => p.x), pts.map((p) => p.y)];
}

export function scatterSummary(runs: ExperimentRun[]): string {
  const pts = scatterPoints(runs);
  if (pts.length === 0) return 'No finished runs with both a final loss and emissions yet.';
  const best = pts.reduce((a, b) => (a.y <= b.y ? a : b));
  const cheapest = pts[0];
  return `${pts.length} runs. Lowest loss ${formatNumber(best.y)} by ${best.run.job} (${formatKg(best.x)} CO2e); least emissions ${formatKg(cheapest.x)} by ${cheapest.run.job} (loss ${formatNumber(cheapest.y)}).`;
}
