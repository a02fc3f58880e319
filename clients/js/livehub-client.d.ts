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

/** The hub's reasons for a `rejected` reply (docs/protocol.md); the last four answer bids. */
export type RejectReason =
  | "sold_out"
  | "limit_reached"
  | "deal_not_live"
  | "not_found"
  | "unavailable"
  | "too_low"
  | "ended"
  | "rate_limited"
  | "bad_request";

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
  /** A bid refused `too_low`: the least amount the hub accepts now. */
  readonly minCents?: number;
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

/** An auction bidder as viewers see them: a display name, never a user id. */
export interface Bidder {
  name: string;
}

export type AuctionStatus = "live" | "sold" | "unsold" | (string & {});

/** A live auction, or a closed one with its result (`auction` events, welcome's `auctions`,
 * kept current from `auction_bid` frames). */
export interface Auction {
  id: string;
  product_id: string;
  title: string;
  image_url?: string;
  currency: string;
  start_cents: number;
  increment_cents: number;
  /** The price now; null before the first bid. */
  current_cents: number | null;
  leader: Bidder | null;
  bids: number;
  /** Moves later when a bid in the last `extend_ms` extends the countdown (Unix ms). */
  ends_at: number;
  extend_ms: number;
  sudden_death: boolean;
  status: AuctionStatus;
  /** Once it closed `sold`. */
  winner?: Bidder;
  started_at: number;
}

export interface AuctionSpec {
  id: string;
  product_id: string;
  title?: string;
  image_url?: string;
  currency?: string;
  start_cents: number;
  increment_cents: number;
  /** 5,000 to 3,600,000. */
  duration_ms: number;
  /** 0 to 60,000 (default 10,000): a bid this close to the end moves the end to bid + extend_ms. */
  extend_ms?: number;
  /** The end never moves. */
  sudden_death?: boolean;
  commission_bps?: number;
  affiliate_bps?: number;
}

/** This user's standing in an auction they bid on (on this connection). */
export interface MyBid {
  auction: string;
  /** The run of the auction (its `started_at`). */
  started_at: number;
  /** The last amount of theirs the hub accepted. */
  amount_cents: number;
  /** The most the hub may bid for them (their proxy maximum). */
  max_cents: number;
  /** They lead now (or won). */
  leading: boolean;
  /** Set at the close; `won` is confirmed by the winner's `order`. */
  result: "won" | "lost" | null;
  /** The auction's bid count this standing is from. */
  at_bids: number;
}

/** A bid the hub accepted. */
export interface BidAccepted {
  request_id: string;
  auction: string;
  amount_cents: number;
  current_cents: number;
  /** False when another bidder's higher maximum answered it. */
  leading: boolean;
  ends_at: number;
  /** The bid's place in the auction's bids (hubs that send it). */
  bids?: number;
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

/** The order an auction's close made, sent to its winner alone (`order` with `auction`
 * instead of `deal`, and no `request_id` or `reservation`). */
export interface AuctionOrder {
  order: string;
  auction: string;
  qty: 1;
  price_cents: number;
  currency: string;
  status?: OrderStatus;
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
  /** Orders made on this connection (checkouts, and auctions won). */
  orders: (Order | AuctionOrder)[];
  /** Live auctions and recently closed ones with their result, newest first. */
  auctions: Auction[];
  /** This user's standing in each auction they bid on. */
  myBids: MyBid[];
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
  /** This user led an auction and a higher bid took the lead. */
  outbid: { auction: Auction; bid: MyBid };
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
  rejected: ServerMessage & { reason: RejectReason; min_cents?: number };
  order: ServerMessage & (Order | AuctionOrder);
  order_status: ServerMessage & {
    order: string;
    deal: string;
    status: OrderStatus;
    qty: number;
    total_cents: number;
    currency: string;
  };
  released: ServerMessage & { reservation: string };
  auction: ServerMessage & { auction: Auction };
  auction_bid: ServerMessage & { auction: string; current_cents: number; leader: Bidder | null; bids: number; ends_at: number };
  bid_accepted: ServerMessage & BidAccepted;
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
  /** How often a reserve, checkout, cancel or bid answered `unavailable` is retried (same request_id). */
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
  /** Bids on a live auction; `maxCents` makes it a proxy bid. Rejects with `too_low` (and
   * `minCents`), `ended`, `not_found`, `rate_limited`, ... */
  bid(auction: string, amountCents: number, options?: { maxCents?: number }): Promise<BidAccepted>;

  pin(product: Product): Promise<{ request_id: string; seq?: number }>;
  unpin(): Promise<{ request_id: string; seq?: number }>;
  startDeal(deal: DealSpec): Promise<{ request_id: string; seq?: number }>;
  endDeal(deal: string): Promise<{ request_id: string; seq?: number }>;
  startAuction(auction: AuctionSpec): Promise<{ request_id: string; seq?: number }>;
  /** Only an auction without a bid (it closes unsold); one with a bid runs to its end: `conflict`. */
  endAuction(auction: string): Promise<{ request_id: string; seq?: number }>;
  announce(text: string): Promise<{ request_id: string; seq?: number }>;
  mute(user: string, durationMs: number): Promise<{ request_id: string }>;
  unmute(user: string): Promise<{ request_id: string }>;
  deleteComment(id: string): Promise<{ request_id: string; seq?: number }>;
  setStream(url: string | null): Promise<{ request_id: string; seq?: number }>;

  deal(id: string): Deal | undefined;
  auction(id: string): Auction | undefined;
  myBid(id: string): MyBid | undefined;
  /** The least amount this user's bid is accepted at now (null: not a live auction here). */
  minBid(id: string): number | null;
}
