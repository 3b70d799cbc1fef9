/**
 * A promise-based, typed client for the copyloop services. Every unary RPC of every service is
 * exposed with the types generated from the .proto files; each call carries the API key as
 * `authorization: Bearer <key>` (the services derive the tenant from it) and a deadline (the
 * services honour it and stop work when it passes), and fails with a CopyloopError.
 */
import {
  Client,
  type ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import { FusionServiceDefinition } from "./gen/copyloop/v1/fusion";
import { GenerationServiceDefinition } from "./gen/copyloop/v1/generation";
import { PredictionServiceDefinition } from "./gen/copyloop/v1/prediction";
import { ProfileServiceDefinition } from "./gen/copyloop/v1/profile";
import { toCopyloopError } from "./errors";

/** Encode/decode/fromPartial as ts-proto generates them for every message. */
interface MessageCodec<T, P> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  fromPartial(object: P): T;
}

interface MethodDefinition {
  readonly name: string;
  readonly requestType: MessageCodec<any, any>;
  readonly responseType: MessageCodec<any, any>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** A ts-proto `generic-definitions` service (e.g. FusionServiceDefinition). */
export interface ServiceDefinition {
  readonly fullName: string;
  readonly methods: { readonly [method: string]: MethodDefinition };
}

/** Per-call settings; anything unset falls back to the client's defaults. */
export interface CallOptions {
  /** Milliseconds until the call's deadline; the client's `deadlineMs` when unset. */
  deadlineMs?: number;
  /** Extra request metadata, e.g. a trace id. */
  metadata?: Record<string, string>;
  /** Cancels the call (it then fails with CANCELLED). */
  signal?: AbortSignal;
}

type UnaryMethodNames<D extends ServiceDefinition> = {
  [K in keyof D["methods"]]: D["methods"][K] extends { requestStream: false; responseStream: false } ? K : never;
}[keyof D["methods"]];

/**
 * The promise API of a service: one function per unary RPC, taking a partial request (unset
 * fields are the proto defaults) and resolving to the full response message.
 */
export type UnaryClient<D extends ServiceDefinition> = {
  [K in UnaryMethodNames<D>]: D["methods"][K] extends {
    requestType: { fromPartial(object: infer Partial): unknown };
    responseType: { decode(input: Uint8Array): infer Response };
  }
    ? (request: Partial, options?: CallOptions) => Promise<Response>
    : never;
};

export type FusionClient = UnaryClient<typeof FusionServiceDefinition>;
export type ProfileClient = UnaryClient<typeof ProfileServiceDefinition>;
export type GenerationClient = UnaryClient<typeof GenerationServiceDefinition>;
export type PredictionClient = UnaryClient<typeof PredictionServiceDefinition>;

/** Where the services listen (host:port) and how to authenticate. */
export interface CopyloopClientOptions {
  fusionAddress?: string;
  profileAddress?: string;
  generationAddress?: string;
  predictionAddress?: string;
  /** The tenant's API key, sent as `authorization: Bearer <key>`. */
  apiKey: string;
  /** Default deadline per call in milliseconds (5000 when unset). */
  deadlineMs?: number;
  /** Channel credentials; plaintext (insecure) when unset, as the local platform serves. */
  credentials?: ChannelCredentials;
}

export const DEFAULT_DEADLINE_MS = 5000;

/** Builds the promise API for one service over one grpc-js channel. */
export function createUnaryClient<D extends ServiceDefinition>(
  definition: D,
  channel: Client,
  callMetadata: (extra?: Record<string, string>) => Metadata,
  defaultDeadlineMs: number,
): UnaryClient<D> {
  const api: Record<string, (request: unknown, options?: CallOptions) => Promise<unknown>> = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    if (method.requestStream || method.responseStream) continue; // streams: use the raw grpc-js clients
    const path = `/${definition.fullName}/${method.name}`;
    const serialize = (value: unknown): Buffer => Buffer.from(method.requestType.encode(value).finish());
    const deserialize = (bytes: Buffer): unknown => method.responseType.decode(bytes);
    api[key] = (request, options = {}) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + (options.deadlineMs ?? defaultDeadlineMs);
        const call = channel.makeUnaryRequest(
          path,
          serialize,
          deserialize,
          method.requestType.fromPartial(request ?? {}),
          callMetadata(options.metadata),
          { deadline },
          (error: ServiceError | null, response?: unknown) => {
            options.signal?.removeEventListener("abort", cancel);
            if (error) reject(toCopyloopError(error, path));
            else resolve(response);
          },
        );
        const cancel = (): void => call.cancel();
        if (options.signal?.aborted) cancel();
        else options.signal?.addEventListener("abort", cancel, { once: true });
      });
  }
  return api as UnaryClient<D>;
}

