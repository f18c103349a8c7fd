import { html, nothing, type TemplateResult } from "lit-html";
import { InvalidUsdcAmountError, parseUsdc } from "../../src/money/usdc.js";
import { usdc } from "./ui.js";
import type { Session } from "./wallet.js";
import type { WithdrawStep } from "./withdraw.js";

/**
 * The provider view's "Withdraw to your wallet" panel. It stands on the chain alone (RPC URL and
 * `deployment.json`), so it is there even when the API is not. The amount is parsed here (micro-
 * USDC, no floats); the withdraw itself (`withdraw.ts`, and the prover it loads) loads on first use.
 */

type Message = { kind: "busy" | "done" | "error"; text: string; field?: "amount" | null };

type Panel = {
  session: Session;
  rpcUrl: string;
  balance: { kind: "loading" } | { kind: "ok"; micro: bigint } | { kind: "error"; text: string };
  message: Message | null;
  amount: string;
};

let panel: Panel | null = null;

/** `?deployment=` (the deployment's public addresses), else `deployment.json` next to the page. */
const deploymentUrl = () => new URL(new URLSearchParams(location.search).get("deployment") ?? "deployment.json", document.baseURI).href;

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

const STEPS: Record<WithdrawStep, string> = {
  reading: "reading and decrypting your balance from the chain",
  proving: "making the withdraw proof in this page (the first time also loads the prover and the circuit)",
  checking: "having the eERC check the call",
  signing: "waiting for the wallet to send the transaction",
  mining: "waiting for the transaction to be mined",
};

async function readBalance(p: Panel, update: () => void): Promise<void> {
  p.balance = { kind: "loading" };
  update();
  try {
    const { readWithdrawable } = await import("./withdraw.js");
    const w = await readWithdrawable({ deploymentUrl: deploymentUrl(), rpcUrl: p.rpcUrl, account: p.session.address, sk: p.session.sk });
    p.balance = { kind: "ok", micro: w.balanceMicro };
  } catch (e) {
    p.balance = { kind: "error", text: errorText(e) };
  }
  update();
}

/** The amount typed, in micro-USDC; a message naming the field otherwise. Nothing is read or sent for a bad amount. */
export function parseAmount(text: string): bigint | Message {
  let micro: bigint;
  try {
    micro = parseUsdc(text);
  } catch (e) {
    if (!(e instanceof InvalidUsdcAmountError)) throw e;
    const shown = text.trim() === "" ? "nothing" : `"${text.trim()}"`;
    return { kind: "error", field: "amount", text: `Amount: ${shown} is not a USDC amount; give one with at most 6 decimals, e.g. 0.5` };
  }
  if (micro <= 0n) return { kind: "error", field: "amount", text: `Amount: enter more than 0 USDC (got ${text.trim()})` };
  return micro;
}

async function submit(p: Panel, event: Event, update: () => void): Promise<void> {
  event.preventDefault();
  if (p.message?.kind === "busy") return;
  p.amount = String(new FormData(event.target as HTMLFormElement).get("amount") ?? "");
  const amount = parseAmount(p.amount);
  const set = (m: Message) => {
    if (panel !== p) return;
    p.message = m;
    update();
  };
  if (typeof amount !== "bigint") return set(amount);
  try {
    set({ kind: "busy", text: STEPS.reading });
    const { withdraw, WithdrawError } = await import("./withdraw.js");
    try {
      const r = await withdraw({
        deploymentUrl: deploymentUrl(),
        rpcUrl: p.rpcUrl,
        account: p.session.address,
        sk: p.session.sk,
        source: p.session.source,
        amountMicro: amount,
        onStep: (step) => set({ kind: "busy", text: STEPS[step] }),
      });
      p.balance = { kind: "ok", micro: r.afterMicro };
      p.amount = "";
      set({
        kind: "done",
        text:
          `Withdrew ${usdc(r.amountMicro)} to ${p.session.address} (tx ${r.txHash}, block ${r.blockNumber}); ` +
          `encrypted balance ${usdc(r.beforeMicro)} → ${usdc(r.afterMicro)}; proof made in this page in ${(r.provingMs / 1000).toFixed(1)} s`,
      });
    } catch (e) {
      set({ kind: "error", text: errorText(e), field: e instanceof WithdrawError ? e.field : null });
      // A refusal may follow a change on chain (or a different chain): show the balance as it is now.
      if (!(e instanceof WithdrawError && e.field === "amount")) void readBalance(p, update);
    }
  } catch (e) {
    set({ kind: "error", text: errorText(e) });
  }
}

export function withdrawPanel(args: { session: Session; rpcUrl: string; update: () => void }): TemplateResult {
  if (!panel || panel.session !== args.session || panel.rpcUrl !== args.rpcUrl) {
    panel = { session: args.session, rpcUrl: args.rpcUrl, balance: { kind: "loading" }, message: null, amount: "" };
    const p = panel;
    queueMicrotask(() => void readBalance(p, args.update));
  }
  const p = panel;
  const m = p.message;
  const busy = m?.kind === "busy";
  const balance =
    p.balance.kind === "ok"
      ? html`<strong data-testid="withdraw-balance">${usdc(p.balance.micro)}</strong>`
      : p.balance.kind === "loading"
        ? html`<span>reading…</span>`
        : html`<span class="bad" data-testid="withdraw-balance-error">${p.balance.text}</span>`;
  return html`
    <section class="panel withdraw" data-testid="withdraw">
      <div class="section-head"><h2>Withdraw to your wallet</h2></div>
      <p class="note">
        From your encrypted balance to ${p.session.address}, as plain USDC. Read from the chain and proved in this page: only the RPC URL is
        used, not the API.
      </p>
      <p>Encrypted balance on chain: ${balance}</p>
      <form class="settings" novalidate @submit=${(e: Event) => submit(p, e, args.update)}>
        <label
          >Amount (USDC)
          <input
            name="amount"
            data-testid="withdraw-amount"
            inputmode="decimal"
            autocomplete="off"
            placeholder="0.5"
            aria-invalid=${m?.kind === "error" && m.field === "amount" ? "true" : "false"}
            .value=${p.amount}
            ?disabled=${busy}
          />
        </label>
        <button type="submit" data-testid="withdraw-submit" ?disabled=${busy}>Withdraw</button>
      </form>
      ${
        m
          ? html`<p
              data-testid="withdraw-message"
              role=${m.kind === "error" ? "alert" : "status"}
              class=${m.kind === "error" ? "bad" : m.kind === "done" ? "ok" : ""}
            >
              ${m.kind === "busy" ? `${m.text}…` : m.text}
            </p>`
          : nothing
      }
    </section>
  `;
}
