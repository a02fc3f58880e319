// Types of livehub-client (livehub-client.js). Kept by hand beside the JavaScript; a type check
// of the usage example (test/types-example.ts) guards them.

export declare const VERSION: string;

/** Reasons that come from the client itself rather than the hub. */
export type ClientReason =
  | "timeout"
  | "closed"
  | "disconnected"
  | "token_expired"
  | "token_error"
  | "unauthorized"
  | "forbidden"
  | "policy"
  | "bad_url";

/** The hub's reasons for a `rejected` reply (docs/protocol.md). */
export type RejectReason = "sold_out" | "limit_reached" | "deal_not_live" | "not_found" | "unavailable";

/** The hub's `error` codes. */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "too_large"
  | "unavailable"
  | "internal";

export type Reason = RejectReason | ErrorCode | ClientReason;

export declare const CLIENT_REASONS: readonly ClientReason[];

/** A failed call or connection. */
export declare class LiveHubError extends Error {
  readonly reason: Reason;
  /** The hub's reply or message, or what getToken threw. */
  readonly detail: unknown;
}

/** Seconds since the epoch at which a JWT expires, or null. */
export declare function tokenExpiry(token: string | null | undefined): number | null;

export interface Product {
  id: string;
  title: string;
  price_cents: number;
  currency: string;
  image_url?: string;
}

export type DealStatus = "live" | "sold_out" | "ended" | (string & {});

export interface Deal {
  id: string;
  product_id: string;
  title: string;
  image_url?: string;
  price_cents: number;
  currency: string;
  stock: number;
  /** Kept current from `stock` frames. */
  remaining: number;
  per_user_limit: number;
  commission_bps: number;
  affiliate_bps: number;
  ends_at: number;
  /** When the deal started (hubs that send it); deals are ordered newest first by it. */
  started_at?: number;
  status: DealStatus;
}

export interface DealSpec {
  id: string;
  product_id: string;
  title?: string;
  image_url?: string;
  price_cents: number;
  currency?: string;
  stock: number;
  per_user_limit: number;
  duration_ms: number;
  commission_bps?: number;
  affiliate_bps?: number;
}

export interface Comment {
  seq: number;
  id: string;
  user: string;
  name: string;
  text: string;
  ts: number;
}

export interface You {
  user: string;
  name: string;
  role: "viewer" | "host" | "admin";
}

export interface Hold {
  reservation: string;
  deal: string;
  qty: number;
  expires_at: number;
  request_id: string;
}

export interface Order {
  request_id: string;
  order: string;
  reservation: string;
  deal: string;
  qty: number;
  price_cents: number;
  currency: string;
  /** Hubs with `orders.payment = "external"`: `pending` until the shop settles it, then
   * `paid`, `failed` or `expired` (kept right from `order_status`); absent: paid. */
  status?: OrderStatus;
  /** With `status`: when a pending order expires unpaid (Unix ms, the inventory's clock). */
  pay_by?: number;
  [field: string]: unknown;
}

export type OrderStatus = "pending" | "paid" | "failed" | "expired";

export type ConnectionState = "connecting" | "connected" | "disconnected";

/** The room as the hub sees it, kept right from events: render from this alone. */
export interface RoomState {
  room: string;
  connection: ConnectionState;
  /** The last durable seq applied. */
  seq: number;
  you: You | null;
  viewers: number;
  likes: number;
  pinned: Product | null;
  /** Every live and recent deal, newest first. */
  deals: Deal[];
  /** Recent comments, oldest first (at most maxComments). */
  comments: Comment[];
  /** The latest announcement (late joiners get it in welcome). */
  announcement: { text: string; seq: number } | null;
  /** The room's live video URL (e.g. an HLS playlist), or null. */
  stream: string | null;
  /** Hosts and admins: users muted in this room, until when (Unix ms). */
  muted: { user: string; until: number }[];
  /** Other viewers' comments the hub thinned for this connection (`skipped`). */
  hiddenComments: number;
  /** This user's live holds on this connection. */
  holds: Hold[];
  /** Orders made on this connection. */
  orders: Order[];
}

export interface ConnectionChange {
  state: ConnectionState;
  /** Why: `welcome`, `resumed`, `going_away`, `not_live`, `closed_1006`, `unreachable`, a Reason... */
  reason: string | null;
  /** The room stopped for good (a reason retrying cannot fix, or close()). */
  final: boolean;
}

