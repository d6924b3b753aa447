// Numbers as people read them: energy, emissions, intensity per 1k tokens, durations, sizes.

const nf = (digits: number) => new Intl.NumberFormat('en', { maximumSignificantDigits: digits });

function scaled(value: number, units: [number, string][], digits = 3): string {
  const abs = Math.abs(value);
  for (const [factor, unit] of units) {
    if (abs >= factor) return `${nf(digits).format(value / factor)} ${unit}`;
  }
  const [factor, unit] = units[units.length - 1];
  return `${nf(digits).format(value / factor)} ${unit}`;
}

const MISSING = '—';
const ok = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** kg CO2e: "1.2 t", "3.4 kg", "350 g", "12 mg", "185 µg". */
export function formatKg(kg: number | null | undefined): string {
  if (!ok(kg)) return MISSING;
  if (kg === 0) return '0 g';
  return scaled(kg, [
    [1000, 't'],
    [1, 'kg'],
    [1e-3, 'g'],
    [1e-6, 'mg'],
    [1e-9, 'µg'],
  ]);
}

/** kWh: "1.2 MWh", "3.4 kWh", "350 Wh", "12 mWh". */
export function formatKwh(kwh: number | null | undefined): string {
  if (!ok(kwh)) return MISSING;
  if (kwh === 0) return '0 Wh';
  return scaled(kwh, [
    [1000, 'MWh'],
    [1, 'kWh'],
    [1e-3, 'Wh'],
    [1e-6, 'mWh'],
    [1e-9, 'µWh'],
  ]);
}

/** grams CO2e per 1,000 tokens. */
export function formatGPer1k(g: number | null | undefined): string {
  if (!ok(g)) return MISSING;
  return `${nf(3).format(g)} g/1k tokens`;
}

/** joules per token. */
export function formatJPerToken(j: number | null | undefined): string {
  if (!ok(j)) return MISSING;
  return `${nf(3).format(j)} J/token`;
}

export function formatNumber(v: number | null | undefined, digits = 4): string {
  if (!ok(v)) return MISSING;
  return nf(digits).format(v);
}

export function formatInt(v: number | null | undefined): string {
  if (!ok(v)) return MISSING;
  return new Intl.NumberFormat('en').format(Math.round(v));
}

export function formatPercent(share: number | null | undefined): string {
  if (!ok(share)) return MISSING;
  return `${Math.round(share * 100)}%`;
}

/** seconds: "45 s", "12 min 5 s", "3 h 20 min", "2 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (!ok(seconds) || seconds < 0) return MISSING;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86400)} d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)} h` : ''}`;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (!ok(bytes)) return MISSING;
  if (bytes < 1024) return `${bytes} B`;
  return scaled(bytes, [
    [1024 ** 4, 'TiB'],
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ]);
}

/** An ISO time as "2026-11-27 16:05" (UTC, so the same for every reader). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return MISSING;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

/** 0..1 of a job's progress, or null when the total is not known yet. */
export function progressShare(step: number | undefined, total: number | null | undefined): number | null {
  if (!ok(total) || total <= 0) return null;
  return Math.max(0, Math.min(1, (step ?? 0) / total));
}
