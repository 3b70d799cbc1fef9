/** Public entry point: the client, its errors, and the generated message types and enums. */
export * from "./client";
export * from "./errors";
export * from "./gen/copyloop/v1/common";
export * as fusion from "./gen/copyloop/v1/fusion";
export * as profile from "./gen/copyloop/v1/profile";
export * as generation from "./gen/copyloop/v1/generation";
export * as prediction from "./gen/copyloop/v1/prediction";
export { status as GrpcStatus } from "@grpc/grpc-js";
