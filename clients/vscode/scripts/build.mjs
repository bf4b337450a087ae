// Bundles the extension (Node, CommonJS), the chat page's script (browser) and
// the tests (Node) with esbuild. `--production` minifies and drops source maps.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const production = process.argv.includes('--production');
const common = { bundle: true, logLevel: 'warning', sourcemap: production ? false : 'linked', minify: production };

const testEntries = ['unit', 'webview', 'e2e'].flatMap((dir) =>
  readdirSync(join(root, 'test', dir))
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => join(root, 'test', dir, name)),
);

// Stale bundles or source maps must not end up beside fresh ones.
rmSync(join(root, 'dist'), { recursive: true, force: true });
rmSync(join(root, 'out'), { recursive: true, force: true });

await Promise.all([
  build({
    ...common,
    entryPoints: [join(root, 'src/extension.ts')],
    outfile: join(root, 'dist/extension.js'),
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  }),
  build({
    ...common,
    entryPoints: [join(root, 'src/webview/main.ts')],
    outfile: join(root, 'dist/webview.js'),
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  }),
  build({
    ...common,
    sourcemap: 'linked',
    minify: false,
    entryPoints: testEntries,
    outdir: join(root, 'out/test'),
    outbase: join(root, 'test'),
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // playwright-core is loaded from node_modules, not bundled.
    packages: 'external',
  }),
]);
