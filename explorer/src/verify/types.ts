/**
 * The decoded values the verifier works on: the Rust types of `crates/types`,
 * `crates/state/src/records.rs`, `crates/state/src/smt.rs` and `crates/provenance`, with
 * their Rust field names.
 *
 * Hashes, public keys, addresses and signatures are raw bytes (an address is its 32 key
 * bytes); `u64` values are `bigint`, so they encode exactly; `u16` and `u32` values are
 * `number`. Identifiers are their (validated) text. `Option<T>` is `T | null`. The JSON
 * forms (`specs/api.md#json-objects`) are read into these by `json.ts`.
 */

import type { Bytes } from "./bytes";

/** A 32-byte SHA-256 digest. */
export type Hash = Bytes;
/** A 32-byte Ed25519 public key. */
export type PublicKey = Bytes;
/** An account: the 32 bytes of its public key (shown as bech32m `cachet1...`). */
export type Address = Bytes;
/** A 64-byte Ed25519 signature, `R || s`. */
export type Signature = Bytes;

/** One stamp: `ISSUE#SERIAL`. */
export interface StampId {
  issue: string;
  serial: number;
}

/** A member postal operator (`crates/types/src/genesis.rs`). */
export interface Operator {
  id: string;
  country: string;
  name: string;
  validator_key: PublicKey;
  node_key: PublicKey;
  issuer: Address;
}

/** Consensus-wide limits fixed in the genesis. */
export interface ChainParams {
  max_block_txs: number;
  max_block_bytes: number;
  max_tx_bytes: number;
  max_mint_per_tx: number;
  max_print_run: number;
}

/** The founding document of a chain; its tagged hash is the chain id. */
export interface Genesis {
  chain_name: string;
  genesis_time_ms: bigint;
  operators: Operator[];
  params: ChainParams;
}

/** Why a stamp was frozen, in declaration (variant index) order. */
export const FREEZE_REASONS = ["stolen", "lost", "disputed", "fraud", "legal_order"] as const;
/** Why a stamp was frozen. */
export type FreezeReason = (typeof FREEZE_REASONS)[number];

/** When an approval ends: variant 0 `height`, 1 `time_ms`. */
export type Deadline = { kind: "height"; value: bigint } | { kind: "time_ms"; value: bigint };

/** A variant of an issue and how many of the print run it takes. */
export interface Variant {
  name: string;
  count: number;
}

/** An operator issuing jointly with the lead operator, and its share. */
export interface CoIssuer {
  operator: string;
  share: number;
}

/** Face value: an amount in the currency's minor units. */
export interface FaceValue {
  amount_minor: bigint;
  currency: string;
}

/** The philatelic record of a stamp issue. */
export interface IssueRecord {
  id: string;
  operator: string;
  title: string;
  country: string;
  year: number;
  wns_number: string | null;
  face_value: FaceValue;
  design_sha256: Hash;
  design_uri: string;
  print_run: number;
  variants: Variant[];
  co_issuers: CoIssuer[];
}

/** One stamp moving in a swap, with its last event. */
export interface SwapLeg {
  stamp: StampId;
  last_event: Hash;
}

/** A change to the operator set (`MembershipChange`), variants in declaration order. */
export type MembershipChange =
  | { change: "add_operator"; operator: Operator }
  | { change: "remove_operator"; operator: string }
  | { change: "rotate_validator_key"; operator: string; validator_key: PublicKey }
  | { change: "rotate_node_key"; operator: string; node_key: PublicKey };

/** What a transaction does (`TxBody`), variants in declaration order (`TX_KINDS`). */
export type TxBody =
  | { kind: "create_issue"; record: IssueRecord }
  | {
      kind: "mint";
      issue: string;
      first_serial: number;
      last_serial: number;
      owner: Address;
      variant: string | null;
      claim_keys: PublicKey[];
    }
  | { kind: "claim"; stamp: StampId; to: Address }
  | { kind: "swap"; give: SwapLeg[]; take: SwapLeg[]; counterparty: Address }
  | { kind: "close_issue"; issue: string }
  | { kind: "transfer"; stamp: StampId; last_event: Hash; to: Address }
  | { kind: "redeem"; stamp: StampId }
  | { kind: "freeze"; stamp: StampId; reason: FreezeReason; case_ref: string }
  | { kind: "unfreeze"; stamp: StampId; case_ref: string }
  | { kind: "approve"; stamp: StampId; operator: Address; until: Deadline }
  | { kind: "revoke"; stamp: StampId }
  | { kind: "burn"; stamp: StampId; last_event: Hash }
  | { kind: "propose_membership"; change: MembershipChange; activation_height: bigint }
  | { kind: "approve_membership"; proposal: Hash };