/** Any server message: `type` plus its fields (docs/protocol.md). */
export interface ServerMessage {
  type: string;
  seq?: number;
  request_id?: string;
  [field: string]: unknown;
}

export interface LiveRoomEvents {
  state: RoomState;
  connection: ConnectionChange;
  hold_expired: Hold;
  token_error: LiveHubError;
  welcome: ServerMessage;
  not_live: ServerMessage;
  comment: ServerMessage & Comment;
  comment_deleted: ServerMessage & { id: string };
  pinned: ServerMessage & { product: Product };
  unpinned: ServerMessage;
  deal: ServerMessage & { deal: Deal };
  announcement: ServerMessage & { text: string };
  stream: ServerMessage & { url: string | null };
  skipped: ServerMessage & { from: number; comments: number };
  stock: ServerMessage & { deal: string; remaining: number };
  viewers: ServerMessage & { count: number };
  likes: ServerMessage & { total: number };
  reserved: ServerMessage & Hold;
  rejected: ServerMessage & { reason: RejectReason };
  order: ServerMessage & Order;
  order_status: ServerMessage & {
    order: string;
    deal: string;
    status: OrderStatus;
    qty: number;
    total_cents: number;
    currency: string;
  };
  released: ServerMessage & { reservation: string };
  ack: ServerMessage;
  error: ServerMessage & { code: ErrorCode; message: string };
  [type: string]: unknown;
}

export interface LiveRoomOptions {
  /** The hub's base URL (http(s):// or ws(s)://), or several nodes: a drain (1001) or an
   * unreachable node moves the room to the next. */
  url: string | string[];
  room: string;
  /** A static token (a viewer without one joins anonymously where the hub allows it). */
  token?: string;
  /** Called for a token before the current one expires, and when the hub refuses it; one call
   * at a time. Throwing stops the room with `token_error`. */
  getToken?: () => Promise<string | { token: string }> | string | { token: string };
  /** The traffic channel for analytics (`?src=`) when the token has none. */
  src?: string;
  /** The WebSocket constructor (default: globalThis.WebSocket). */
  WebSocket?: unknown;
  /** fetch, used to learn why an upgrade was refused (default: globalThis.fetch). */
  fetch?: typeof fetch;
  minDelayMs?: number;
  maxDelayMs?: number;
  stableMs?: number;
  connectTimeoutMs?: number;
  refreshBeforeMs?: number;
  requestTimeoutMs?: number;
  /** How often a reserve, checkout or cancel answered `unavailable` is retried (same request_id). */
  unavailableRetries?: number;
  maxComments?: number;
  /** Browsers: close on `pagehide` and come back on `pageshow` (default true). */
  closeOnPageHide?: boolean;
}

export declare class LiveRoom {
  constructor(options: LiveRoomOptions);
  readonly room: string;
  readonly state: RoomState;
  /** The durable seq last applied (null before the first welcome). */
  readonly seq: number | null;

  on<K extends keyof LiveRoomEvents & string>(type: K, fn: (payload: LiveRoomEvents[K], room: LiveRoom) => void): () => void;
  off(type: string, fn: (...args: any[]) => void): void;

  connect(): this;
  close(): void;
  reconnect(): void;

  reserve(deal: string, qty?: number): Promise<Omit<Hold, never> & { remaining: number }>;
  checkout(hold: Hold | string): Promise<Order>;
  cancel(hold: Hold | string): Promise<{ request_id: string; reservation: string }>;
  comment(text: string): Promise<{ request_id: string; seq?: number }>;
  like(count?: number): Promise<{ request_id: string }>;

  pin(product: Product): Promise<{ request_id: string; seq?: number }>;
  unpin(): Promise<{ request_id: string; seq?: number }>;
  startDeal(deal: DealSpec): Promise<{ request_id: string; seq?: number }>;
  endDeal(deal: string): Promise<{ request_id: string; seq?: number }>;
  announce(text: string): Promise<{ request_id: string; seq?: number }>;
  mute(user: string, durationMs: number): Promise<{ request_id: string }>;
  unmute(user: string): Promise<{ request_id: string }>;
  deleteComment(id: string): Promise<{ request_id: string; seq?: number }>;
  setStream(url: string | null): Promise<{ request_id: string; seq?: number }>;

  deal(id: string): Deal | undefined;
}
