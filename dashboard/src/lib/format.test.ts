import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatDuration,
  formatGPer1k,
  formatJPerToken,
  formatKg,
  formatKwh,
  formatPercent,
  formatTime,
  progressShare,
} from './format';

describe('formatKg', () => {
  it.each([
    [1.234, '1.23 kg'],
    [0.35, '350 g'],
    [0.000012, '12 mg'],
    [1.85e-7, '185 µg'],
    [2500, '2.5 t'],
    [0, '0 g'],
  ])('%s kg reads %s', (kg, text) => expect(formatKg(kg)).toBe(text));
  it('shows a dash for missing figures', () => {
    expect(formatKg(null)).toBe('—');
    expect(formatKg(undefined)).toBe('—');
    expect(formatKg(Number.NaN)).toBe('—');
  });
});

describe('formatKwh', () => {
  it.each([
    [3.4, '3.4 kWh'],
    [0.35, '350 Wh'],
    [0.000012, '12 mWh'],
    [1200, '1.2 MWh'],
    [0, '0 Wh'],
  ])('%s kWh reads %s', (kwh, text) => expect(formatKwh(kwh)).toBe(text));
});

describe('per-token figures', () => {
  it('formats grams per 1k tokens and joules per token', () => {
    expect(formatGPer1k(0.4213)).toBe('0.421 g/1k tokens');
    expect(formatGPer1k(null)).toBe('—');
    expect(formatJPerToken(1.5)).toBe('1.5 J/token');
  });
});

describe('durations, sizes, shares, times', () => {
  it.each([
    [45, '45 s'],
    [725, '12 min 5 s'],
    [12000, '3 h 20 min'],
    [187200, '2 d 4 h'],
  ])('%s s reads %s', (s, text) => expect(formatDuration(s)).toBe(text));
  it('formats bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2 * 1024 * 1024)).toBe('2 MiB');
  });
  it('formats a share as a percent', () => expect(formatPercent(0.666)).toBe('67%'));
  it('formats times in UTC', () => expect(formatTime('2026-11-27T16:05:09Z')).toBe('2026-11-27 16:05'));
  it('computes progress only with a known total', () => {
    expect(progressShare(30, 120)).toBe(0.25);
    expect(progressShare(30, null)).toBeNull();
    expect(progressShare(500, 120)).toBe(1);
  });
});
