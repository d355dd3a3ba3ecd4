/**
 * Plain-text tables and number formatting for the bench report. The first column (the row's
 * name) is left-aligned, the others (figures) right-aligned.
 *
 * Called from bench/main.ts and the sections' printers.
 */

/** A cell: text, or a number already formatted by one of the helpers below. */
export type Cell = string;

/** Renders rows under headers, columns padded to their widest cell. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly Cell[]): string =>
    cells
      .map((cell, c) => {
        const w = widths[c] ?? 0;
        return c > 0 ? cell.padStart(w) : cell.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** ns with a sensible number of digits: 3.42, 41.7, 1,626, 286,051. */
export function fmtNs(ns: number | undefined): string {
  if (ns === undefined || !Number.isFinite(ns)) return '-';
  if (ns < 10) return ns.toFixed(2);
  if (ns < 100) return ns.toFixed(1);
  return Math.round(ns).toLocaleString('en-US');
}

/** Milliseconds: 0.412, 12.3, 740. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1) return ms.toFixed(3);
  if (ms < 100) return ms.toFixed(1);
  return Math.round(ms).toLocaleString('en-US');
}

/** A ratio as `1.23×`. */
export function fmtRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '-';
  return r < 10 ? `${r.toFixed(2)}×` : `${Math.round(r).toLocaleString('en-US')}×`;
}

/** A u32 as 0x-hex. */
export function fmtHex(x: number): string {
  return `0x${(x >>> 0).toString(16)}`;
}

/** `PASS` / `MISS` against a target, for the summary lines. */
export function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}

/** How a figure was reduced, for the section notes. */
export function medianWording(isolates: number): string {
  return isolates > 1
    ? `median over rounds in each of ${isolates} fresh workers, then the median of those`
    : 'median over rounds in one fresh worker';
}

/** A section heading. */
export function heading(title: string): string {
  return `\n## ${title}\n`;
}
