/**
 * GraphiQL for this service: the explorer plugin (open at first, so a query can be built by
 * clicking), Monaco's workers loaded from beside this file, and the page's settings read from
 * its JSON data block, so the page needs no inline script under its Content-Security-Policy.
 */
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';

// Monaco runs its language services in web workers, bundled beside this module.
globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const name = label === 'json' || label === 'graphql' ? label : 'editor';
    return new Worker(new URL(`./${name}.worker.js`, import.meta.url));
  },
};

const config = JSON.parse(document.getElementById('graphiql-config').textContent);
const fetcher = createGraphiQLFetcher({
  url: config.endpoint,
  // The schema has no @defer/@stream: ask for plain responses, preferring
  // application/graphql-response+json.
  enableIncrementalDelivery: false,
});
const explorer = explorerPlugin();

createRoot(document.getElementById('graphiql')).render(
  createElement(GraphiQL, {
    fetcher,
    plugins: [explorer],
    visiblePlugin: explorer,
    defaultQuery: config.defaultQuery,
    isHeadersEditorEnabled: true,
    // Headers may hold a bearer token: keep them out of localStorage unless the user opts in.
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: true,
  }),
);
