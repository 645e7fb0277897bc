// PostGraphile as its docs describe a production server: the Amber preset over the `public`
// schema, no GraphiQL, no schema watching, no EXPLAIN. The benchmark sets DATABASE_URL, and
// passes the port and host on the command line.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      // node-postgres' default pool size (10), stated so the output can quote it.
      poolConfig: { max: Number(process.env.PG_POOL_MAX ?? 10) },
    }),
  ],
  grafserv: { graphiql: false, watch: false, graphqlPath: "/graphql" },
  grafast: { explain: false },
};

export default preset;
