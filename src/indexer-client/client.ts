import { type Address, getAddress, type Hex } from "viem";
import { byChainPosition } from "../chain/position.js";
import type { Point } from "../eerc/curve.js";
import { UnknownAccountError } from "../history/errors.js";
import { parseAuditTotals, parseEarnings } from "../history/parse.js";
import type { AuditTotalsResponse, EarningsResponse } from "../history/types.js";
import type { CommittedBatch, ProviderRef } from "../history/usage.js";
import { type HttpClientOptions, httpErrorOf, jsonOf, sendRequest } from "../http/client.js";
import { ApiResponseError } from "../http/errors.js";
import type { PeriodUnit } from "../usage/period.js";

export type IndexerClientOptions = HttpClientOptions & {
  /** Rows per GraphQL page; default 200. */
  pageSize?: number;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The one client of the indexer and its API: GraphQL (with cursor paging), `/status`, the REST
 * views (`/providers/:account/earnings`, `/audit/totals`), and the reads built on them.
 * `baseUrl` is where the indexer is mounted (`http://host:42069` or `https://host/api`).
 */
export class IndexerClient {
  readonly baseUrl: string;
  readonly graphqlUrl: string;
  private readonly statusUrl: string;
  private readonly options: HttpClientOptions;
  private readonly pageSize: number;

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
  }

  private url(path: string, query: Record<string, string | undefined> = {}): string {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url.href;
  }

  /** One GraphQL query; the server's errors become ApiResponseError, an error status ApiHttpError. */
  async query<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const answer = await sendRequest(this.graphqlUrl, { method: "POST", json: { query, variables } }, this.options);
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
    let after: string | null = null;
    const filter = where ? `where: ${where}, ` : "";
    for (;;) {
      const data: Record<string, { items: R[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }> = await this.query(
        `query ($after: String, $limit: Int) { ${field}(${filter}orderBy: "${orderBy}", orderDirection: "asc", limit: $limit, after: $after) { items { ${selection} } pageInfo { hasNextPage endCursor } } }`,
        { after, limit: this.pageSize },
      );
      const page = data[field];
      if (!page || !Array.isArray(page.items)) throw new ApiResponseError(this.graphqlUrl, `no ${field} page in the answer`);
      rows.push(...page.items);
      if (!page.pageInfo?.hasNextPage || !page.pageInfo.endCursor) return rows;
      after = page.pageInfo.endCursor;
    }
  }

  /** The block each indexed chain has reached (-1 before its first), from the indexer's `/status`. */
  async indexedBlocks(): Promise<Record<string, number>> {
    const answer = await sendRequest(this.statusUrl, {}, this.options);
    if (!answer.ok) throw httpErrorOf(answer);
    const status = jsonOf<Record<string, { block: { number: number } | null }>>(answer);
    return Object.fromEntries(Object.entries(status).map(([name, s]) => [name, s.block?.number ?? -1]));
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

  /** `GET /providers/:account/earnings[?tokenId=]`; 404 is UnknownAccountError. */
  async earnings(account: Address, options: { tokenId?: bigint } = {}): Promise<EarningsResponse> {
    const address = getAddress(account);
    const answer = await sendRequest(this.url(`providers/${address}/earnings`, { tokenId: options.tokenId?.toString() }), {}, this.options);
    if (answer.status === 404) {
      throw new UnknownAccountError(address, `the API has no such account (HTTP 404: ${httpErrorOf(answer).serverMessage})`);
    }
    if (!answer.ok) throw httpErrorOf(answer);
    return parseEarnings(jsonOf(answer), answer.url);
  }

  /** `GET /audit/totals[?period=day|month]`. */
  async auditTotals(options: { period?: PeriodUnit } = {}): Promise<AuditTotalsResponse> {
    const answer = await sendRequest(this.url("audit/totals", { period: options.period }), {}, this.options);
    if (!answer.ok) throw httpErrorOf(answer);
    return parseAuditTotals(jsonOf(answer), answer.url);
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
    if (!data.account) throw new UnknownAccountError(address, "the indexer has no registration for it");
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
    type Row = {
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
    const rows = await this.all<Row>(
      "usageCommitments",
      "server batchId periodStart periodEnd merkleRoot encryptedLines blockNumber logIndex txHash",
      "blockNumber",
    );
    return rows
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
