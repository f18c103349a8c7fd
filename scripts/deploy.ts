import { privateKeyToAccount } from "viem/accounts";
import { deploySettings } from "../src/config/deploy.js";
import { deploy } from "../src/deployment/deploy.js";
import { run } from "./run.js";

// npm run deploy: deploy (or attach to an eERC and deploy next to it) and write the manifest.
run(async () => {
  const settings = deploySettings(process.env);
  const manifest = await deploy({
    rpcUrl: settings.rpcUrl,
    network: settings.network,
    deployer: privateKeyToAccount(settings.deployerKey),
    auditor: privateKeyToAccount(settings.auditorKey),
    owner: settings.owner,
    operator: settings.operator,
    token: settings.token,
    revenuePool: settings.revenuePool,
    eerc: settings.eerc,
    allowDevelopmentPtau: settings.allowDevelopmentPtau,
    settlement: settings.settlement,
    log: (l) => console.log(l),
  });
  console.log(`manifest written to ${manifest.manifestPath}`);
  const pending = manifest.pendingOwnership;
  if (pending) {
    console.log(
      `\nTO DO: ownership is not transferred yet. The owner ${pending.owner} must call acceptOwnership() on each of:\n` +
        `${pending.contracts.map((c) => `  ${c.name} ${c.address}\n`).join("")}` +
        "Until it does, the deployer owns them (and can still name another pending owner with transferOwnership).",
    );
  }
});
