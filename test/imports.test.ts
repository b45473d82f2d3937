// Components import each other only through their index.ts, and never in a circle: a cycle between
// folders (stack/ needing loadtest/ needing stack/) means a helper sits in the wrong component.
// Read from the sources, type-only imports included: a type cycle is a design cycle too.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { test } from 'node:test';
import { PACKAGE_ROOT } from '../scripts/generate-docs.js';

/** Folders that hold code but are not components: tests and scripts may reach past a door. */
const EXEMPT_FROM_DOORS = new Set(['test', 'scripts']);
const NOT_CODE = new Set(['node_modules', 'dist', 'docs', 'deploy', 'docker', 'results', 'models', 'bin']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory())
      return name.startsWith('.') || (dir === PACKAGE_ROOT && NOT_CODE.has(name)) ? [] : sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm;

interface Edge {
  from: string;
  to: string;
  file: string;
  target: string;
}

function componentEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(PACKAGE_ROOT)) {
    const from = relative(PACKAGE_ROOT, file).split(sep)[0]!;
    for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const target = relative(PACKAGE_ROOT, normalize(join(dirname(file), match[1]!)));
      const to = target.split(sep)[0]!;
      if (to !== from && !to.startsWith('..') && !to.endsWith('.json'))
        edges.push({ from, to, file: relative(PACKAGE_ROOT, file), target });
    }
  }
  return edges;
}

const edges = componentEdges();

test('the import graph between component folders has no cycle', () => {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (from === 'test') continue;
    graph.set(from, (graph.get(from) ?? new Set()).add(to));
  }
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    for (const next of graph.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at !== -1) cycles.push([...path.slice(at), next].join(' -> '));
      else visit(next, [...path, next]);
    }
  };
  for (const node of graph.keys()) visit(node, [node]);
  // Each cycle with the files that make each of its steps.
  const through = (cycle: string) => {
    const nodes = cycle.split(' -> ');
    const steps = nodes.slice(0, -1).map((from, index) => {
      const to = nodes[index + 1]!;
      return `${from} -> ${to} (${[...new Set(edges.filter((edge) => edge.from === from && edge.to === to).map((edge) => edge.file))].join(', ')})`;
    });
    return steps.join('; ');
  };
  assert.deepEqual([...new Set(cycles)].map(through), []);
});

// attestation/web.ts is attestation's second door, for code that must also run in a browser (the
// client SDK): index.ts re-exports it, but also loads node:crypto, node:fs and child processes.
const BROWSER_DOORS = new Set(['attestation/web.js']);

test("a component imports another only through that one's index.ts (or its browser-safe door)", () => {
  const pastTheDoor = edges.filter(
    (edge) =>
      !EXEMPT_FROM_DOORS.has(edge.from) &&
      !/^[^/\\]+[/\\]index\.js$/.test(edge.target) &&
      !BROWSER_DOORS.has(edge.target.replaceAll('\\', '/')),
  );
  assert.deepEqual(
    pastTheDoor.map((edge) => `${edge.file} imports ${edge.target}`),
    [],
  );
});

test('the graph is read: the known doors are there', () => {
  assert.ok(edges.some((edge) => edge.from === 'loadtest' && edge.to === 'stack'));
  assert.ok(edges.some((edge) => edge.from === 'gateway' && edge.to === 'attestation'));
});
