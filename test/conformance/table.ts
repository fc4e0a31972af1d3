/**
 * The README's two tables the comparison applies, read from the README
 * itself so that the documentation and the harness cannot drift apart:
 * "Allowed differences from net.Socket" (rule ids) and "Error codes
 * compared as the same" (our code ≙ net's codes).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** Rows of the first table after `heading`: each row's cells, backticks stripped. */
export function tableRows(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(heading);
  if (start < 0) throw new Error(`README has no section "${heading}"`);
  const lines = markdown.slice(start).split('\n');
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) break;
    if (!line.startsWith('|')) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1); // the header
}

export const ALLOWED_HEADING = '### Allowed differences from net.Socket';
export const CODES_HEADING = '### Error codes compared as the same';

export function readmeTables(markdown = readFileSync(README, 'utf8')): { rules: string[]; codes: Map<string, string> } {
  const rules = tableRows(markdown, ALLOWED_HEADING).map((r) => r[0]!.replace(/`/g, ''));
  const codes = new Map<string, string>();
  for (const [ours, theirs] of tableRows(markdown, CODES_HEADING)) {
    const name = ours!.replace(/`/g, '');
    codes.set(name, name);
    for (const code of theirs!.split(',').map((c) => c.replace(/`/g, '').trim())) codes.set(code, name);
  }
  return { rules, codes };
}
