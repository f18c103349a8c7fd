import { z } from "zod/v4";

/**
 * OpenAPI 3.1 documents built from the routes' zod schemas, so the document cannot drift from what
 * the server parses and the client expects. Schemas are rendered on their input side (the JSON on
 * the wire) as JSON Schema 2020-12, OpenAPI 3.1's dialect; schemas named with `.meta({ id })`
 * become shared components.
 */

type JsonSchema = Record<string, unknown>;

export type ResponseDoc = {
  description: string;
  /** A JSON answer's schema; omitted for an answer without a JSON body. */
  schema?: z.ZodType;
  /** Another media type, described as text (Prometheus metrics). */
  text?: { contentType: string };
};

export type RouteDoc = {
  method: "get" | "post";
  /** As Hono writes it: `/accounts/:address/earnings`. */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, ResponseDoc>;
};

export type OpenApiDocument = {
  openapi: "3.1.0";
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema> };
  tags?: { name: string; description?: string }[];
};

/** `/accounts/:address/earnings` → `/accounts/{address}/earnings`. */
export const openApiPath = (honoPath: string): string => honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** Renders schemas into one document's components: `$defs` are hoisted and their references rewritten. */
class SchemaRenderer {
  readonly components: Record<string, JsonSchema> = {};

  render(schema: z.ZodType): JsonSchema {
    const json = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" }) as JsonSchema;
    const { $schema: _, $defs, ...root } = json;
    for (const [name, def] of Object.entries(($defs as Record<string, JsonSchema> | undefined) ?? {})) {
      this.components[name] = this.clean(def);
    }
    const id = typeof root.id === "string" ? root.id : undefined;
    const cleaned = this.clean(root);
    if (!id) return cleaned;
    this.components[id] = cleaned;
    return { $ref: `#/components/schemas/${id}` };
  }

  /** Rewrites `#/$defs/X` references and drops zod's `id` annotations (not a JSON Schema keyword). */
  private clean(value: JsonSchema): JsonSchema {
    const walk = (v: unknown, inProperties = false): unknown => {
      if (Array.isArray(v)) return v.map((x) => walk(x));
      if (typeof v !== "object" || v === null) return v;
      const out: JsonSchema = {};
      for (const [k, x] of Object.entries(v)) {
        if (!inProperties && k === "id" && typeof x === "string") continue;
        if (!inProperties && k === "$ref" && typeof x === "string") out[k] = x.replace(/^#\/\$defs\//, "#/components/schemas/");
        else out[k] = walk(x, !inProperties && (k === "properties" || k === "patternProperties"));
      }
      return out;
    };
    return walk(value) as JsonSchema;
  }
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(
  info: OpenApiDocument["info"],
  routes: readonly RouteDoc[],
  tags?: OpenApiDocument["tags"],
): OpenApiDocument {
  const renderer = new SchemaRenderer();
  const paths: OpenApiDocument["paths"] = {};
  for (const route of routes) {
    const parameters = [...parametersOf(renderer, route.params, "path"), ...parametersOf(renderer, route.query, "query")];
    const responses = Object.fromEntries(
      Object.entries(route.responses).map(([status, r]) => [
        status,
        {
          description: r.description,
          ...(r.schema
            ? { content: { "application/json": { schema: renderer.render(r.schema) } } }
            : r.text
              ? { content: { [r.text.contentType]: { schema: { type: "string" } } } }
              : {}),
        },
      ]),
    );
    const operation = {
      operationId: operationIdOf(route),
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      ...(route.tags ? { tags: route.tags } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { "application/json": { schema: renderer.render(route.body) } } } } : {}),
      responses,
    };
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method]: operation };
  }
  return { openapi: "3.1.0", info, ...(tags ? { tags } : {}), paths, components: { schemas: renderer.components } };
}

function parametersOf(renderer: SchemaRenderer, schema: z.ZodObject | undefined, where: "path" | "query") {
  if (!schema) return [];
  return Object.entries(schema.shape).map(([name, field]) => {
    const rendered = renderer.render(field as z.ZodType);
    const { description, ...rest } = rendered;
    return {
      name,
      in: where,
      required: where === "path" || !(field as z.ZodType).safeParse(undefined).success,
      ...(typeof description === "string" ? { description } : {}),
      schema: rest,
    };
  });
}

/** `get /accounts/:address/earnings` → `getAccountsAddressEarnings`. */
function operationIdOf(route: RouteDoc): string {
  const words = route.path
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1));
  return route.method + words.join("");
}
