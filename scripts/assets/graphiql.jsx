/**
 * GraphiQL for this service: the explorer plugin (open at first, so a query can be built by
 * clicking), Monaco's workers loaded from beside this file, and the page's settings read from
 * its JSON data block, so the page needs no inline script under its Content-Security-Policy.
 * Subscriptions run over a WebSocket at the same path (graphql-ws, `graphql-transport-ws`), with
 * the Authorization header from the Headers tab sent in `connection_init`.
 */
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
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
const httpFetcher = createGraphiQLFetcher({
  url: config.endpoint,
  // The schema has no @defer/@stream: ask for plain responses, preferring
  // application/graphql-response+json.
  enableIncrementalDelivery: false,
});

const socketUrl = new URL(config.endpoint, window.location.href);
socketUrl.protocol = socketUrl.protocol === 'https:' ? 'wss:' : 'ws:';
// One WebSocket per Authorization value, opened on the first subscription that needs it.
const socketClients = new Map();

function socketClient(authorization) {
  const key = authorization ?? '';
  if (!socketClients.has(key)) {
    socketClients.set(
      key,
      createClient({
        url: socketUrl.href,
        connectionParams: authorization ? { Authorization: authorization } : {},
      }),
    );
  }
  return socketClients.get(key);
}

function isSubscription(params, options) {
  const operations = (options?.documentAST?.definitions ?? []).filter(
    (definition) => definition.kind === 'OperationDefinition',
  );
  const chosen = params.operationName
    ? operations.find((operation) => operation.name?.value === params.operationName)
    : operations[0];
  return chosen?.operation === 'subscription';
}

function fetcher(params, options) {
  if (!isSubscription(params, options)) {
    return httpFetcher(params, options);
  }
  const headers = options?.headers ?? {};
  const authorization = headers.Authorization ?? headers.authorization;
  return socketClient(authorization).iterate({
    query: params.query,
    variables: params.variables ?? undefined,
    operationName: params.operationName ?? undefined,
  });
}
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
