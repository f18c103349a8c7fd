import { privateKeyToAccount } from "viem/accounts";
import { ConfigError, env, readEnv } from "../src/config/parse.js";
import { deriveKeyFromWallet } from "../src/eerc/keys.js";
import { run } from "./run.js";

/**
 * Prints the eERC private key of the wallet in PRIVATE_KEY, derived from its signature as the
 * eERC SDK does: the key that reads (decrypts) and cannot sign a transaction. It is what the API
 * needs as OPERATOR_EERC_KEY, and what `npm run cli -- … --eerc-key-file` takes. It is the
 * wallet owner's secret: print it only where nobody else reads.
 */
async function main(): Promise<void> {
  const { PRIVATE_KEY } = readEnv({ PRIVATE_KEY: env.privateKey() }, process.env);
  if (!PRIVATE_KEY) throw new ConfigError("PRIVATE_KEY", "PRIVATE_KEY must be set to the wallet's private key");
  const sk = await deriveKeyFromWallet(privateKeyToAccount(PRIVATE_KEY));
  console.log(`0x${sk.toString(16).padStart(64, "0")}`);
}

run(main);
