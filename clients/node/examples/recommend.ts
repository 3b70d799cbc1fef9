// Recommend for one shopper, print the items with their copy, then report that the first one was
// shown and clicked — the storefront's whole integration in one file.
//
//   COPYLOOP_FUSION_ADDR=127.0.0.1:50054 COPYLOOP_API_KEY=demo-key \
//     node dist/examples/recommend.js [user-id] [n]
import { CopyloopClient, CopyloopError } from "../src/index";
import { Channel, Device } from "../src/gen/copyloop/v1/common";
import { CopySource, FeedbackType } from "../src/gen/copyloop/v1/fusion";

async function main(): Promise<number> {
  const userId = process.argv[2] ?? "shopper-00001";
  const n = Number(process.argv[3] ?? 5);
  const client = CopyloopClient.fromEnv();
  try {
    const reply = await client.fusion.recommend({
      userId,
      n,
      context: { channel: Channel.CHANNEL_PUSH, locale: "en-US", device: Device.DEVICE_MOBILE, placement: "home_feed" },
    });
    console.log(`request ${reply.requestId} for ${userId}${reply.coldStart ? " (cold start)" : ""}`);
    for (const r of reply.recommendations) {
      const source = CopySource[r.copy?.source ?? CopySource.COPY_SOURCE_UNSPECIFIED];
      console.log(
        `${r.rank}. ${r.itemId} ${r.title} ${r.price.toFixed(2)} ${r.currencyCode}` +
          ` pCTR=${r.pCtr.toFixed(4)} pCVR=${r.pCvr.toFixed(4)} [${source}]\n   "${r.copy?.text ?? ""}"` +
          (r.reasons.length ? `\n   because: ${r.reasons.join("; ")}` : ""),
      );
    }
    for (const d of reply.degradations) console.log(`degraded: ${d.component} -> ${d.fallback} (${d.reason})`);
    const first = reply.recommendations[0];
    if (!first) return 0;

    const outcome = await client.fusion.reportOutcome({
      events: [
        { eventId: `${first.impressionId}:impression`, requestId: reply.requestId, impressionId: first.impressionId, type: FeedbackType.FEEDBACK_TYPE_IMPRESSION },
        { eventId: `${first.impressionId}:click`, requestId: reply.requestId, impressionId: first.impressionId, type: FeedbackType.FEEDBACK_TYPE_CLICK },
      ],
    });
    console.log(`outcomes for ${first.itemId}: accepted=${outcome.accepted} duplicate=${outcome.duplicate} rejected=${outcome.rejected}`);
    return outcome.rejected ? 1 : 0;
  } catch (error) {
    if (!(error instanceof CopyloopError)) throw error;
    console.error(error.message);
    for (const v of error.fieldViolations) console.error(`  ${v.field}: ${v.description}`);
    return 1;
  } finally {
    client.close();
  }
}

main().then((code) => {
  process.exitCode = code;
});
