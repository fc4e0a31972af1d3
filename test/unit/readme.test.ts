/**
 * The README can't drift from the project: its first screen holds exactly
 * the two commands (install + demo, and the test command), `.ci/run` runs
 * an install and that very test command, every error code the library
 * exports is documented, and every relative link and anchor resolves.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** Fenced code blocks, in order, with their info string. */
function fencedBlocks(markdown: string): Array<{ info: string; body: string }> {
  const blocks: Array<{ info: string; body: string }> = [];
  const fence = /^(```+|~~~+)([^\n]*)\n([\s\S]*?)^\1[ \t]*$/gm;
  for (const m of markdown.matchAll(fence)) blocks.push({ info: m[2]!.trim(), body: m[3]! });
  return blocks;
}

/** Shell commands of a script: comments and blank lines dropped, `\` continuations joined. */
function shellCommands(script: string): string[] {
  const joined = script.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line.length > 0);
}

/** The simple commands of a command line (split on `&&`, `||`, `;`). */
function simpleCommands(line: string): string[] {
  return line
    .split(/&&|\|\||;/)
    .map((part) => part.trim().replace(/\s+/g, ' '))
    .filter((part) => part.length > 0);
}

/** The markdown outside fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  return markdown.replace(/^(```+|~~~+)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const withoutCode = markdown.replace(/^(```+|~~~+)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
  for (const m of withoutCode.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Link targets of `[text](target)` outside code. */
function linkTargets(markdown: string): string[] {
  const text = markdown
    .replace(/^(```+|~~~+)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '')
    .replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length));
  return [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

describe('README first screen', () => {
  const firstBlock = fencedBlocks(readme)[0];

  it('comes before any section heading', () => {
    const firstHeading = readme.search(/^##\s/m);
    expect(firstBlock).toBeDefined();
    expect(readme.indexOf(firstBlock!.body)).toBeLessThan(firstHeading === -1 ? Infinity : firstHeading);
  });

  const commands = shellCommands(firstBlock?.body ?? '');

  it('holds exactly two commands: install + demo, and the tests', () => {
    expect(commands).toHaveLength(2);
    const [install, test] = commands.map(simpleCommands);
    expect(install).toEqual(['npm install', 'npm run demo']);
    expect(test).toEqual(['npm test']);
  });

  it('names scripts that exist in package.json', () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const command of commands.flatMap(simpleCommands)) {
      const run = /^npm run ([\w:-]+)$/.exec(command);
      if (run) expect(scripts, command).toHaveProperty(run[1]!);
      if (command === 'npm test') expect(scripts, command).toHaveProperty('test');
    }
  });

  it('is what .ci/run runs: an install, then the exact test command', () => {
    const ci = shellCommands(readFileSync(join(root, '.ci/run'), 'utf8')).flatMap(simpleCommands);
    const testCommand = commands.map(simpleCommands)[1]?.join(' && ');
    const installAt = ci.findIndex((c) => /^npm (install|i|ci)(\s|$)/.test(c));
    const testAt = ci.indexOf(testCommand ?? '');
    expect(installAt, `.ci/run runs npm install: ${JSON.stringify(ci)}`).toBeGreaterThanOrEqual(0);
    expect(testAt, `.ci/run runs ${testCommand}: ${JSON.stringify(ci)}`).toBeGreaterThan(installAt);
  });
});

describe('README error codes', () => {
  const text = prose(readme.replace(/`(ERR_VCHAN_\w+)`/g, '$1'));

  it('documents every code in ErrorCodes', () => {
    const missing = Object.values(ErrorCodes).filter((code) => !new RegExp(`\\b${code}\\b`).test(text));
    expect(missing).toEqual([]);
  });

  it('mentions no ERR_VCHAN_ code that does not exist', () => {
    const known = new Set<string>(Object.values(ErrorCodes));
    const mentioned = new Set(readme.match(/\bERR_VCHAN_\w+/g) ?? []);
    expect([...mentioned].filter((code) => !known.has(code))).toEqual([]);
  });
});

describe('README links', () => {
  const targets = linkTargets(readme);
  const local = targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));

  it('has links to check', () => {
    expect(local.length).toBeGreaterThan(0);
  });

  it('points every relative link at a file that exists', () => {
    const missing = local
      .map((t) => decodeURIComponent(t.split('#')[0]!))
      .filter((file) => file.length > 0 && !existsSync(join(root, file)));
    expect(missing).toEqual([]);
  });

  it('points every #anchor at a heading', () => {
    const known = anchors(readme);
    const broken = local.filter((t) => t.startsWith('#')).filter((t) => !known.has(t.slice(1)));
    expect(broken).toEqual([]);
  });
});

describe('README TypeScript examples', () => {
  const blocks = fencedBlocks(readme).filter((b) => b.info === 'ts' || b.info === 'typescript');

  it('has TypeScript blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  it('compile under tsc --strict against the package as users import it', () => {
    // Each block is its own module; 'xen-vchan' and 'xen-vchan/memory' resolve to the sources.
    const dir = join(root, '.cache/readme-ts');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    blocks.forEach((b, i) => writeFileSync(join(dir, `block-${i + 1}.ts`), `${b.body}\nexport {};\n`));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022'],
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          baseUrl: root,
          paths: { 'xen-vchan': ['src/index.ts'], 'xen-vchan/memory': ['src/memory/index.ts'] },
        },
        include: ['*.ts'],
      }),
    );
    let output = '';
    try {
      execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? error);
    }
    expect(output).toBe('');
  });
});
