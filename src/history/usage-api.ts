import { type Address, getAddress, type Hex } from "viem";
import type { Point } from "../eerc/curve.js";
import { ApiHttpError, ApiResponseError, ApiUnreachableError, networkFailureReason, UnknownAccountError } from "./errors.js";
import type { CommittedBatch, ProviderRef } from "./usage.js";

/**
 * The indexer's GraphQL (`/graphql`) as a source of usage batches and provider registrations: the
 * `usage_commitment` and `provider` tables, and the account's registered key from `account`.
 */
export class UsageGraphqlClient {
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly pageSize: number;

  constructor(baseUrl: string, options: { timeoutMs?: number; fetch?: typeof globalThis.fetch; pageSize?: number } = {}) {
    const base = new URL(baseUrl);
    this.url = new URL("graphql", base.href.endsWith("/") ? base.href : `${base.href}/`).href;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.pageSize = options.pageSize ?? 200;
  }

  async query<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(this.url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      throw new ApiUnreachableError(this.url, networkFailureReason(e, this.timeoutMs), { cause: e });
    }
    let body: { data?: T; errors?: { message?: string }[] };
    try {
      body = JSON.parse(text);
    } catch {
      if (!res.ok) throw new ApiHttpError(this.url, res.status, text.trim().slice(0, 200) || "(empty body)");
      throw new ApiResponseError(this.url, `body is not JSON (${text.trim().slice(0, 80) || "empty"})`);
    }
    if (body.errors?.length) {
      throw new ApiResponseError(this.url, `GraphQL error: ${body.errors.map((e) => e.message ?? "?").join("; ")}`);
    }
    if (!res.ok || !body.data) throw new ApiHttpError(this.url, res.status, text.trim().slice(0, 200));
    return body.data;
  }

  /** Every row of a table (matching `where`, a GraphQL filter object literal) through cursor pages, in `orderBy` order. */
  async all<R>(field: string, selection: string, orderBy: string, where?: string): Promise<R[]> {
    const rows: R[] = [];
    let after: string | null = null;
    for (;;) {
      const data: Record<string, { items: R[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }> = await this.query(
        `query ($after: String, $limit: Int) { ${field}(${where ? `where: ${where}, ` : ""}orderBy: "${orderBy}", orderDirection: "asc", limit: $limit, after: $after) { items { ${selection} } pageInfo { hasNextPage endCursor } } }`,
        { after, limit: this.pageSize },
      );
      const page = data[field];
      if (!page || !Array.isArray(page.items)) throw new ApiResponseError(this.url, `no ${field} page in the answer`);
      rows.push(...page.items);
      if (!page.pageInfo?.hasNextPage || !page.pageInfo.endCursor) return rows;
      after = page.pageInfo.endCursor;
    }
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
      .sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
  }
}