/**
 * All four services behind one object. A service whose address was not given throws on use,
 * so a storefront that only needs FusionService configures only that.
 */
export class CopyloopClient {
  private readonly channels: Client[] = [];
  private readonly apiKey: string;
  private readonly fusionApi?: FusionClient;
  private readonly profileApi?: ProfileClient;
  private readonly generationApi?: GenerationClient;
  private readonly predictionApi?: PredictionClient;

  constructor(options: CopyloopClientOptions) {
    if (!options.apiKey) throw new Error("copyloop: an API key is required");
    this.apiKey = options.apiKey;
    const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const creds = options.credentials ?? grpcCredentials.createInsecure();
    const open = <D extends ServiceDefinition>(definition: D, address?: string): UnaryClient<D> | undefined => {
      if (!address) return undefined;
      const channel = new Client(address, creds);
      this.channels.push(channel);
      return createUnaryClient(definition, channel, (extra) => this.metadata(extra), deadlineMs);
    };
    this.fusionApi = open(FusionServiceDefinition, options.fusionAddress);
    this.profileApi = open(ProfileServiceDefinition, options.profileAddress);
    this.generationApi = open(GenerationServiceDefinition, options.generationAddress);
    this.predictionApi = open(PredictionServiceDefinition, options.predictionAddress);
  }

  /**
   * Reads COPYLOOP_FUSION_ADDR, COPYLOOP_PROFILE_ADDR, COPYLOOP_GENERATION_ADDR,
   * COPYLOOP_PREDICTION_ADDR, COPYLOOP_API_KEY and COPYLOOP_DEADLINE_MS.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): CopyloopClient {
    const deadline = env.COPYLOOP_DEADLINE_MS ? Number(env.COPYLOOP_DEADLINE_MS) : undefined;
    return new CopyloopClient({
      fusionAddress: env.COPYLOOP_FUSION_ADDR,
      profileAddress: env.COPYLOOP_PROFILE_ADDR,
      generationAddress: env.COPYLOOP_GENERATION_ADDR,
      predictionAddress: env.COPYLOOP_PREDICTION_ADDR,
      apiKey: env.COPYLOOP_API_KEY ?? "",
      deadlineMs: deadline,
    });
  }

  get fusion(): FusionClient {
    return required(this.fusionApi, "fusionAddress (COPYLOOP_FUSION_ADDR)");
  }

  get profile(): ProfileClient {
    return required(this.profileApi, "profileAddress (COPYLOOP_PROFILE_ADDR)");
  }

  get generation(): GenerationClient {
    return required(this.generationApi, "generationAddress (COPYLOOP_GENERATION_ADDR)");
  }

  get prediction(): PredictionClient {
    return required(this.predictionApi, "predictionAddress (COPYLOOP_PREDICTION_ADDR)");
  }

  /** The auth metadata every call sends; for the raw grpc-js clients (streaming RPCs) too. */
  metadata(extra: Record<string, string> = {}): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    metadata.set("authorization", `Bearer ${this.apiKey}`);
    return metadata;
  }

  /** Closes every channel; pending calls fail with CANCELLED/UNAVAILABLE. */
  close(): void {
    for (const channel of this.channels) channel.close();
  }
}

function required<T>(api: T | undefined, setting: string): T {
  if (!api) throw new Error(`copyloop: this client has no ${setting}`);
  return api;
}
