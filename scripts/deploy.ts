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
    token: settings.token,
    revenuePool: settings.revenuePool,
    eerc: settings.eerc,
    allowDevelopmentPtau: settings.allowDevelopmentPtau,
    settlement: settings.settlement,
    log: (l) => console.log(l),
  });
  console.log(`manifest written to ${manifest.manifestPath}`);
});
