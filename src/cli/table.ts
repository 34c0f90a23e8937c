// Rows of cells as lines of aligned columns, two spaces apart (the first row is the header), as
// `ringvisor up` and `ringvisor ls` print them.
export function formatTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd());
}
