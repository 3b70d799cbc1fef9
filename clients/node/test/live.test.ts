// Against the LIVE platform: COPYLOOP_FUSION_ADDR, COPYLOOP_PROFILE_ADDR and COPYLOOP_API_KEY
// must name a running copyloop whose tenant has the demo catalog and shopper events loaded
// (tests/integration/clients_node/test_node_client.py sets this up). Without them the tests skip,
// unless COPYLOOP_REQUIRE_LIVE=1, when a missing platform is a failure.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { CopyloopClient, CopyloopError, GrpcStatus } from "../src/index";
import { Channel, Device } from "../src/gen/copyloop/v1/common";
import { CopySource, FeedbackType } from "../src/gen/copyloop/v1/fusion";

const env = process.env;
const missing = ["COPYLOOP_FUSION_ADDR", "COPYLOOP_PROFILE_ADDR", "COPYLOOP_API_KEY"].filter((name) => !env[name]);
if (missing.length && env.COPYLOOP_REQUIRE_LIVE === "1") {
  throw new Error(`COPYLOOP_REQUIRE_LIVE=1 but ${missing.join(", ")} unset`);
}
const skip = missing.length ? `no live platform: ${missing.join(", ")} unset` : false;

const context = { channel: Channel.CHANNEL_PUSH, locale: "en-US", device: Device.DEVICE_MOBILE };
const SHOPPER = env.COPYLOOP_TEST_USER ?? "shopper-00001";

