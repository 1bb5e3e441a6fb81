import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import type { FreshReason } from '../../src/protocol/messages.js';
import { upgradeRejectionStatus } from '../../src/server/operations/counters.js';
import { repoRoot } from '../helpers/nginx.js';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

/** Every .ts file below `dir` (relative to the repo root). */
const listFiles = (dir: string): string[] =>
  readdirSync(join(repoRoot, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));

/** The body of every fenced code block of `markdown` with this info string (e.g. `nginx`). */
function codeBlocks(markdown: string, lang: string): string[] {
  return [...markdown.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!);
}

/** `### <title>` headings of a markdown file. */
const headings = (markdown: string) => [...markdown.matchAll(/^### (.+)$/gm)].map((m) => m[1]!);

describe('docs/deployment.md', () => {
  const guide = read('docs/deployment.md');

  it('shows the nginx and Apache configs the proxy tests run, unchanged', () => {
    expect(codeBlocks(guide, 'nginx')).toEqual([read('deploy/nginx/websocket.conf')]);
    expect(codeBlocks(guide, 'apache')).toEqual([read('deploy/apache/websocket.conf')]);
  });

  it('covers nginx, Apache, AWS ALB, Azure App Service, Kubernetes and Docker', () => {
    const sections = [...guide.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
    expect(sections).toEqual([
      'nginx',
      'Apache httpd',
      'AWS Application Load Balancer',
      'Azure App Service',
      'Kubernetes',
      'Docker and docker-compose',
    ]);
  });
});

describe('docs/troubleshooting.md', () => {
  const guide = read('docs/troubleshooting.md');
  const titles = headings(guide);

  it('has a section for every close code in src/protocol/close-codes.ts', () => {
    const codes = Object.entries(CloseCode);
    expect(codes.length).toBeGreaterThan(15);
    for (const [name, code] of codes) expect(titles, `${code} ${name}`).toContain(`${code} ${name}`);
    // And nothing else: every close-code section is a code the library defines.
    const documented = titles.filter((t) => /^\d{4} /.test(t)).map((t) => Number(t.slice(0, 4)));
    expect(documented.sort()).toEqual(codes.map(([, c]) => c).sort());
  });

  it('has a section for every HTTP status of a refused upgrade, and for 400 and 404', () => {
    const statuses = new Set([...Object.values(upgradeRejectionStatus), 400, 404]);
    for (const status of statuses)
      expect(
        titles.some((t) => t.startsWith(`${status} `)),
        `${status}`,
      ).toBe(true);
  });

  it('has a section for every reason a resume answers fresh', () => {
    // A Record over the union: adding a FreshReason without listing it here fails the type check.
    const reasons: Record<FreshReason, true> = {
      new: true,
      expired: true,
      'unknown-session': true,
      gap: true,
      'token-rejected': true,
      evicted: true,
      'token-replayed': true,
    };
    for (const reason of Object.keys(reasons)) expect(titles).toContain(reason);
  });

  it('covers 1006 after a minute idle and a client that reconnects in a loop', () => {
    expect(guide).toMatch(/^## 1006 after a minute idle$/m);
    expect(guide).toMatch(/^## A client that reconnects in a loop$/m);
  });
});

describe('close codes in README and PROTOCOL.md', () => {
  const codes = Object.entries(CloseCode);

  it('README "Close codes and HTTP statuses" has a row for every close code', () => {
    const readme = read('README.md');
    const section = readme.slice(
      readme.indexOf('## Close codes and HTTP statuses'),
      readme.indexOf('## Scaling out'),
    );
    for (const [name, code] of codes) expect(section, `${code} ${name}`).toContain(`| ${code} | ${name} |`);
  });

  it('PROTOCOL.md §5 has a row for every close code', () => {
    const protocol = read('PROTOCOL.md');
    const section = protocol.slice(protocol.indexOf('## 5. Close codes'));
    for (const [name, code] of codes) expect(section, `${code} ${name}`).toContain(`| ${code} | ${name} |`);
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2, ... */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = markdown.replace(/^```[\s\S]*?^```$/gm, '');
  for (const [, title] of text.matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = title!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

describe('links in the guides', () => {
  const files = [
    'README.md',
    'CONTRIBUTING.md',
    'ARCHITECTURE.md',
    'PROTOCOL.md',
    'bench/README.md',
    'docs/deployment.md',
    'docs/troubleshooting.md',
    'docs/redis-deployments.md',
    'docs/security.md',
    'docs/dashboard.md',
  ];

  it('every relative link points at a file that exists, and every #anchor at a heading', () => {
    for (const file of files) {
      const text = read(file);
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [pathPart, anchor] = target!.split('#') as [string, string | undefined];
        const path = pathPart === '' ? join(repoRoot, file) : join(repoRoot, dirname(file), pathPart);
        expect(existsSync(path), `${file} → ${target}`).toBe(true);
        if (anchor !== undefined && path.endsWith('.md'))
          expect(anchors(readFileSync(path, 'utf8')), `${file} → ${target}`).toContain(anchor);
      }
    }
  });

  it('every "PROTOCOL.md §n" in src/, test/ and the guides names a section that exists', () => {
    const sections = new Set(
      [...read('PROTOCOL.md').matchAll(/^#{2,3} (\d+(?:\.\d+)*)\.? /gm)].map((m) => m[1]!),
    );
    expect(sections).toContain('2.8');
    const sources = [...files, ...listFiles('src'), ...listFiles('test')];
    for (const file of sources) {
      for (const [ref, number] of read(file).matchAll(/PROTOCOL(?:\.md)?\]?(?:\([^)]*\))? §(\d+(?:\.\d+)*)/g))
        expect(sections, `${file}: ${ref}`).toContain(number!);
    }
  });

  it('no heading of README, ARCHITECTURE or PROTOCOL is repeated (its anchor would be ambiguous)', () => {
    for (const file of ['README.md', 'ARCHITECTURE.md', 'PROTOCOL.md']) {
      const text = read(file).replace(/^```[\s\S]*?^```$/gm, '');
      const titles = [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => m[1]!);
      expect(
        titles.filter((t, i) => titles.indexOf(t) !== i),
        file,
      ).toEqual([]);
    }
  });
});
