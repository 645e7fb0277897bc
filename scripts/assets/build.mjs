// Builds GraphiQL for the browser out of the pinned npm packages: one ES module entry (with
// lazily loaded chunks), one style sheet and Monaco's three web workers, all loaded from the
// same origin. Run by scripts/refresh_assets.py as `node build.mjs OUTDIR METAFILE`, in a
// directory where `npm ci` has installed package.json; esbuild's output is deterministic.
import { writeFileSync } from 'node:fs';
import * as esbuild from 'esbuild';

const [outdir, metafilePath] = process.argv.slice(2);
if (!outdir || !metafilePath) {
  throw new Error('usage: node build.mjs OUTDIR METAFILE');
}

const common = {
  bundle: true,
  minify: true,
  legalComments: 'none', // the licences are collected into THIRD_PARTY_LICENSES.txt instead
  target: ['es2022'],
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
};

// Monaco's modules import their own CSS; graphiql/style.css already contains all of it.
const cssImportsFromJsAreEmpty = {
  name: 'css-imports-from-js-are-empty',
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, (args) =>
      args.kind === 'import-statement' ? { path: args.path, namespace: 'empty-css' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'empty-css' }, () => ({ contents: '', loader: 'js' }));
  },
};

const results = [
  await esbuild.build({
    ...common,
    entryPoints: { graphiql: 'graphiql.jsx' },
    format: 'esm',
    splitting: true,
    jsx: 'automatic',
    outdir,
    chunkNames: 'chunks/[name]-[hash]',
    plugins: [cssImportsFromJsAreEmpty],
  }),
  await esbuild.build({ ...common, entryPoints: { graphiql: 'graphiql.css' }, outdir }),
];

const workers = {
  'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
  'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
};
for (const [name, entry] of Object.entries(workers)) {
  results.push(
    await esbuild.build({
      ...common,
      entryPoints: { [name]: entry },
      format: 'iife', // classic workers: `new Worker(url)` with no module support needed
      outdir,
      plugins: [cssImportsFromJsAreEmpty],
    }),
  );
}

// Every input file of every build, for the licence collection.
const inputs = [...new Set(results.flatMap((result) => Object.keys(result.metafile.inputs)))];
writeFileSync(metafilePath, JSON.stringify({ inputs: inputs.sort() }, null, 2));
