// graphql-codegen's client preset on the service's schema, as a frontend team runs it: typed
// documents for every operation under tests/frontend/operations, and the persisted documents
// manifest (sha256 -> document) that trusted documents mode reads.
// The output directory comes from CODEGEN_OUT (the test writes into a scratch directory).
import type { CodegenConfig } from '@graphql-codegen/cli';

const out = process.env.CODEGEN_OUT ?? 'generated/graphql/';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: ['../../tests/frontend/operations/*.graphql'],
  // A schema change that breaks an operation fails here, before any type is written.
  emitLegacyCommonJSImports: false,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { hashAlgorithm: 'sha256' },
      },
      config: {
        // The schema's custom scalar: ISO 8601 text on the wire.
        scalars: { DateTime: 'string' },
        strictScalars: true,
        useTypeImports: true,
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
