/**
 * What `sluice queue …` prints: tables with aligned columns, ages and durations people read
 * ("3m", "2h", "5d"), and durations they type ("90s", "2h", "7d").
 */

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "90", "90s", "15m", "2h", "7d", "1w" as seconds; undefined when it is none of them. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2] || 's']! : undefined;
}

/** A text cut to `max` characters, on one line. */
export function clip(text: string | null | undefined, max: number): string {
  const one = (text ?? '').replace(/\s+/g, ' ').trim();
  return one.length > max ? one.slice(0, max - 1) + '…' : one;
}
