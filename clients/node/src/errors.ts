/**
 * gRPC failures as one Error subclass that carries what copyloop puts in the rich status
 * (google.rpc.Status in the `grpc-status-details-bin` trailer): callers branch on `code` and
 * show `fieldViolations` next to the form fields they belong to, instead of parsing messages.
 */
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import type { Any } from "./gen/google/protobuf/any";
import {
  BadRequest,
  ErrorInfo,
  PreconditionFailure,
  RequestInfo,
  ResourceInfo,
  RetryInfo,
} from "./gen/google/rpc/error_details";
import { Status } from "./gen/google/rpc/status";

/** The trailer that holds the serialized google.rpc.Status (a binary header, hence `-bin`). */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** One invalid request field; `field` is a path such as `events[0].type`. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** The details copyloop sends, decoded; a field is absent when the status did not carry it. */
export interface ErrorDetails {
  fieldViolations: FieldViolation[];
  /** ErrorInfo.reason, e.g. "INVALID_ARGUMENT", "NOT_FOUND". */
  reason?: string;
  /** ErrorInfo.domain, "copyloop.v1". */
  domain?: string;
  /** RequestInfo.request_id: quote it when reporting an INTERNAL error. */
  requestId?: string;
  /** RetryInfo.retry_delay in milliseconds (UNAVAILABLE). */
  retryDelayMs?: number;
  /** ResourceInfo (NOT_FOUND, ALREADY_EXISTS). */
  resource?: { type: string; name: string };
  /** PreconditionFailure violations (FAILED_PRECONDITION). */
  preconditionViolations: { type: string; subject: string; description: string }[];
  /** Details of types this client does not decode, left packed. */
  unknown: Any[];
}

/** A failed copyloop call: the gRPC code plus the decoded google.rpc.Status details. */
export class CopyloopError extends Error {
  override readonly name = "CopyloopError";

  constructor(
    /** The gRPC status code (grpc-js `status` enum, e.g. status.INVALID_ARGUMENT). */
    readonly code: GrpcStatus,
    /** The server's message (google.rpc.Status.message when present). */
    readonly serverMessage: string,
    /** The fully-qualified method, e.g. "/copyloop.v1.FusionService/Recommend". */
    readonly method: string,
    readonly details: ErrorDetails,
    /** The raw google.rpc.Status, undefined when the server sent no details trailer. */
    readonly status: Status | undefined,
    /** The response trailers, for anything else the caller wants to read. */
    readonly trailers: Metadata,
    options?: { cause?: unknown },
  ) {
    super(`${method}: ${GrpcStatus[code] ?? code}: ${serverMessage}`, options);
  }

  /** The code's name, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return GrpcStatus[this.code] ?? String(this.code);
  }

  /** Shortcut for the BadRequest field violations (empty unless INVALID_ARGUMENT). */
  get fieldViolations(): FieldViolation[] {
    return this.details.fieldViolations;
  }
}

/** Decodes the google.rpc.Status from a call's trailers; undefined when there is none. */
export function statusFromTrailers(trailers: Metadata | undefined): Status | undefined {
  const value = trailers?.get(STATUS_DETAILS_TRAILER)[0];
  if (value === undefined || typeof value === "string") return undefined;
  return Status.decode(value);
}

/** Unpacks the detail messages copyloop uses; anything else stays in `unknown`. */
export function decodeDetails(details: Any[]): ErrorDetails {
  const out: ErrorDetails = { fieldViolations: [], preconditionViolations: [], unknown: [] };
  for (const detail of details) {
    switch (detail.typeUrl.slice(TYPE_URL_PREFIX.length)) {
      case "google.rpc.BadRequest":
        for (const v of BadRequest.decode(detail.value).fieldViolations) {
          out.fieldViolations.push({ field: v.field, description: v.description });
        }
        break;
      case "google.rpc.ErrorInfo": {
        const info = ErrorInfo.decode(detail.value);
        out.reason = info.reason;
        out.domain = info.domain;
        break;
      }
      case "google.rpc.RequestInfo":
        out.requestId = RequestInfo.decode(detail.value).requestId;
        break;
      case "google.rpc.RetryInfo": {
        const delay = RetryInfo.decode(detail.value).retryDelay;
        if (delay) out.retryDelayMs = delay.seconds * 1000 + delay.nanos / 1e6;
        break;
      }
      case "google.rpc.ResourceInfo": {
        const info = ResourceInfo.decode(detail.value);
        out.resource = { type: info.resourceType, name: info.resourceName };
        break;
      }
      case "google.rpc.PreconditionFailure":
        for (const v of PreconditionFailure.decode(detail.value).violations) {
          out.preconditionViolations.push({ type: v.type, subject: v.subject, description: v.description });
        }
        break;
      default:
        out.unknown.push(detail);
    }
  }
  return out;
}

/** Turns a grpc-js ServiceError into a CopyloopError; a malformed details trailer is ignored. */
export function toCopyloopError(error: ServiceError, method: string): CopyloopError {
  const trailers = error.metadata ?? new Metadata();
  let status: Status | undefined;
  try {
    status = statusFromTrailers(trailers);
  } catch {
    status = undefined; // the code and message still say what happened
  }
  const details = decodeDetails(status?.details ?? []);
  const message = status?.message || error.details || error.message;
  return new CopyloopError(error.code, message, method, details, status, trailers, { cause: error });
}
