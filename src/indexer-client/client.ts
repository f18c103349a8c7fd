import { type Address, getAddress, type Hex } from "viem";
import { byChainPosition } from "../chain/position.js";
import type { Point } from "../eerc/curve.js";
import { UnknownAccountError } from "../history/errors.js";
import type { AuditTotalsResponse, EarningsResponse } from "../history/types.js";
import type { CommittedBatch, ProviderRef } from "../history/usage.js";
import { connectionDropped, type HttpAnswer, type HttpClientOptions, httpErrorOf, jsonOf, sendRequest } from "../http/client.js";
import { ApiHttpError, ApiResponseError } from "../http/errors.js";
import { requestParsed } from "../http/schema.js";
import type { PeriodUnit } from "../usage/period.js";
import {
  API_PATHS,
  auditTotalsResponse,
  earningsResponse,
  type ProviderWriteResult,
  providerWriteResult,
  type RegisterRequestWire,
  type SubmitRequestWire,
  type SubmitResult,
  submitResult,
  type UpdateRequestWire,
} from "./schemas.js";

export type IndexerClientOptions = HttpClientOptions & {
  /** Rows per GraphQL page; default 200, fewer when the API says a page of them costs too much. */
  pageSize?: number;
  /** Waits before sending a GraphQL read again that the API answered 503 (busy with costly queries); default 1, 2 and 4 s. */
  busyRetryMs?: readonly number[];
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Times a GraphQL read is sent again, at once, after its connection was dropped under it. */
const DROPPED_RETRIES = 2;

/**
 * A GraphQL request the API refused for what it would cost (400): `limit` names the limit
 * (`maxBytes`, `maxRows`, …), `max` is its value and `requested` what the request would cost.
 */
export class GraphqlLimitError extends ApiHttpError {
  constructor(
    url: string,
    message: string,
    readonly limit: string,
    readonly max: number,
    readonly requested: number,
  ) {
    super(url, 400, message, "query");
  }
}

/** The cost refusal in a 400 answer's body, if that is what it is. */
function limitErrorOf(answer: { url: string; status: number; text: string }): GraphqlLimitError | undefined {
  if (answer.status !== 400) return undefined;
  try {
    const e = (JSON.parse(answer.text) as { error?: { message?: unknown; limit?: unknown; max?: unknown; requested?: unknown } }).error;
    if (e && typeof e.message === "string" && typeof e.limit === "string" && typeof e.max === "number" && typeof e.requested === "number")
      return new GraphqlLimitError(answer.url, e.message, e.limit, e.max, e.requested);
  } catch {
    // not JSON
  }
  return undefined;
}

/**
 * The one client of the indexer and its API: GraphQL (with cursor paging), `/status`, the REST
 * views (`/accounts/:address/earnings`, `/providers/:providerId/earnings`, `/audit/totals`) and the
 * write routes, each answer parsed with its schema (`schemas.ts`), and the reads built on them.
 * `baseUrl` is where the indexer is mounted (`http://host:42069` or `https://host/api`).
 */
/** A `usageCommitments` row as the GraphQL API answers it. */
export type UsageCommitmentRow = {
  server: Address;
  batchId: Hex;
  periodStart: string;
  periodEnd: string;
  merkleRoot: Hex;
  encryptedLines: Hex;
  blockNumber: string;
  logIndex: number;
  txHash: Hex;
};

export class IndexerClient {
  readonly baseUrl: string;
  readonly graphqlUrl: string;
  private readonly statusUrl: string;
  private readonly options: HttpClientOptions;
  private readonly pageSize: number;
  private readonly busyRetryMs: readonly number[];

  constructor(baseUrl: string, options: IndexerClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new TypeError(`indexer URL "${baseUrl}" is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`indexer URL "${baseUrl}" must be http(s)`);
    this.baseUrl = url.href.endsWith("/") ? url.href : `${url.href}/`;
    this.graphqlUrl = new URL("graphql", this.baseUrl).href;
    this.statusUrl = new URL("status", this.baseUrl).href;
    this.options = { timeoutMs: options.timeoutMs, fetch: options.fetch };
    this.pageSize = options.pageSize ?? 200;
    this.busyRetryMs = options.busyRetryMs ?? [1_000, 2_000, 4_000];
  }

  /** A read is idempotent: sent again on a new connection when the server dropped the one it was on. */
  private async postGraphql(json: { query: string; variables: Record<string, unknown> }): Promise<HttpAnswer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await sendRequest(this.graphqlUrl, { method: "POST", json }, this.options);
      } catch (e) {
        if (attempt >= DROPPED_RETRIES || !connectionDropped(e)) throw e;
      }
    }
  }

  private url(path: string, query: Record<string, string | undefined> = {}): string {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url.href;
  }

  /**
   * One GraphQL query; the server's errors become ApiResponseError, an error status ApiHttpError
   * (GraphqlLimitError for a request refused for its cost). A 503 (the API busy with costly
   * queries) is sent again after each wait of `busyRetryMs`; a read whose connection the server
   * closed under it (a kept-alive connection dropped by a busy process) is sent again at once.
   */
  async query<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let answer = await this.postGraphql({ query, variables });
    for (const wait of this.busyRetryMs) {
      if (answer.status !== 503) break;
      await sleep(wait);
      answer = await this.postGraphql({ query, variables });
    }
    const refused = limitErrorOf(answer);
    if (refused) throw refused;
    let body: { data?: T; errors?: { message?: string }[] };
    try {
      body = jsonOf(answer);
    } catch (e) {
      if (!answer.ok) throw httpErrorOf(answer);
      throw e;
    }
    if (body.errors?.length) {
      throw new ApiResponseError(this.graphqlUrl, `GraphQL error: ${body.errors.map((e) => e.message ?? "?").join("; ")}`);
    }
    if (!answer.ok || !body.data) throw httpErrorOf(answer);
    return body.data;
  }

  /** Every row of a table (matching `where`, a GraphQL filter object literal) through cursor pages, in `orderBy` order. */
  async all<R>(field: string, selection: string, orderBy: string, where?: string): Promise<R[]> {
    const rows: R[] = [];
    for await (const page of this.pages<R>(field, selection, orderBy, where)) rows.push(...page);
    return rows;
  }

  /**
   * The rows of `all`, one cursor page at a time, for a reader that starts on the first page
   * before the last is read. A page the API refuses for its size (rows or bytes: a usage
   * commitment holds its batch's encrypted lines) is asked again with fewer rows, in the
   * proportion the API states, and the pages after it with as many.
   */
  async *pages<R>(field: string, selection: string, orderBy: string, where?: string): AsyncGenerator<R[]> {
    let after: string | null = null;
    let limit = this.pageSize;
    const filter = where ? `where: ${where}, ` : "";
    for (;;) {
      let data: Record<string, { items: R[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>;
      try {
        data = await this.query(
          `query ($after: String, $limit: Int) { ${field}(${filter}orderBy: "${orderBy}", orderDirection: "asc", limit: $limit, after: $after) { items { ${selection} } pageInfo { hasNextPage endCursor } } }`,
          { after, limit },
        );
      } catch (e) {
        if (!(e instanceof GraphqlLimitError) || (e.limit !== "maxBytes" && e.limit !== "maxRows") || limit === 1) throw e;
        limit = Math.max(1, Math.min(limit - 1, Math.floor((limit * e.max) / e.requested)));
        continue;
      }
      const page = data[field];
      if (!page || !Array.isArray(page.items)) throw new ApiResponseError(this.graphqlUrl, `no ${field} page in the answer`);
      yield page.items;
      if (!page.pageInfo?.hasNextPage || !page.pageInfo.endCursor) return;
      after = page.pageInfo.endCursor;
    }
  }

  /** The block each indexed chain has reached (-1 before its first), from the indexer's `/status`. */
  async indexedBlocks(): Promise<Record<string, number>> {
    const heads = await this.indexedHeads();
    return Object.fromEntries(Object.entries(heads).map(([name, h]) => [name, h.number]));
  }

  /** The block each indexed chain has reached, with its timestamp (Unix seconds); -1 and 0 before its first. */
  async indexedHeads(): Promise<Record<string, { number: number; timestamp: number }>> {
    const answer = await sendRequest(this.statusUrl, {}, this.options);
    if (!answer.ok) throw httpErrorOf(answer);
    const status = jsonOf<Record<string, { block: { number: number; timestamp?: number } | null }>>(answer);
    return Object.fromEntries(
      Object.entries(status).map(([name, s]) => [name, { number: s.block?.number ?? -1, timestamp: s.block?.timestamp ?? 0 }]),
    );
  }

  /**
   * Waits until every indexed chain has reached `blockNumber`. After a reorg to a shorter chain
   * the indexer may already report a higher block from the dropped branch: wait on the data then.
   */
  async waitForBlock(blockNumber: bigint | number, timeoutMs = 60_000): Promise<void> {
    const target = Number(blockNumber);
    const deadline = Date.now() + timeoutMs;
    let last: Record<string, number> = {};
    for (;;) {
      try {
        last = await this.indexedBlocks();
        const values = Object.values(last);
        if (values.length > 0 && values.every((n) => n >= target)) return;
      } catch {
        // not answering yet
      }
      if (Date.now() > deadline) {
        throw new Error(`indexer at ${this.baseUrl} did not reach block ${target} in ${timeoutMs} ms (at ${JSON.stringify(last)})`);
      }
      await sleep(50);
    }
  }

  /** A route of `API_PATHS` with its parameters filled in, relative to the base URL. */
  private route(path: string, params: Record<string, string> = {}): string {
    return path.slice(1).replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => encodeURIComponent(params[name]!));
  }

  /** `GET /accounts/:address/earnings[?tokenId=]`; 404 is UnknownAccountError. */
  async earnings(account: Address, options: { tokenId?: bigint } = {}): Promise<EarningsResponse> {
    const address = getAddress(account);
    const url = this.url(this.route(API_PATHS.accountEarnings, { address }), { tokenId: options.tokenId?.toString() });
    try {
      return await requestParsed(earningsResponse, url, {}, this.options);
    } catch (e) {
      if (e instanceof ApiHttpError && e.status === 404) throw new UnknownAccountError(address, "known to the API");
      throw e;
    }
  }

  /** `GET /providers/:providerId/earnings[?tokenId=]`: the earnings of a provider's current payout account. */
  async providerEarnings(providerId: Hex, options: { tokenId?: bigint } = {}): Promise<EarningsResponse> {
    const url = this.url(this.route(API_PATHS.providerEarnings, { providerId }), { tokenId: options.tokenId?.toString() });
    return requestParsed(earningsResponse, url, {}, this.options);
  }

  /** `GET /audit/totals[?period=day|month]`. */
  async auditTotals(options: { period?: PeriodUnit } = {}): Promise<AuditTotalsResponse> {
    return requestParsed(auditTotalsResponse, this.url(this.route(API_PATHS.auditTotals), { period: options.period }), {}, this.options);
  }

  /** `POST /usage/submit`: relays a server-signed batch. */
  async submitUsage(request: SubmitRequestWire): Promise<SubmitResult> {
    return requestParsed(submitResult, this.url(this.route(API_PATHS.usageSubmit)), { method: "POST", json: request }, this.options);
  }

  /** `POST /providers/register`: relays the registry owner's signed registration. */
  async registerProvider(request: RegisterRequestWire): Promise<ProviderWriteResult> {
    const url = this.url(this.route(API_PATHS.providersRegister));
    return requestParsed(providerWriteResult, url, { method: "POST", json: request }, this.options);
  }

  /** `POST /providers/update`: relays the registry owner's signed change. */
  async updateProvider(request: UpdateRequestWire): Promise<ProviderWriteResult> {
    const url = this.url(this.route(API_PATHS.providersUpdate));
    return requestParsed(providerWriteResult, url, { method: "POST", json: request }, this.options);
  }

  /** The account's registered eERC public key; UnknownAccountError when the indexer has no registration. */
  async registeredKey(account: Address): Promise<Point> {
    const address = getAddress(account);
    const data = await this.query<{ account: { publicKey: string[] } | null }>(
      `query ($a: String!) { account(address: $a) { publicKey } }`,
      {
        a: address.toLowerCase(),
      },
    );
    if (!data.account) throw new UnknownAccountError(address, "known to the indexer");
    const [x, y] = data.account.publicKey.map((v) => BigInt(v));
    return [x!, y!];
  }

  async providers(): Promise<ProviderRef[]> {
    type Row = { providerId: Hex; namespace: string; payoutAccount: Address; active: boolean };
    const rows = await this.all<Row>("providers", "providerId namespace payoutAccount active", "providerId");
    return rows.map((r) => ({
      providerId: r.providerId.toLowerCase() as Hex,
      namespace: r.namespace,
      payoutAccount: getAddress(r.payoutAccount),
      active: r.active,
    }));
  }

  async usageBatches(): Promise<CommittedBatch[]> {
    const batches: CommittedBatch[] = [];
    for await (const page of this.usageBatchPages()) batches.push(...page);
    return batches.sort(byChainPosition);
  }

  /** The committed usage batches one GraphQL page at a time, in block order (`usageBatches` sorts them all by chain position). */
  async *usageBatchPages(): AsyncGenerator<CommittedBatch[]> {
    type Row = UsageCommitmentRow;
    const pages = this.pages<Row>(
      "usageCommitments",
      "server batchId periodStart periodEnd merkleRoot encryptedLines blockNumber logIndex txHash",
      "blockNumber",
    );
    for await (const rows of pages) {
      yield rows
        .map((r) => ({
          server: getAddress(r.server),
          batchId: r.batchId,
          periodStart: BigInt(r.periodStart),
          periodEnd: BigInt(r.periodEnd),
          merkleRoot: r.merkleRoot,
          encryptedLines: r.encryptedLines,
          blockNumber: BigInt(r.blockNumber),
          logIndex: r.logIndex,
          txHash: r.txHash,
        }))
        .sort(byChainPosition);
    }
  }
}
