import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/close-codes.js';
import type { FreshReason } from '../../src/protocol/messages.js';
import { upgradeRejectionStatus } from '../../src/server/counters.js';
import { repoRoot } from '../helpers/nginx.js';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

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
    };
    for (const reason of Object.keys(reasons)) expect(titles).toContain(reason);
  });

  it('covers 1006 after a minute idle and a client that reconnects in a loop', () => {
    expect(guide).toMatch(/^## 1006 after a minute idle$/m);
    expect(guide).toMatch(/^## A client that reconnects in a loop$/m);
  });
});

describe('links in the guides', () => {
  it('every relative link in README, CONTRIBUTING and docs/ points at a file that exists', () => {
    for (const file of ['README.md', 'CONTRIBUTING.md', 'docs/deployment.md', 'docs/troubleshooting.md']) {
      const text = read(file);
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:|#)/.test(target!)) continue;
        const path = join(repoRoot, dirname(file), target!.split('#')[0]!);
        expect(existsSync(path), `${file} → ${target}`).toBe(true);
      }
    }
  });
});
