// The node's API (`specs/api.md`), read from the explorer's own origin. Shapes are the
// fields the pages use; the verifier reads bundles and geneses as untrusted JSON.

/** An error answer of the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Longest a request of the explorer waits. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Page size of every list. */
export const PAGE = 20;

/** GET `path` of the node as JSON. */
export async function get<T>(path: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the node did not answer: ${String(error)}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status, "bad_answer", `the node's answer to ${path} is not JSON`);
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(response.status, error?.code ?? "error", error?.message ?? response.statusText);
  }
  return body as T;
}

export interface Operator {
  id: string;
  country: string;
  name: string;
  validator_key: string;
  node_key: string;
  issuer: string;
}

export interface ChainInfo {
  chain_id: string;
  chain_name: string;
  height: number;
  tip_hash: string;
  state_root: string;
  time_ms: number;
  operators: Operator[];
  version: string;
  metrics: { mempool_size: number; txs_final: number; peers: number; role: string };
}

export interface BlockHeader {
  chain_id: string;
  height: number;
  prev_hash: string;
  proposer: number;
  state_root: string;
  time_ms: number;
  tx_count: number;
  tx_root: string;
}

export interface BlockInfo {
  hash: string;
  header: BlockHeader;
  tx_ids: string[];
  certificate: { height: number; round: number; block_hash: string; signatures: { validator: number; signature: string }[] };
}

export interface TxBody {
  kind: string;
  [field: string]: unknown;
}

export interface SignedTx {
  chain_id: string;
  signer: string;
  nonce: number;
  body: TxBody;
  signature: string;
  cosignatures: { signer: string; signature: string }[];
}

export type TxInfo = { tx_id: string; tx?: SignedTx } & (
  | { status: "pending" }
  | { status: "final"; height: number; index: number }
  | { status: "rejected"; reason: string; message: string }
  | { status: "unknown" }
);

export interface Variant {
  name: string;
  [field: string]: unknown;
}

export interface IssueRecord {
  id: string;
  operator: string;
  title: string;
  country: string;
  year: number;
  wns_number: string | null;
  face_value: { amount_minor: number; currency: string };
  design_sha256: string;
  design_uri: string;
  print_run: number;
  variants: Variant[];
  co_issuers: { operator: string; share: number }[];
}

export interface IssueInfo {
  record: IssueRecord;
  closed: boolean;
  created_height: number;
  minted: number;
  redeemed: number;
  frozen: number;
  burned: number;
  variant_minted: number[];
  co_issuer_minted: number[];
}

export type StampStatus =
  | { status: "active" | "redeemed" | "burned" }
  | { status: "unclaimed"; claim_key: string }
  | { status: "frozen"; reason: string; case_ref: string };

export type StampInfo = {
  stamp: string;
  owner: string | null;
  last_event: string;
  event_count: number;
} & StampStatus;

export interface HistoryEntry {
  seq: number;
  kind: string;
  event_hash: string;
  prev_event: string;
  tx_id: string;
  signer: string;
  height: number;
  time_ms: number;
  [field: string]: unknown;
}

export interface HistoryPage {
  stamp: string;
  events: HistoryEntry[];
  next: number | null;
}

export interface HoldingsPage {
  owner: string;
  stamps: string[];
  next: string | null;
}

export interface IssueStampsPage {
  issue: string;
  stamps: StampInfo[];
  next: number | null;
}

export interface AccountInfo {
  address: string;
  public_key: string;
  nonce: number;
  next_nonce: number;
  operator: string | null;
}

export interface MembershipEpoch {
  [field: string]: unknown;
}

export interface MembershipInfo {
  height: number;
  operators: Operator[];
  scheduled: MembershipEpoch | null;
  changes: MembershipEpoch[];
}

const seg = encodeURIComponent;

export const api = {
  chain: () => get<ChainInfo>("/v1/chain"),
  genesis: () => get<unknown>("/v1/genesis"),
  block: (height: number) => get<BlockInfo>(`/v1/block/${height}`),
  tx: (id: string) => get<TxInfo>(`/v1/tx/${seg(id)}`),
  issue: (id: string) => get<IssueInfo>(`/v1/issue/${seg(id)}`),
  issueStamps: (id: string, after: number | null) =>
    get<IssueStampsPage>(`/v1/issue/${seg(id)}/stamps?limit=${PAGE}${after === null ? "" : `&after=${after}`}`),
  stamp: (id: string) => get<StampInfo>(`/v1/stamp/${seg(id)}`),
  history: (id: string, after: number | null) =>
    get<HistoryPage>(`/v1/stamp/${seg(id)}/history?limit=${PAGE}${after === null ? "" : `&after=${after}`}`),
  bundle: (id: string) => get<unknown>(`/v1/stamp/${seg(id)}/bundle`),
  account: (address: string) => get<AccountInfo>(`/v1/account/${seg(address)}`),
  holdings: (address: string, after: string | null) =>
    get<HoldingsPage>(
      `/v1/account/${seg(address)}/holdings?limit=${PAGE}${after === null ? "" : `&after=${seg(after)}`}`,
    ),
  membership: () => get<MembershipInfo>("/v1/membership"),
};