/** The `kind` of every `TxBody` variant; the position is the variant index. */
export const TX_KINDS = [
  "create_issue",
  "mint",
  "claim",
  "swap",
  "close_issue",
  "transfer",
  "redeem",
  "freeze",
  "unfreeze",
  "approve",
  "revoke",
  "burn",
  "propose_membership",
  "approve_membership",
] as const satisfies readonly TxBody["kind"][];

/** The `change` of every `MembershipChange` variant; the position is the variant index. */
export const MEMBERSHIP_CHANGES = [
  "add_operator",
  "remove_operator",
  "rotate_validator_key",
  "rotate_node_key",
] as const satisfies readonly MembershipChange["change"][];

/** Another party's agreement: its signature over the cosigning bytes. */
export interface Cosignature {
  signer: PublicKey;
  signature: Signature;
}

/** A signed transaction as it travels and is stored. */
export interface SignedTx {
  chain_id: Hash;
  signer: PublicKey;
  nonce: bigint;
  body: TxBody;
  signature: Signature;
  cosignatures: Cosignature[];
}

/** The part of a block that is hashed and signed. */
export interface BlockHeader {
  chain_id: Hash;
  height: bigint;
  prev_hash: Hash;
  time_ms: bigint;
  proposer: number;
  tx_count: number;
  tx_root: Hash;
  state_root: Hash;
}

/** One validator's precommit signature in a certificate. */
export interface CommitSignature {
  validator: number;
  signature: Signature;
}

/** Proof that a block is final: precommits of more than two thirds of the validators. */
export interface CommitCertificate {
  height: bigint;
  round: number;
  block_hash: Hash;
  signatures: CommitSignature[];
}

/** A header and the certificate that finalized it. */
export interface CertifiedHeader {
  header: BlockHeader;
  certificate: CommitCertificate;
}

/** Proof that a witness hash sits at `index` among `count` leaves of a block's tx tree. */
export interface InclusionProof {
  index: number;
  count: number;
  siblings: Hash[];
}

/** A transaction with the proof that it sits in a block. */
export interface IncludedTx {
  tx: SignedTx;
  height: bigint;
  proof: InclusionProof;
}

/** What can be done with a stamp now (`StampStatus`), variants in declaration order. */
export type StampStatus =
  | { status: "active" }
  | { status: "unclaimed"; claim_key: PublicKey }
  | { status: "frozen"; reason: FreezeReason; case_ref: string }
  | { status: "redeemed" }
  | { status: "burned" };

/** The `status` of every `StampStatus` variant; the position is the variant index. */
export const STAMP_STATUSES = [
  "active",
  "unclaimed",
  "frozen",
  "redeemed",
  "burned",
] as const satisfies readonly StampStatus["status"][];

/** An owner's permission for another account to transfer one stamp. */
export interface Approval {
  operator: Address;
  until: Deadline;
}

/** A stamp's record in the state. */
export interface StampState {
  owner: Address | null;
  status: StampStatus;
  last_event: Hash;
  event_count: number;
  approval: Approval | null;
}

/** A sparse-Merkle proof: siblings from the root down, and the leaf where the walk ended. */
export interface SmtProof {
  siblings: Hash[];
  leaf: [Hash, Hash] | null;
}

/** The stamp's record at the latest certified height, with its proof. */
export interface CurrentRecord {
  height: bigint;
  record: StampState;
  proof: SmtProof;
}

/** One decided membership change: its proposal and the approvals after it, in order. */
export interface ChangeProof {
  proposal: IncludedTx;
  approvals: IncludedTx[];
}

/** Every change of the operator set up to a height, with the headers of its transactions. */
export interface MembershipProof {
  changes: ChangeProof[];
  headers: CertifiedHeader[];
}

/** A provenance bundle (`specs/provenance.md#bundle-format-json-version-1`). */
export interface ProvenanceBundle {
  format: string;
  version: number;
  chain_id: Hash;
  stamp: StampId;
  issue: IncludedTx;
  events: IncludedTx[];
  headers: CertifiedHeader[];
  current: CurrentRecord;
  membership: MembershipProof;
}
