import { type Address, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { payoutViewConfig } from "../config/api.js";
import { checkLedgerOperator, checkRecordedSettlement } from "../config/operator.js";
import type { Point } from "../eerc/curve.js";
import { deriveNonce, deriveScalar } from "../eerc/derive.js";
import { deriveKeyFromWallet, publicKeyOf } from "../eerc/keys.js";
import { encryptPCT } from "../eerc/pct.js";
import { summarize } from "../errors.js";
import { IndexerClient } from "../indexer-client/client.js";
import type { CyclesField, PendingField } from "../indexer-client/schemas.js";
import { checkpointScope, fileCheckpointStore } from "../payout/checkpoint.js";
import { describeCheckpointEvent } from "../payout/indexed-ledger.js";
import { type LedgerSnapshot, PayoutLedgerView } from "../payout/ledger-view.js";
import { ledgerOperatorKey } from "../usage/keys.js";
import { IndexerCatchingUpError } from "./catch-up.js";
import { rpcClients } from "./relayer.js";
import { workerDecryptor } from "./workers.js";

const words = (pct: bigint[]) => pct.map((w) => w.toString());

/**
 * Randomness for a served PCT, derived from the operator key and what the PCT says: every API
 * process (an indexing one and its read replicas) answers the same question with the same
 * ciphertext, and nothing is learnt that the block number and recipient do not already say.
 */
function servedPCT(amount: bigint, pk: Point, sk: bigint, context: string): bigint[] {
  const what = `${context}|${amount}`;
  return encryptPCT(amount, pk, { random: deriveScalar(sk, what), nonce: deriveNonce(sk, what) }).pct;
}

/** How long a successful check of the operator's key holds before the ledger's operator is read again. */
const OPERATOR_CHECK_MS = 60_000;
/** How often the payout ledger is read in the background. */
const FOLLOW_MS = 1_000;

/**
 * The payout ledger as the query API shows it. The operator's key (from the environment) reads the
 * usage lines and the payout amounts; what leaves is encrypted: the pending amount to the account's own key,
 * cycle totals to the auditor's. The key must be the one the UsageLedger's operator registered:
 * checked at start (a mismatch is logged, naming the setting) and before reads, at most once a
 * minute; until it matches, no payout field is served.
 */
export function payoutFields(args: {
  env: Record<string, string | undefined>;
  chainId: number;
  rpcUrl: string;
  contracts: { encryptedERC: Address; providerRegistry: Address; usageLedger: Address; registrar: Address };
  graphqlFetch: typeof fetch;
  /** Throws until the indexer has caught up since it started (`catchUpGate`). */
  checkIndexed?: () => Promise<void>;
  /** Where the payout ledger read so far is kept across restarts (`apiCheckpointFile`); unset, a start reads from genesis. */
  checkpointFile?: string;
}) {
  const config = payoutViewConfig(args.env, args.chainId, (k) => privateKeyToAccount(k).address);
  if ("disabled" in config) {
    return {
      pending: async (): Promise<PendingField> => ({ pending: null, pendingUnavailable: config.disabled }),
      cycles: async (): Promise<CyclesField> => ({ cycles: null, cyclesUnavailable: config.disabled }),
      owedProviders: async (): Promise<number | null> => null,
    };
  }
  let sk: Promise<bigint> | undefined;
  const { operator } = config;
  const operatorSk = () =>
    (sk ??= "eercKey" in operator ? Promise.resolve(operator.eercKey) : deriveKeyFromWallet(privateKeyToAccount(operator.walletKey)));
  const variable = "eercKey" in operator ? "OPERATOR_EERC_KEY" : "OPERATOR_PRIVATE_KEY";
  const { publicClient } = rpcClients(args.chainId, args.rpcUrl);
  const ledger = { usageLedger: args.contracts.usageLedger, registrar: args.contracts.registrar };
  let checked: { at: number; done: Promise<void> } | null = null;
  const checkOperator = () => {
    if (!checked || Date.now() - checked.at > OPERATOR_CHECK_MS) {
      const done = (async () =>
        checkLedgerOperator(variable, publicKeyOf(await operatorSk()), {
          ledger: ledger.usageLedger,
          ...(await ledgerOperatorKey(publicClient, ledger)),
        }))();
      checked = { at: Date.now(), done };
      // A mismatch or an unreadable chain is checked again at the next read.
      done.catch(() => {
        if (checked?.done === done) checked = null;
      });
    }
    return checked.done;
  };
  checkOperator().catch((e: unknown) => console.error(`payout fields off: ${summarize(e).code}: ${summarize(e).message}`));
  const view = new PayoutLedgerView({
    indexer: new IndexerClient("http://indexer.internal/", { fetch: args.graphqlFetch }),
    // Ponder serves /status itself, next to this app, on the process's port.
    status: new IndexerClient(`http://127.0.0.1:${args.env.PORT || 42069}`),
    checkIndexed: args.checkIndexed,
    operatorSk,
    checkOperator,
    payers: config.payers,
    // PLATFORM_FEE_BPS or PRICING_PERIOD given to the API must match the chain's record, or no payout field is served.
    checkInForce: (inForce) => checkRecordedSettlement(config.asserted, inForce),
    // Off the thread that indexes and answers GraphQL, which the agent's reads wait on.
    decryptLines: workerDecryptor((reason) => console.warn(reason)),
    checkpoint:
      args.checkpointFile === undefined
        ? undefined
        : {
            store: fileCheckpointStore(args.checkpointFile),
            scope: checkpointScope(args.chainId, {
              encryptedERC: args.contracts.encryptedERC,
              providerRegistry: args.contracts.providerRegistry,
              usageLedger: args.contracts.usageLedger,
            }),
            onEvent: (e) => (e.kind === "saved" ? undefined : console.log(describeCheckpointEvent(e, args.checkpointFile!))),
          },
  });
  // The ledger is read every second whether asked or not, so that new usage is decrypted as it is
  // indexed and a request finds little left to read, and so that a snapshot taken while the rows
  // under the head were not all there is replaced; a failed read is reported by the next request.
  let following = false;
  setInterval(() => {
    if (following) return;
    following = true;
    view
      .follow()
      .catch(() => {})
      .finally(() => {
        following = false;
      });
  }, FOLLOW_MS).unref();
  // The payout fields are extras: if the ledger cannot be read, the core answer still goes out.
  const read = (): Promise<{ snapshot: LedgerSnapshot } | { unavailable: string }> =>
    view.snapshot().then(
      (snapshot) => ({ snapshot }),
      (e: unknown) => {
        // An indexer catching up after a restart is expected, and done in seconds.
        if (e instanceof IndexerCatchingUpError) return { unavailable: e.message };
        console.error(`payout ledger unavailable: ${summarize(e).message}`);
        return { unavailable: "the payout ledger could not be read; see the API's log" };
      },
    );
  return {
    /** How many providers are owed something not yet paid: a count for /metrics, never an amount. Null when unreadable. */
    async owedProviders(): Promise<number | null> {
      const r = await read();
      return "snapshot" in r ? r.snapshot.pendingByProvider.size : null;
    },
    async pending(account: Address, publicKey: Point): Promise<PendingField> {
      const r = await read();
      if (!("snapshot" in r)) return { pending: null, pendingUnavailable: r.unavailable };
      const s = r.snapshot;
      const amount = s.pendingByAccount.get(getAddress(account)) ?? 0n;
      const pct = servedPCT(amount, publicKey, await operatorSk(), `pending|${getAddress(account)}|${s.throughBlock}`);
      return { pending: { pct: words(pct), throughBlock: s.throughBlock.toString() } };
    },
    async cycles(auditorPk: Point | null): Promise<CyclesField> {
      if (!auditorPk) return { cycles: null, cyclesUnavailable: "no auditor is set" };
      const r = await read();
      if (!("snapshot" in r)) return { cycles: null, cyclesUnavailable: r.unavailable };
      const s = r.snapshot;
      const sk = await operatorSk();
      return {
        cycles: s.cycles.map((c) => ({
          cycle: c.cycle,
          throughBlock: c.throughBlock.toString(),
          transfers: c.transfers,
          totalPCT: words(servedPCT(c.totalMicro, auditorPk, sk, `cycle|${c.cycle}|${c.throughBlock}|${auditorPk.join(",")}`)),
        })),
      };
    },
  };
}
