// Offline: the status-details decoding, on a trailer built the way a copyloop service builds it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { CopyloopError, STATUS_DETAILS_TRAILER, toCopyloopError } from "../src/errors";
import { BadRequest, ErrorInfo, RetryInfo } from "../src/gen/google/rpc/error_details";
import { Status } from "../src/gen/google/rpc/status";

function pack(typeName: string, value: Uint8Array): { typeUrl: string; value: Buffer } {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

function serviceError(code: status, message: string, trailers: Metadata): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${message}`), { code, details: message, metadata: trailers });
}

test("decodes BadRequest, ErrorInfo and RetryInfo from grpc-status-details-bin", () => {
  const badRequest = BadRequest.encode(BadRequest.fromPartial({
    fieldViolations: [
      { field: "user_id", description: "required" },
      { field: "events[0].type", description: "must be set" },
    ],
  })).finish();
  const info = ErrorInfo.encode(ErrorInfo.fromPartial({ reason: "INVALID_ARGUMENT", domain: "copyloop.v1" })).finish();
  const retry = RetryInfo.encode(RetryInfo.fromPartial({ retryDelay: { seconds: 1, nanos: 500_000_000 } })).finish();
  const unknown = pack("example.Unknown", new Uint8Array([1, 2, 3]));
  const statusBytes = Status.encode(Status.fromPartial({
    code: status.INVALID_ARGUMENT,
    message: "invalid request: user_id: required",
    details: [pack("google.rpc.BadRequest", badRequest), pack("google.rpc.ErrorInfo", info), pack("google.rpc.RetryInfo", retry), unknown],
  })).finish();
  const trailers = new Metadata();
  trailers.set(STATUS_DETAILS_TRAILER, Buffer.from(statusBytes));

  const error = toCopyloopError(serviceError(status.INVALID_ARGUMENT, "ignored", trailers), "/copyloop.v1.FusionService/Recommend");

  assert.ok(error instanceof CopyloopError && error instanceof Error);
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.equal(error.codeName, "INVALID_ARGUMENT");
  assert.equal(error.serverMessage, "invalid request: user_id: required");
  assert.match(error.message, /^\/copyloop\.v1\.FusionService\/Recommend: INVALID_ARGUMENT: invalid request/);
  assert.deepEqual(error.fieldViolations, [
    { field: "user_id", description: "required" },
    { field: "events[0].type", description: "must be set" },
  ]);
  assert.equal(error.details.reason, "INVALID_ARGUMENT");
  assert.equal(error.details.domain, "copyloop.v1");
  assert.equal(error.details.retryDelayMs, 1500);
  assert.equal(error.details.unknown.length, 1);
  assert.equal(error.details.unknown[0].typeUrl, "type.googleapis.com/example.Unknown");
});

test("an error without a details trailer keeps its code and message", () => {
  const error = toCopyloopError(serviceError(status.UNAVAILABLE, "connection refused", new Metadata()), "/copyloop.v1.ProfileService/GetItems");
  assert.equal(error.code, status.UNAVAILABLE);
  assert.equal(error.serverMessage, "connection refused");
  assert.equal(error.status, undefined);
  assert.deepEqual(error.fieldViolations, []);
});

test("a malformed details trailer does not hide the error", () => {
  const trailers = new Metadata();
  trailers.set(STATUS_DETAILS_TRAILER, Buffer.from([0xff, 0xff, 0xff]));
  const error = toCopyloopError(serviceError(status.INTERNAL, "boom", trailers), "/x/Y");
  assert.equal(error.code, status.INTERNAL);
  assert.equal(error.serverMessage, "boom");
  assert.equal(error.status, undefined);
});
