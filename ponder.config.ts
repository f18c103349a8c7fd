import { createConfig } from "ponder";
import { EncryptedERCAbi } from "./abis/EncryptedERCAbi.js";
import { ProviderRegistryAbi } from "./abis/ProviderRegistryAbi.js";
import { RegistrarAbi } from "./abis/RegistrarAbi.js";
import { TestUSDCAbi } from "./abis/TestUSDCAbi.js";
import { UsageLedgerAbi } from "./abis/UsageLedgerAbi.js";
import { indexerSettings, ponderRpc } from "./src/config/indexer.js";
import { seedPgliteDirectory } from "./src/indexer/pglite.js";

// The chain, contracts and database come from the deployment manifest, or from EERC_ADDRESS,
// REGISTRAR_ADDRESS, PROVIDER_REGISTRY_ADDRESS, USAGE_LEDGER_ADDRESS, USDC_ADDRESS,
// REVENUE_POOL_ADDRESS and START_BLOCK for a
// deployment made elsewhere (the audited eERC on Fuji with our usage contracts next to it).
const settings = indexerSettings();
// A fresh PGlite directory starts from a copy of an empty cluster rather than from initdb.
if (settings.database.kind === "pglite") await seedPgliteDirectory(settings.database.directory);

export default createConfig({
  ordering: "omnichain",
  database:
    settings.database.kind === "postgres"
      ? { kind: "postgres", connectionString: settings.database.connectionString }
      : { kind: "pglite", directory: settings.database.directory },
  chains: {
    [settings.chainName]: {
      id: settings.chainId,
      rpc: ponderRpc(settings),
      pollingInterval: settings.pollingInterval,
    },
  },
  contracts: {
    EncryptedERC: {
      chain: settings.chainName,
      abi: EncryptedERCAbi,
      address: settings.contracts.encryptedERC,
      startBlock: settings.startBlock,
    },
    Registrar: {
      chain: settings.chainName,
      abi: RegistrarAbi,
      address: settings.contracts.registrar,
      startBlock: settings.startBlock,
    },
    ProviderRegistry: {
      chain: settings.chainName,
      abi: ProviderRegistryAbi,
      address: settings.contracts.providerRegistry,
      startBlock: settings.startBlock,
    },
    UsageLedger: {
      chain: settings.chainName,
      abi: UsageLedgerAbi,
      address: settings.contracts.usageLedger,
      startBlock: settings.startBlock,
    },
    // Only the fee payments into the revenue pool, not every transfer of the token.
    RevenuePool: {
      chain: settings.chainName,
      abi: TestUSDCAbi,
      address: settings.contracts.token,
      startBlock: settings.startBlock,
      filter: { event: "Transfer", args: { to: settings.revenuePool } },
    },
  },
});