async function rejection(promise: Promise<unknown>): Promise<CopyloopError> {
  const error = await promise.then(
    () => assert.fail("the call succeeded; an error was expected"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CopyloopError, `not a CopyloopError: ${String(error)}`);
  return error;
}

describe("copyloop over gRPC from Node", { skip }, () => {
  const client = skip ? undefined! : CopyloopClient.fromEnv();
  after(() => client?.close());

  test("Recommend returns ranked items, each with copy, scores and an impression id", async () => {
    const reply = await client.fusion.recommend({ userId: SHOPPER, context, n: 5 });
    assert.ok(reply.requestId, "a request id");
    assert.equal(reply.coldStart, false, "the demo shopper has history");
    assert.deepEqual(reply.recommendations.map((r) => r.rank), [1, 2, 3, 4, 5]);
    const values = reply.recommendations.map((r) => r.expectedValue);
    assert.equal(values[0], Math.max(...values), "the best item is ranked first");
    assert.equal(new Set(reply.recommendations.map((r) => r.itemId)).size, 5, "no item twice");
    for (const r of reply.recommendations) {
      assert.ok(r.itemId && r.title && r.impressionId, `item fields of ${JSON.stringify(r)}`);
      assert.ok(r.copy && r.copy.text.length > 0 && r.copy.creativeId, `copy of ${r.itemId}`);
      assert.ok(r.copy.text.length <= 90, "within the push channel's length limit");
      assert.ok(
        [CopySource.COPY_SOURCE_POOL, CopySource.COPY_SOURCE_GENERATED, CopySource.COPY_SOURCE_FALLBACK].includes(r.copy.source),
        `copy source ${r.copy.source}`,
      );
      assert.ok(r.pCtr > 0 && r.pCtr < 1, `pCtr ${r.pCtr}`);
      assert.ok(r.modelVersion, "a model version");
    }
  });

  test("ReportOutcome accepts an impression and a click once and counts the replay as duplicate", async () => {
    const reply = await client.fusion.recommend({ userId: SHOPPER, context, n: 2 });
    const shown = reply.recommendations[0];
    const events = [
      { eventId: `${shown.impressionId}-imp`, requestId: reply.requestId, impressionId: shown.impressionId, type: FeedbackType.FEEDBACK_TYPE_IMPRESSION },
      { eventId: `${shown.impressionId}-clk`, requestId: reply.requestId, impressionId: shown.impressionId, type: FeedbackType.FEEDBACK_TYPE_CLICK, eventTime: new Date() },
    ];
    const first = await client.fusion.reportOutcome({ events });
    assert.deepEqual([first.accepted, first.duplicate, first.rejected], [2, 0, 0], first.rejectionReasons.join("; "));
    const replay = await client.fusion.reportOutcome({ events });
    assert.deepEqual([replay.accepted, replay.duplicate, replay.rejected], [0, 2, 0]);
    const unknown = await client.fusion.reportOutcome({
      events: [{ eventId: "no-such-impression", requestId: reply.requestId, impressionId: "nope", type: FeedbackType.FEEDBACK_TYPE_CLICK }],
    });
    assert.equal(unknown.rejected, 1);
    assert.equal(unknown.rejectionReasons.length, 1);
  });

  test("GetUserProfile returns the materialised profile with int64s and Timestamps decoded", async () => {
    const { profile } = await client.profile.getUserProfile({ userId: SHOPPER });
    assert.ok(profile);
    assert.equal(profile.userId, SHOPPER);
    assert.equal(profile.coldStart, false);
    assert.equal(typeof profile.eventCount, "number");
    assert.ok(profile.eventCount > 0, `event count ${profile.eventCount}`);
    assert.ok(profile.categoryAffinities.length > 0);
    const shares = profile.categoryAffinities.map((a) => a.share);
    assert.ok(shares.every((s) => s >= 0 && s <= 1));
    assert.ok(profile.lastEventTime instanceof Date && !Number.isNaN(profile.lastEventTime.getTime()));
    assert.ok(profile.firstEventTime instanceof Date && profile.firstEventTime <= profile.lastEventTime);

    const { profile: stranger } = await client.profile.getUserProfile({ userId: "never-seen-by-node" });
    assert.equal(stranger?.coldStart, true);
    assert.equal(stranger?.eventCount, 0);
  });

  test("ReviewCopy passes true copy and names the false price with its span", async () => {
    const item = { itemId: "review-1", title: "Cosy Reading Lamp", brand: "Glowlab", price: 24.99, currencyCode: "USD" };
    const base = { item, channel: Channel.CHANNEL_PUSH, locale: "en-US" };
    const good = await client.generation.reviewCopy({ ...base, text: "Cosy Reading Lamp by Glowlab, now $24.99." });
    assert.equal(good.passed, true, good.findings.map((f) => f.message).join("; "));
    const text = "Cosy Reading Lamp, only $9.99!";
    const bad = await client.generation.reviewCopy({ ...base, text });
    assert.equal(bad.passed, false);
    const claim = bad.findings.find((f) => f.check === "claim");
    assert.ok(claim?.span, `a claim finding with a span: ${JSON.stringify(bad.findings)}`);
    assert.match(text.slice(claim.span.start, claim.span.end), /9\.99/);
  });

  test("a bad request fails with INVALID_ARGUMENT and its field violations decoded", async () => {
    const error = await rejection(
      client.fusion.recommend({ userId: "", context: { locale: "fr" }, n: 500, candidateItemIds: ["a", "a"] }),
    );
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.method, "/copyloop.v1.FusionService/Recommend");
    const fields = new Set(error.fieldViolations.map((v) => v.field));
    assert.deepEqual(fields, new Set(["user_id", "context.channel", "context.locale", "n", "candidate_item_ids"]));
    assert.ok(error.fieldViolations.every((v) => v.description.length > 0));
    assert.equal(error.details.reason, "INVALID_ARGUMENT");
    assert.equal(error.details.domain, "copyloop.v1");

    const outcome = await rejection(client.fusion.reportOutcome({ events: [{ eventId: "e" }] }));
    assert.deepEqual(
      new Set(outcome.fieldViolations.map((v) => v.field)),
      new Set(["events[0].impression_id", "events[0].request_id", "events[0].type"]),
    );
  });

  test("ListCreativePerformance pages creatives best lift first and checks its page size", async () => {
    const all = [];
    let pageToken = "";
    do {
      const page = await client.fusion.listCreativePerformance({ pageSize: 2, pageToken });
      all.push(...page.creatives);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const lifts = all.map((c) => c.lift);
    assert.deepEqual(lifts, [...lifts].sort((a, b) => b - a), "best lift first");
    for (const c of all) {
      assert.ok(c.creativeId && c.itemId, `ids of ${JSON.stringify(c)}`);
      assert.equal(typeof c.impressions, "number");
      assert.ok(c.impressions >= 1 && c.clicks >= 0 && c.expectedClicks > 0);
      assert.ok(c.liftInterval && c.liftInterval.lower < c.lift && c.lift < c.liftInterval.upper);
    }
    const onePage = await client.fusion.listCreativePerformance({ pageSize: 1000 });
    assert.deepEqual(onePage.creatives, all, "pages of 2 list what one page of 1000 does");

    const error = await rejection(client.fusion.listCreativePerformance({ pageSize: 1001, minImpressions: -1 }));
    assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
    assert.deepEqual(new Set(error.fieldViolations.map((v) => v.field)), new Set(["page_size", "min_impressions"]));
  });

  test("the API key is what authenticates: a wrong key is UNAUTHENTICATED", async () => {
    const stranger = new CopyloopClient({ fusionAddress: env.COPYLOOP_FUSION_ADDR, apiKey: "not-a-key" });
    try {
      const error = await rejection(stranger.fusion.recommend({ userId: SHOPPER, context, n: 1 }));
      assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
    } finally {
      stranger.close();
    }
  });

  test("every call carries a deadline: a 1 ms one expires", async () => {
    const error = await rejection(client.fusion.recommend({ userId: SHOPPER, context, n: 5 }, { deadlineMs: 1 }));
    assert.equal(error.code, GrpcStatus.DEADLINE_EXCEEDED);
  });

  test("a service without an address fails fast with a clear message", () => {
    const fusionOnly = new CopyloopClient({ fusionAddress: env.COPYLOOP_FUSION_ADDR, apiKey: "k" });
    try {
      assert.throws(() => fusionOnly.generation, /generationAddress/);
    } finally {
      fusionOnly.close();
    }
  });
});
