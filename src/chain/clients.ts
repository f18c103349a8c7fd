import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { anvil, avalancheFuji } from "viem/chains";

const KNOWN_CHAINS: Record<number, Chain> = { [avalancheFuji.id]: avalancheFuji, [anvil.id]: anvil };

/** The viem chain for an RPC endpoint, by asking it for its chain id. */
export async function chainFor(rpcUrl: string): Promise<Chain> {
  const probe = createPublicClient({ transport: http(rpcUrl) });
  const id = await probe.getChainId();
  return (
    KNOWN_CHAINS[id] ??
    defineChain({
      id,
      name: `chain-${id}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpcUrl] } },
    })
  );
}

export type ChainClients = {
  chain: Chain;
  publicClient: PublicClient;
  walletFor(account: Account): WalletClient<Transport, Chain, Account>;
};

export async function connectChain(rpcUrl: string, options: { pollingInterval?: number } = {}): Promise<ChainClients> {
  const chain = await chainFor(rpcUrl);
  const transport = http(rpcUrl, { batch: false });
  const pollingInterval = options.pollingInterval ?? (chain.id === anvil.id ? 50 : 1_000);
  const publicClient = createPublicClient({ chain, transport, pollingInterval }) as PublicClient;
  return {
    chain,
    publicClient,
    walletFor: (account) => createWalletClient({ chain, transport, account, pollingInterval }),
  };
}
