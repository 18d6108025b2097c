// Builds dist/esm (ES modules, also loaded as-is by browsers) and dist/cjs (CommonJS), each with
// its .d.ts files, with the TypeScript compiler run twice.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function run(project) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit', cwd: root });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
// The two builds run side by side; the consumer check needs dist/ and runs after them.
const codes = await Promise.all([run('tsconfig.json'), run('tsconfig.cjs.json')]);
if (codes.some((c) => c !== 0)) {
  console.error('tsc failed');
  process.exit(1);
}
for (const [dir, type] of [['esm', 'module'], ['cjs', 'commonjs']]) {
  mkdirSync(join(root, 'dist', dir), { recursive: true });
  writeFileSync(join(root, 'dist', dir, 'package.json'), JSON.stringify({ type }) + '\n');
}
// Type-check a consumer written against the public API (the docs' examples), through the
// package's "exports" map, as ESM and as CommonJS.
if ((await run('test/types/tsconfig.json')) !== 0) {
  console.error('type check of test/types failed');
  process.exit(1);
}
console.log('built dist/esm and dist/cjs');
