// Apollo Client with its persisted-query link against a running Task API, as a browser app uses
// it (tests/frontend/test_apollo_client.py runs this with node and reads what it prints).
//
//   node apollo_persisted.mjs manifest         print {sha256: document} of the documents below,
//                                               exactly as the link hashes and sends them
//   node apollo_persisted.mjs apq URL          misses, registers, hits by POST and by GET
//   node apollo_persisted.mjs trusted URL      a listed document runs, another is refused
//
// Every request the client sends is recorded with its answer and printed as JSON on stdout.
import { createHash } from 'node:crypto';

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { print } from 'graphql';
import { Observable } from 'rxjs';

const TASKS = gql`
  query Tasks($userId: String!) {
    tasks(userId: $userId) { id title }
  }
`;
const CREATE = gql`
  mutation Create($userId: String!, $title: String!) {
    createTask(userId: $userId, input: { title: $title }) { id title }
  }
`;
const UNLISTED = gql`
  query Unlisted($userId: String!) {
    tasks(userId: $userId) { id completed }
  }
`;

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const requests = [];

async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = new URL(String(input));
  requests.push({
    method: init.method ?? 'GET',
    query: url.searchParams.get('query'),
    extensions: url.searchParams.get('extensions'),
    body: typeof init.body === 'string' ? JSON.parse(init.body) : null,
    status: response.status,
    answer: await response.clone().json(),
  });
  return response;
}

function client(uri, useGETForHashedQueries) {
  const persisted = new PersistedQueryLink({ sha256, useGETForHashedQueries });
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.from([persisted, new HttpLink({ uri, fetch: recordingFetch })]),
  });
}

async function outcome(promise) {
  try {
    const result = await promise;
    return { data: result.data ?? null, error: result.error ? String(result.error) : null };
  } catch (error) {
    return { data: null, error: String(error) };
  }
}

async function manifest() {
  // The documents exactly as the link sends them (the cache adds __typename before hashing).
  const seen = {};
  const capture = new ApolloLink((operation) => {
    seen[operation.extensions.persistedQuery.sha256Hash] = print(operation.query);
    return new Observable((observer) => {
      observer.next({ data: { tasks: [], createTask: null } });
      observer.complete();
    });
  });
  const apollo = new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.from([new PersistedQueryLink({ sha256 }), capture]),
  });
  await outcome(apollo.query({ query: TASKS, variables: { userId: 'alice' } }));
  await outcome(apollo.mutate({ mutation: CREATE, variables: { userId: 'alice', title: 't' } }));
  return seen;
}

async function apq(uri) {
  const byPost = client(uri, false);
  const byGet = client(uri, true);
  const variables = { userId: 'alice', title: 'Buy milk' };
  return {
    created: await outcome(byPost.mutate({ mutation: CREATE, variables })),
    createdAgain: await outcome(byPost.mutate({ mutation: CREATE, variables })),
    listed: await outcome(
      byGet.query({ query: TASKS, variables: { userId: 'alice' }, fetchPolicy: 'network-only' }),
    ),
    listedAgain: await outcome(
      byGet.query({ query: TASKS, variables: { userId: 'alice' }, fetchPolicy: 'network-only' }),
    ),
  };
}

async function trusted(uri) {
  const apollo = client(uri, true);
  const variables = { userId: 'alice' };
  return {
    listed: await outcome(apollo.query({ query: TASKS, variables, fetchPolicy: 'network-only' })),
    unlisted: await outcome(
      apollo.query({ query: UNLISTED, variables, fetchPolicy: 'network-only' }),
    ),
  };
}

const [mode, uri] = process.argv.slice(2);
const run = { manifest, apq, trusted }[mode];
if (!run) {
  console.error('usage: node apollo_persisted.mjs manifest | apq URL | trusted URL');
  process.exit(2);
}
const results = await run(uri);
console.log(JSON.stringify({ results, requests }));
