import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { type Address, erc20Abi, type Hex, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/chain/anvil.js";
import { ANVIL_KEYS, LOCAL_ROLES } from "../src/chain/local.js";
import { usdcTokenId } from "../src/deployment/manifest.js";
import { IndexerClient } from "../src/indexer-client/client.js";
import { callRecords, commitRecords, eercAccount, fundPayer, newFundedAccount, payPoolFee } from "../src/local/marketplace.js";
import { AgentClient } from "../src/payout/client.js";
import { PLAN_FAULT_STEPS } from "../src/payout/coordination.js";
import { readSettlementFacts } from "../src/payout/facts.js";
import { FAULT_STEPS } from "../src/payout/pipeline.js";
import { distributeTypedData } from "../src/payout/server.js";
import { type PayoutWorld, payoutWorld, spawnAgent } from "./payout-fixtures.js";

// Two payout agents as real processes, each with a payer of its own, sharing the cycles through
// one Postgres database. Each is killed with SIGKILL in turn at each step of planning and of its
// first transfer while the other runs: every provider ends up paid exactly what it earned, once
// per cycle, and both agents pay.

const ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
const database = `bs_agents_${randomBytes(6).toString("hex")}`;
const databaseUrl = `postgresql://postgres@127.0.0.1:5432/${database}`;

type Name = "a" | "b";
let w: PayoutWorld;
const payers = {} as Record<Name, { key: Hex; address: Address }>;
/** USDC's eERC token id, assigned by the payers' first deposit. */
let tokenId: bigint;
let sequence = 0;
let rounds = 0;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const rpc = (method: string, params: unknown[] = []) => w.chain.publicClient.request({ method: method as never, params: params as never });

/** Agent `name` with its own payer, the shared database and one provider claimed at a time: one cycle (`--once`), or served (`args` []). */
const startAgent = (name: Name, env: Record<string, string> = {}, args = ["--once"]) =>
  spawnAgent(w, args, {
    PLATFORM_FEE_BPS: "1000",
    AGENT_DATABASE_URL: databaseUrl,
    AGENT_ID: name,
    AGENT_CLAIM_SIZE: "1",
    PAYER_PRIVATE_KEYS: payers[name].key,
    PAYOUT_FUND_FROM_POOL: "0",
    PAYOUT_EVERY_PROVIDER: "0",
    PAYOUT_REQUESTS_FILE: join(w.dir, `payout-requests-${name}.jsonl`),
    PAYOUT_CHECKPOINT_FILE: join(w.dir, `payout-checkpoint-${name}.bin`),
    ...env,
  });

/** The agents' output so far, for a failure message: what each process logged is what explains a wait that never ended. */
const logs: { label: string; output: () => string }[] = [];
const logTails = () => logs.map((l) => `--- ${l.label} ---\n${l.output().slice(-6000)}`).join("\n");

async function untilAsync(what: string, test: () => Promise<boolean>, ms = 150_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logTails()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const until = (what: string, test: () => boolean, ms?: number) => untilAsync(what, async () => test(), ms);

/** How a started agent ended; one still running after `ms` is killed and the wait fails with its output. */
async function ended(agent: ReturnType<typeof startAgent>, what: string, ms = 150_000) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      agent.child.kill("SIGKILL");
      reject(new Error(`timed out waiting for ${what} to end\n${logTails()}`));
    }, ms);
  });
  try {
    return await Promise.race([agent.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One round of usage: weather 900 and news 225 micro-USDC net (news: one call past its 5 free). */
async function commitRound(): Promise<void> {
  const now = Date.now();
  const records = [...callRecords("weather", 1, { at: now, priceMicro: 1000n }), ...callRecords("news", rounds === 0 ? 6 : 1, { at: now })];
  rounds += 1;
  await commitRecords(w.chain, w.manifest, w.server, w.operator.address, ++sequence, records);
}

/** Every payout both agents' payers made, once the indexer has the head. */
async function payouts() {
  const indexer = new IndexerClient(w.indexer.url);
  await indexer.waitForBlock(await w.chain.publicClient.getBlockNumber({ cacheTime: 0 }));
  return (await readSettlementFacts(indexer, [payers.a.address, payers.b.address])).payouts;
}

const balance = (ns: string) => w.payoutAccounts.get(ns)!.client.balance(tokenId);
/** Whether weather and news hold what they earned over all rounds. */
const paidInFull = async () => (await balance("weather")) === 900n * BigInt(rounds) && (await balance("news")) === 225n * BigInt(rounds);

/** Each provider is paid what it earned over all rounds, in one transfer per cycle at most. */
async function expectPaidExactlyOnce(): Promise<void> {
  const perCycle = new Map<string, number>();
  for (const p of await payouts()) perCycle.set(`${p.cycle}:${p.providerId}`, (perCycle.get(`${p.cycle}:${p.providerId}`) ?? 0) + 1);
  expect([...perCycle.values()].every((n) => n === 1)).toBe(true);
  expect({ weather: await balance("weather"), news: await balance("news") }).toEqual({
    weather: 900n * BigInt(rounds),
    news: 225n * BigInt(rounds),
  });
}

const other = (name: Name): Name => (name === "a" ? "b" : "a");
const usdcOf = (account: Address) =>
  w.chain.publicClient.readContract({ address: w.manifest.contracts.token, abi: erc20Abi, functionName: "balanceOf", args: [account] });

beforeAll(async () => {
  await admin(`CREATE DATABASE ${database}`);
  w = await payoutWorld({ fundMicro: 0n });
  for (const name of ["a", "b"] as const) {
    const account = await newFundedAccount(w.chain);
    const client = await eercAccount(w.chain, w.manifest, w.prover, account);
    await fundPayer(w.chain, w.manifest, client, account, 1_000_000n);
    payers[name] = { key: account.privateKey, address: account.address };
  }
  tokenId = await usdcTokenId(w.chain, w.manifest);
});

afterAll(async () => {
  await rpc("evm_setAutomine", [true]).catch(() => {});
  await w?.close();
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
});

describe("two payout agents sharing the cycles through Postgres", () => {
  it("started together: one plans, both pay, each provider once; the pool's fees are split over both agents' payers", async () => {
    await commitRound();
    await payPoolFee(w.chain, w.manifest, w.user, 1000n);
    const funded = { PAYOUT_FUND_FROM_POOL: "1", PAYOUT_EVERY_PROVIDER: "1" };
    const [a, b] = await Promise.all([startAgent("a", funded).done, startAgent("b", funded).done]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    expect(`${a.output}${b.output}`.match(/planned cycle 1 /g)).toHaveLength(1);

    await expectPaidExactlyOnce();
    // Every active provider is paid in cycle 1 (zero where nothing is owed), by both agents' payers.
    const cycle1 = (await payouts()).filter((p) => p.cycle === 1);
    expect(cycle1).toHaveLength(5);
    expect(new Set(cycle1.map((p) => p.from))).toEqual(new Set([payers.a.address, payers.b.address]));
    // The planner sent each payer half the pool, and each agent deposited its own.
    expect(await usdcOf(w.manifest.revenuePool!)).toBe(0n);
    expect([await usdcOf(payers.a.address), await usdcOf(payers.b.address)]).toEqual([0n, 0n]);
  });

  for (const victim of ["a", "b"] as const) {
    describe(`agent ${victim} killed while agent ${other(victim)} serves`, () => {
      // The other agent runs as a service: it joins the cycle the victim plans as soon as it is
      // recorded (NOTIFY), and takes the victim's claims over once its session ends.
      let survivor: ReturnType<typeof startAgent>;
      let client: AgentClient;
      beforeAll(async () => {
        const port = await freePort();
        survivor = startAgent(other(victim), { PAYOUT_PORT: String(port) }, []);
        logs.push({ label: `agent ${other(victim)} (serving)`, output: survivor.output });
        client = new AgentClient(`http://127.0.0.1:${port}`);
        await until("the survivor to serve", () => /listening on/.test(survivor.output()));
      });
      afterAll(async () => {
        survivor?.child.kill("SIGTERM");
        expect((await survivor.done).code).toBe(0);
      });

      for (const step of [...PLAN_FAULT_STEPS, ...FAULT_STEPS]) {
        it(`at ${step} of its ${step.endsWith("_plan") ? "plan" : "first transfer"}: each provider paid once`, async () => {
          await commitRound();
          const from = survivor.output().length;
          if (step === "after_send") {
            await rpc("evm_setAutomine", [false]);
            // The survivor is paused until the victim is dead, so that it cannot claim a provider
            // of its own in the victim's cycle first: its transfer would wait in the mempool too.
            survivor.child.kill("SIGSTOP");
          }
          try {
            // With the transfer left in the mempool (after_send), the victim claims both providers:
            // the survivor must wait for that transaction before reading what was paid.
            const killed = startAgent(victim, { PAYOUT_FAULT: `${step}@1`, ...(step === "after_send" && { AGENT_CLAIM_SIZE: "2" }) });
            logs.splice(0, logs.length, logs.find((l) => l.output === survivor.output)!, {
              label: `agent ${victim} (killed at ${step})`,
              output: killed.output,
            });
            const dead = await ended(killed, `agent ${victim} (killed at ${step})`);
            survivor.child.kill("SIGCONT");
            expect(dead.signal, dead.output).toBe("SIGKILL");
            // No plan was recorded, so nothing woke the survivor: the operator asks it to run.
            if (step === "before_plan") await distribute(client);
            if (step === "after_send") {
              const { address } = payers[victim];
              const latest = await w.chain.publicClient.getTransactionCount({ address, blockTag: "latest" });
              const pending = await w.chain.publicClient.getTransactionCount({ address, blockTag: "pending" });
              expect(pending).toBe(latest + 1);
              await until("the survivor to wait for the pending transfer", () =>
                /waiting for 1 pending transaction/.test(survivor.output().slice(from)),
              );
              await rpc("evm_mine");
              await rpc("evm_setAutomine", [true]);
            }
          } finally {
            survivor.child.kill("SIGCONT");
            await rpc("evm_setAutomine", [true]);
          }
          await untilAsync("the survivor to pay the cycle", async () => (await paidInFull()) && (await client.status()).state === "idle");
          expect(survivor.output().slice(from)).not.toMatch(/cycle run \(.*\) failed/);
          await expectPaidExactlyOnce();
          const last = Math.max(...(await payouts()).map((p) => p.cycle));
          expect((await payouts()).filter((p) => p.cycle === last)).toHaveLength(2);
        }, 360_000);
      }
    });
  }

  it("both agents paid providers", async () => {
    const from = new Set((await payouts()).map((p) => p.from));
    expect(from).toEqual(new Set([payers.a.address, payers.b.address]));
  });
});

/** A distribute request to `agent`, signed by the operator (anvil's account #0). */
async function distribute(agent: AgentClient): Promise<void> {
  const { chainId, agentId } = await agent.chain();
  const requestId = toHex(randomBytes(32));
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 300);
  const signature = await privateKeyToAccount(ANVIL_KEYS[LOCAL_ROLES.operator]).signTypedData(
    distributeTypedData(requestId, deadline, chainId, agentId),
  );
  await agent.distribute({ requestId, deadline: deadline.toString(), signature });
}
