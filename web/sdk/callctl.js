// SPDX-License-Identifier: Apache-2.0
// callctl JavaScript SDK: an ES module, no build step. callctl serves it at
// /sdk/callctl.js and its TypeScript declarations at /sdk/callctl.d.ts.
//
//   import { connect, SessionState } from "/sdk/callctl.js";
//   const client = await connect(location.origin, token);
//   client.onSessionCreated((session) => {
//     session.onSessionStateChanged((s, state) => console.log(s.sessionId, state));
//   });
//   await client.sessions()[0]?.hold();
//   const listen = await client.sessions()[0]?.startListen(); // WebRTC listen-in
//   listen.attach(document.querySelector("audio"));
//
// The client asks callctl who it is (GET /api/v1/me: name and privileges),
// loads the sessions over REST (GET /api/v1/sessions) and keeps them current
// from the WebSocket event stream (/api/v1/events). Session
// methods are the seed's: they check their arguments and throw synchronously
// where the seed says they throw, and otherwise return a Promise of the
// server's answer that rejects with a CallctlError.

/**
 * The session states, as the API spells them. Live states first, then the
 * ended ones.
 *
 * @readonly
 */
export const SessionState = Object.freeze(
  /** @type {const} */ ({
  /** The inbound INVITE arrived; the callee leg is being set up. */
  SETUP: "SETUP",
  /** The callee is ringing. */
  RINGING: "RINGING",
  /** Both parties are connected. */
  IN_CALL: "IN_CALL",
  /** The callee holds the caller. */
  CALLER_ON_HOLD: "CALLER_ON_HOLD",
  /** The caller holds the callee. */
  CALLEE_ON_HOLD: "CALLEE_ON_HOLD",
  /** A client put both parties on hold (hold()). */
  ON_HOLD: "ON_HOLD",
  /** A blind transfer was asked for (REFER sent). */
  TRANSFER_REQUESTED: "TRANSFER_REQUESTED",
  /** The transferee is reaching the target. */
  TRANSFERRING: "TRANSFERRING",
  /** The transfer failed; the session goes back to the state before it. */
  TRANSFER_FAILED: "TRANSFER_FAILED",
  /** Forwarded before answer: ringing the new target. */
  REDIRECTED: "REDIRECTED",
  /**
   * The call was handed away by REFER: callctl is out of it (ended). A
   * transfer callctl connects itself never passes here: the session goes
   * from TRANSFERRING back to IN_CALL.
   */
  TRANSFER_COMPLETED: "TRANSFER_COMPLETED",
  /** The caller hung up. */
  CALLER_HUNG_UP: "CALLER_HUNG_UP",
  /** The callee hung up. */
  CALLEE_HUNG_UP: "CALLEE_HUNG_UP",
  /** A client hung the call up (hangup()). */
  HUNG_UP: "HUNG_UP",
  /** The session was released (close(), closeWithHangup()); it is no longer readable. */
  CLOSED: "CLOSED",
  /** The callee was busy. */
  BUSY: "BUSY",
  /** The callee does not exist. */
  NOT_FOUND: "NOT_FOUND",
  /** Nobody answered. */
  NOT_ANSWERED: "NOT_ANSWERED",
  /** The caller gave up before answer. */
  CANCELLED: "CANCELLED",
  /** The session ended on an error. */
  ERROR: "ERROR",
  /** callctl stopped while the call was up. */
  ABORTED: "ABORTED",
  }),
);

/**
 * A session state name: one of the values of SessionState.
 *
 * @typedef {(typeof SessionState)[keyof typeof SessionState]} SessionStateName
 */

/** @type {ReadonlySet<string>} */
const endedStates = new Set([
  SessionState.TRANSFER_COMPLETED,
  SessionState.CALLER_HUNG_UP,
  SessionState.CALLEE_HUNG_UP,
  SessionState.HUNG_UP,
  SessionState.CLOSED,
  SessionState.BUSY,
  SessionState.NOT_FOUND,
  SessionState.NOT_ANSWERED,
  SessionState.CANCELLED,
  SessionState.ERROR,
  SessionState.ABORTED,
]);

/**
 * Reports whether state is an ended state (the call is over). An ended
 * session never goes back to a live state.
 *
 * @param {string} state a SessionState value
 * @returns {boolean}
 */
export function isEndedState(state) {
  return endedStates.has(state);
}

/**
 * The states of the client's connection to callctl.
 *
 * @readonly
 */
export const ConnectionState = Object.freeze(
  /** @type {const} */ ({
  /** connect() is loading the sessions and opening the event stream. */
  CONNECTING: "connecting",
  /** Events are flowing. */
  OPEN: "open",
  /** The stream dropped; the client is reconnecting and will resume where it left off. */
  RECONNECTING: "reconnecting",
  /** close() was called, or callctl refused the token: the client stays closed. */
  CLOSED: "closed",
  }),
);

/**
 * A connection state name: one of the values of ConnectionState.
 *
 * @typedef {(typeof ConnectionState)[keyof typeof ConnectionState]} ConnectionStateName
 */

/**
 * The privileges a client can hold, as the API spells them. Client.can()
 * tells which ones callctl granted the token.
 *
 * @readonly
 */
export const Privilege = Object.freeze(
  /** @type {const} */ ({
  /** See sessions and follow their events. */
  VIEW: "sessions.view",
  /** hold() and unhold(). */
  HOLD: "sessions.hold",
  /** blindTransfer(). */
  TRANSFER: "sessions.transfer",
  /** forward(). */
  FORWARD: "sessions.forward",
  /** hangup(), close() and closeWithHangup(). */
  HANGUP: "sessions.hangup",
  /** sendDtmf(). */
  DTMF: "sessions.dtmf",
  /** startListen() and stopListen(). */
  LISTEN: "sessions.listen",
  /** Read the audit trail and call records. */
  AUDIT_VIEW: "audit.view",
  /** Ask callctl to re-read its configuration (POST /api/v1/config/reload). */
  CONFIG_RELOAD: "config.reload",
  }),
);

/** The DTMF keys a party can be sent (RFC 4733 events 0-15); a-d are taken as A-D. */
const dtmfKeys = /^[0-9*#A-Da-d]+$/;

/**
 * An error from callctl or from the SDK's argument checks.
 *
 * Errors from the server carry its JSON error body
 * (`{"error":{"code","message","field"}}`) and the HTTP status. Argument
 * errors thrown synchronously by Session methods have code
 * "invalid_argument", status 0 (nothing was sent) and the name of the bad
 * argument in field. Network failures have code "network" and status 0.
 */
export class CallctlError extends Error {
  /**
   * @param {object} init
   * @param {string} init.code machine-readable code, e.g. "invalid_argument", "forbidden", "wrong_state"
   * @param {string} init.message what went wrong, naming the bad input and the allowed values
   * @param {string} [init.field] the argument or body field at fault, if any
   * @param {number} [init.status] the HTTP status; 0 when no answer came from the server
   * @param {number} [init.sipStatus] the SIP status of a peer's refusal (status 502)
   * @param {unknown} [init.cause] the underlying error, for network failures
   */
  constructor({ code, message, field = "", status = 0, sipStatus = 0, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    /** @type {string} */
    this.name = "CallctlError";
    /** Machine-readable code, e.g. "invalid_argument", "forbidden", "not_found", "wrong_state". @type {string} */
    this.code = code;
    /** The argument or body field at fault, or "". @type {string} */
    this.field = field;
    /** The HTTP status, or 0 when no answer came from the server. @type {number} */
    this.status = status;
    /** The SIP status of a peer's refusal, or 0. @type {number} */
    this.sipStatus = sipStatus;
  }
}

/**
 * An argument error, thrown before anything is sent.
 *
 * @param {string} field
 * @param {string} message
 * @returns {CallctlError}
 */
function argumentError(field, message) {
  return new CallctlError({ code: "invalid_argument", message, field, status: 0 });
}

/**
 * Returns value as a phone number string, or "" when it is missing, empty,
 * or neither a string nor a finite number.
 *
 * @param {unknown} value
 * @returns {string}
 */
function numberText(value) {
  if (typeof value === "number" && Number.isFinite(value)) {
    return String(value);
  }
  if (typeof value === "string" && value.trim() !== "") {
    return value;
  }
  return "";
}

/**
 * Parses a time the server sent (RFC 3339 with up to nanoseconds) into
 * milliseconds since the epoch, or NaN.
 *
 * @param {string | undefined} text
 * @returns {number}
 */
function parseTime(text) {
  if (!text) {
    return NaN;
  }
  // Date.parse is only required to read milliseconds: drop finer digits.
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

/**
 * Calls each callback with args; a callback that throws is reported and does
 * not stop the others or the SDK.
 *
 * @template {unknown[]} A
 * @param {Iterable<(...args: A) => void>} callbacks
 * @param {A} args
 */
function notify(callbacks, ...args) {
  for (const cb of [...callbacks]) {
    try {
      cb(...args);
    } catch (err) {
      if (typeof globalThis.reportError === "function") {
        globalThis.reportError(err);
      } else {
        console.error("callctl: a callback threw", err);
      }
    }
  }
}

/**
 * Adds cb to set and returns a function that removes it.
 *
 * @template {Function} F
 * @param {Set<F>} set
 * @param {F} cb
 * @param {string} what the method's name, for the error
 * @returns {() => void}
 */
function subscribe(set, cb, what) {
  if (typeof cb !== "function") {
    throw new TypeError(`${what}: callback must be a function`);
  }
  set.add(cb);
  return () => {
    set.delete(cb);
  };
}

/**
 * A party of a call as the API shows it.
 *
 * @typedef {object} PartySnapshot
 * @property {string} number the party's number (caller: From user; callee: the number called)
 * @property {string} [displayName] the display name, if the party sent one
 * @property {string} [legId] callctl's id of the party's leg
 * @property {string} [callId] the SIP Call-ID of the party's leg
 */

/**
 * A transfer or forward under way, or the last news of one that ended.
 *
 * @typedef {object} TransferSnapshot
 * @property {string} [transferor] the number that asked for the transfer
 * @property {string} target the transfer target
 * @property {string} [progress] the latest news, e.g. "REFER sent" or a NOTIFY's sipfrag line
 * @property {number} [status] the SIP status of that news
 */

/**
 * One leg's media counters as callctl saw them.
 *
 * @typedef {object} LegStats
 * @property {"caller" | "callee"} role
 * @property {number} packetsIn
 * @property {number} packetsOut
 * @property {number} bytesIn
 * @property {number} bytesOut
 * @property {number} lost
 */

/**
 * A session as the API shows it (GET /api/v1/sessions/{id}, and the
 * `session` of every event).
 *
 * @typedef {object} SessionSnapshot
 * @property {string} id the session id
 * @property {SessionStateName} state
 * @property {PartySnapshot} caller
 * @property {PartySnapshot} callee
 * @property {string} dialled the number the caller dialled
 * @property {string} start when the call arrived (RFC 3339)
 * @property {string} [answer] when it was answered
 * @property {string} [end] when it ended
 * @property {string} stateSince when it entered its state
 * @property {string} [endReason] why it ended
 * @property {TransferSnapshot} [transfer] the transfer or forward, if any
 * @property {LegStats[]} [legs] media counters per leg
 * @property {number} [talkDuration] seconds since answer, at the time of a REST answer
 * @property {number} [stateDuration] seconds in the state, at the time of a REST answer
 * @property {number} [listeners] how many listen-ins the call has (all clients)
 */

/**
 * A listen-in that started or stopped (events LISTEN_STARTED, LISTEN_STOPPED).
 *
 * @typedef {object} ListenInfo
 * @property {string} listenId the listen id startListen() got
 * @property {string} [client] the name of the client listening
 * @property {string} [reason] why it stopped (LISTEN_STOPPED), e.g. stopped, call ended, ICE failed
 */

/**
 * One message of the event stream: a state change, an operation's outcome,
 * a DTMF digit a party sent, or a listen-in that started or stopped.
 *
 * @typedef {object} SessionEvent
 * @property {number} seq the event's sequence number; it only grows
 * @property {"STATE_CHANGED" | "OPERATION" | "DTMF_RECEIVED" | "LISTEN_STARTED" | "LISTEN_STOPPED" | "RECOVERED"} type
 * @property {string} sessionId
 * @property {SessionStateName} state the session's state after the event
 * @property {SessionStateName} [previous] the state before (STATE_CHANGED)
 * @property {string} [reason] why the state changed
 * @property {string} time when it happened (RFC 3339)
 * @property {SessionSnapshot} session the session after the event
 * @property {{name: string, args?: Record<string, string>, result: string, error?: string}} [operation]
 * @property {{digit: string, party: string, role: string}} [dtmf]
 * @property {ListenInfo} [listen] the listen-in (LISTEN_STARTED, LISTEN_STOPPED)
 */

/**
 * The server's answer to an operation.
 *
 * @typedef {object} OperationResult
 * @property {boolean} ok always true (failures reject)
 * @property {SessionSnapshot} session the session after the operation
 */

/**
 * @callback SessionStateChangedCallback
 * @param {Session} session the session that changed
 * @param {SessionStateName} state its new state
 * @returns {void}
 */

/**
 * @callback SessionCallback
 * @param {Session} session
 * @returns {void}
 */

/**
 * @callback ConnectionStateChangedCallback
 * @param {ConnectionStateName} state
 * @param {CallctlError} [error] why the client closed, when callctl refused it
 * @returns {void}
 */

/**
 * @callback EventCallback
 * @param {SessionEvent} event the event as the server sent it
 * @param {Session | undefined} session the SDK's Session for it, if it knows one
 * @returns {void}
 */

/**
 * Options of connect().
 *
 * @typedef {object} ConnectOptions
 * @property {typeof fetch} [fetch] the fetch to use (default: globalThis.fetch)
 * @property {typeof WebSocket} [WebSocket] the WebSocket class to use (default: globalThis.WebSocket)
 * @property {number} [reconnectDelay] ms before the first reconnect attempt; doubled after each failure (default 500)
 * @property {number} [maxReconnectDelay] the longest wait between attempts, in ms (default 15000)
 * @property {"protocol" | "query"} [tokenTransport] how the WebSocket carries the token:
 *   "protocol" (default) offers Sec-WebSocket-Protocol "bearer.<token>" beside "callctl.v1";
 *   "query" sends ?access_token=, which ends up in logs. A token with characters a
 *   subprotocol cannot hold falls back to "query".
 * @property {ConnectionStateChangedCallback} [onConnectionStateChanged] registered before
 *   connecting, so it also sees "connecting"
 */

/**
 * Connects to callctl: asks who the token's client is (GET /api/v1/me: its
 * name and privileges), loads the sessions the token may see and opens the
 * event stream, which the client keeps open, reconnecting with backoff and
 * resuming after the last event it got.
 *
 * @param {string} url callctl's base URL, e.g. "https://callctl.example:8080" or location.origin
 * @param {string} token a bearer token of a client with at least sessions.view
 * @param {ConnectOptions} [options]
 * @returns {Promise<Client>} resolves once the sessions are loaded and events flow;
 *   rejects with a CallctlError (e.g. status 401 for a bad token)
 */
export async function connect(url, token, options = {}) {
  const client = new Client(url, token, options);
  await client._start();
  return client;
}

/**
 * A connection to callctl. Made by connect().
 *
 * Keeps the sessions the token may see: live ones in sessions(), and those
 * that ended recently in getSession() too.
 *
 * @hideconstructor
 */
export class Client {
  /** @type {string} */ #base;
  /** @type {string} */ #token;
  /** @type {typeof fetch} */ #fetch;
  /** @type {typeof WebSocket} */ #WebSocket;
  /** @type {number} */ #minDelay;
  /** @type {number} */ #maxDelay;
  /** @type {boolean} */ #tokenInQuery;

  /** @type {ConnectionStateName} */ #state = ConnectionState.CONNECTING;
  /** @type {WebSocket | null} */ #ws = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #retryTimer;
  /** @type {number} */ #attempt = 0;
  /** @type {number} */ #lastSeq = 0;
  /** Whether the next HELLO must be followed by a REST reload (first connect, lost state). */
  #needsReload = true;
  /** Events that arrived while a reload was under way, applied after it. @type {SessionEvent[] | null} */
  #queue = null;
  /** Server clock minus local clock, in ms, estimated from REST answers. */
  #clockOffset = 0;

  /** The client's name, from GET /api/v1/me; "" when callctl did not say. */
  #name = "";
  /** The client's privileges, from GET /api/v1/me; null when callctl did not say. @type {readonly string[] | null} */
  #privileges = null;
  /** The client's scope (number patterns); null when callctl did not say. @type {readonly string[] | null} */
  #scope = null;
  /** The patterns of the numbers the client may transfer or forward to; null when callctl did not say. @type {readonly string[] | null} */
  #targets = null;

  /** Live sessions by id. @type {Map<string, Session>} */
  #live = new Map();
  /** Recently ended sessions by id, oldest first. @type {Map<string, Session>} */
  #ended = new Map();

  /** @type {Set<SessionCallback>} */ #created = new Set();
  /** @type {Set<SessionCallback>} */ #closedCallbacks = new Set();
  /** @type {Set<ConnectionStateChangedCallback>} */ #stateCallbacks = new Set();
  /** @type {Set<EventCallback>} */ #eventCallbacks = new Set();

  /** Settles connect(). @type {{resolve: () => void, reject: (e: unknown) => void} | null} */
  #starting = null;

  /**
   * Use connect() instead.
   *
   * @param {string} url
   * @param {string} token
   * @param {ConnectOptions} options
   */
  constructor(url, token, options) {
    if (typeof url !== "string" || url === "") {
      throw new TypeError("connect: url must be callctl's base URL, e.g. location.origin");
    }
    if (typeof token !== "string" || token === "") {
      throw new TypeError("connect: token must be a non-empty string");
    }
    this.#base = new URL(url, globalThis.location?.href).href.replace(/\/+$/, "");
    this.#token = token;
    // Looked up at each request, so a fetch wrapped later (tests, tracing) is used.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError("connect: no WebSocket in this environment; pass options.WebSocket");
    }
    this.#minDelay = options.reconnectDelay ?? 500;
    this.#maxDelay = options.maxReconnectDelay ?? 15000;
    // A subprotocol is an RFC 7230 token; the WebSocket constructor throws on others.
    this.#tokenInQuery = options.tokenTransport === "query" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(token);
    if (options.onConnectionStateChanged) {
      this.onConnectionStateChanged(options.onConnectionStateChanged);
    }
  }

  /** callctl's base URL, without a trailing slash. @type {string} */
  get url() {
    return this.#base;
  }

  /** The connection state. @type {ConnectionStateName} */
  get connectionState() {
    return this.#state;
  }

  /** The sequence number of the last event received; a reconnect resumes after it. @type {number} */
  get lastSeq() {
    return this.#lastSeq;
  }

  /**
   * The token's client name as callctl knows it (its configuration's name),
   * or "" when callctl did not say (a version without GET /api/v1/me).
   *
   * @type {string}
   */
  get name() {
    return this.#name;
  }

  /**
   * The privileges callctl granted the token (see Privilege), as it said at
   * connect; null when callctl did not say (a version without
   * GET /api/v1/me).
   *
   * @type {readonly string[] | null}
   */
  get privileges() {
    return this.#privileges;
  }

  /**
   * The number patterns that limit which calls the client sees; [] for all
   * calls; null when callctl did not say.
   *
   * @type {readonly string[] | null}
   */
  get scope() {
    return this.#scope;
  }

  /**
   * The number patterns the client may transfer or forward calls to; [] for
   * any target callctl's policy allows; null when callctl did not say.
   *
   * @type {readonly string[] | null}
   */
  get targets() {
    return this.#targets;
  }

  /**
   * Reports whether the client holds privilege (a Privilege value, e.g.
   * "sessions.hold"), as callctl said at connect. When callctl did not say
   * (privileges is null) it answers true: a page then offers everything and
   * callctl, which checks every request, refuses what is not allowed.
   *
   * @param {string} privilege
   * @returns {boolean}
   */
  can(privilege) {
    return this.#privileges === null || this.#privileges.includes(privilege);
  }

  /**
   * The live sessions, oldest first.
   *
   * @returns {Session[]}
   */
  sessions() {
    return [...this.#live.values()].sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  }

  /**
   * The session with this id, live or recently ended.
   *
   * @param {string} id a session id
   * @returns {Session | undefined}
   */
  getSession(id) {
    return this.#live.get(id) ?? this.#ended.get(id);
  }

  /**
   * Calls callback with each new session: one that starts while connected,
   * or one found live when the client reloads after losing events.
   *
   * @param {SessionCallback} callback
   * @returns {() => void} a function that removes the callback
   */
  onSessionCreated(callback) {
    return subscribe(this.#created, callback, "onSessionCreated");
  }

  /**
   * Calls callback once for each session that leaves: when it reaches an
   * ended state (hung up, busy, transferred away, …) or CLOSED, whichever
   * comes first, or when a reload finds it gone. It is called after the
   * session's own onSessionStateChanged callbacks.
   *
   * @param {SessionCallback} callback
   * @returns {() => void} a function that removes the callback
   */
  onSessionClosed(callback) {
    return subscribe(this.#closedCallbacks, callback, "onSessionClosed");
  }

  /**
   * Calls callback with each new connection state: "connecting", "open",
   * "reconnecting" or "closed" (see ConnectionState). On "closed" because
   * callctl refused the token, the error says why.
   *
   * @param {ConnectionStateChangedCallback} callback
   * @returns {() => void} a function that removes the callback
   */
  onConnectionStateChanged(callback) {
    return subscribe(this.#stateCallbacks, callback, "onConnectionStateChanged");
  }

  /**
   * Calls callback with every event of the stream, as the server sent it,
   * after the SDK applied it: state changes, operation outcomes
   * (type OPERATION) and DTMF digits the parties sent (DTMF_RECEIVED).
   *
   * @param {EventCallback} callback
   * @returns {() => void} a function that removes the callback
   */
  onEvent(callback) {
    return subscribe(this.#eventCallbacks, callback, "onEvent");
  }

  /**
   * Closes the event stream for good; the state becomes "closed". Sessions
   * stop receiving updates; their methods still reach the server.
   */
  close() {
    this.#shutdown();
  }

  // --- internals, used by Session -------------------------------------

  /**
   * Sends an API request and returns its JSON answer.
   *
   * @internal
   * @param {string} method
   * @param {string} path under the base URL, starting with /
   * @param {object} [body] sent as JSON
   * @returns {Promise<any>} the answer; rejects with a CallctlError
   */
  async _request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${this.#token}`, Accept: "application/json" };
    /** @type {RequestInit} */
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await this.#fetch(this.#base + path, init);
    } catch (err) {
      throw new CallctlError({
        code: "network",
        message: `${method} ${path}: callctl did not answer: ${err instanceof Error ? err.message : String(err)}`,
        cause: err,
      });
    }
    const text = await res.text().catch(() => "");
    let data;
    try {
      data = text === "" ? undefined : JSON.parse(text);
    } catch {
      data = undefined;
    }
    if (!res.ok) {
      const e = data?.error;
      throw new CallctlError({
        code: typeof e?.code === "string" ? e.code : `http_${res.status}`,
        message:
          typeof e?.message === "string" && e.message !== ""
            ? e.message
            : `${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim(),
        field: typeof e?.field === "string" ? e.field : "",
        status: res.status,
        sipStatus: typeof e?.sipStatus === "number" ? e.sipStatus : 0,
      });
    }
    return data;
  }

  /**
   * Notes the server's clock from a session view a REST answer carried.
   *
   * @internal
   * @param {SessionSnapshot | undefined} view
   * @param {number} receivedAt local time of the answer, in ms
   */
  _learnClock(view, receivedAt) {
    if (!view || view.end || typeof view.stateDuration !== "number") {
      return;
    }
    const since = parseTime(view.stateSince);
    if (!Number.isNaN(since)) {
      this.#clockOffset = since + view.stateDuration * 1000 - receivedAt;
    }
  }

  /**
   * The server's time now, in ms, as best known.
   *
   * @internal
   * @returns {number}
   */
  _serverNow() {
    return Date.now() + this.#clockOffset;
  }

  /**
   * Runs the first connection; settles connect().
   *
   * @internal
   * @returns {Promise<void>}
   */
  async _start() {
    this.#setState(ConnectionState.CONNECTING);
    try {
      await this.#loadIdentity();
    } catch (err) {
      this.#shutdown(err instanceof CallctlError ? err : undefined);
      throw err;
    }
    if (this.#closed()) {
      throw new CallctlError({ code: "closed", message: "connect: the client was closed while connecting" });
    }
    return new Promise((resolve, reject) => {
      this.#starting = { resolve, reject };
      this.#open();
    });
  }

  /**
   * Asks callctl who the token's client is. A callctl without
   * GET /api/v1/me (404) leaves the name and privileges unknown; a refused
   * token rejects.
   */
  async #loadIdentity() {
    let me;
    try {
      me = await this._request("GET", "/api/v1/me");
    } catch (err) {
      if (err instanceof CallctlError && (err.status === 404 || err.status === 405)) {
        return;
      }
      throw err;
    }
    /** @param {unknown} list */
    const strings = (list) => (Array.isArray(list) ? Object.freeze(list.filter((x) => typeof x === "string")) : null);
    this.#name = typeof me?.name === "string" ? me.name : "";
    this.#privileges = strings(me?.privileges);
    this.#scope = strings(me?.scope);
    this.#targets = strings(me?.targets);
  }

  // --- the event stream ------------------------------------------------

  /** @param {ConnectionStateName} state @param {CallctlError} [error] */
  #setState(state, error) {
    if (this.#state === state && state !== ConnectionState.CONNECTING) {
      return;
    }
    this.#state = state;
    notify(this.#stateCallbacks, state, error);
  }

  /** @returns {boolean} whether the client is closed for good (read anew after each await) */
  #closed() {
    return this.#state === ConnectionState.CLOSED;
  }

  /** Opens the WebSocket: fresh when state was lost, else resuming after lastSeq. */
  #open() {
    const u = new URL(this.#base + "/api/v1/events");
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (!this.#needsReload) {
      u.searchParams.set("since", String(this.#lastSeq));
    }
    /** @type {string[]} */
    const protocols = ["callctl.v1"];
    if (this.#tokenInQuery) {
      u.searchParams.set("access_token", this.#token);
    } else {
      protocols.push(`bearer.${this.#token}`);
    }
    let ws;
    try {
      ws = new this.#WebSocket(u.href, protocols);
    } catch (err) {
      this.#streamFailed(false, err);
      return;
    }
    this.#ws = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) {
        return;
      }
      let msg;
      try {
        msg = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
      } catch {
        return; // not ours
      }
      if (msg.type === "HELLO") {
        greeted = true;
      }
      this.#handle(msg);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) {
        return;
      }
      this.#ws = null;
      this.#streamFailed(greeted, new Error(`event stream closed (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`));
    };
    // An error is always followed by close, which does the work.
    ws.onerror = () => {};
  }

  /**
   * The stream closed or could not open. Before any HELLO the cause may be
   * the token: a REST request tells (browsers hide the handshake's status).
   *
   * @param {boolean} greeted whether the stream had said HELLO
   * @param {unknown} cause
   */
  async #streamFailed(greeted, cause) {
    if (this.#closed()) {
      return;
    }
    if (this.#queue !== null) {
      // A reload was cut short: the next stream starts afresh.
      this.#queue = null;
      this.#needsReload = true;
    }
    /** @type {CallctlError | undefined} */
    let refused;
    if (!greeted) {
      try {
        await this._request("GET", "/api/v1/sessions?state=" + SessionState.SETUP);
      } catch (err) {
        if (err instanceof CallctlError) {
          refused = err;
        }
      }
      if (this.#closed()) {
        return;
      }
    }
    if (this.#starting) {
      // connect() reports the first failure rather than retrying.
      const err =
        refused ??
        new CallctlError({
          code: "unavailable",
          message: `cannot open the event stream at ${this.#base}/api/v1/events: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause,
        });
      const { reject } = this.#starting;
      this.#starting = null;
      this.#shutdown(err);
      reject(err);
      return;
    }
    if (refused && (refused.status === 401 || refused.status === 403)) {
      this.#shutdown(refused);
      return;
    }
    this.#setState(ConnectionState.RECONNECTING);
    const base = Math.min(this.#maxDelay, this.#minDelay * 2 ** this.#attempt);
    this.#attempt++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed()) {
        this.#open();
      }
    }, delay);
  }

  /** @param {CallctlError} [error] */
  #shutdown(error) {
    if (this.#closed()) {
      return;
    }
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#ws = null;
    this.#queue = null;
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    this.#setState(ConnectionState.CLOSED, error);
  }

  /** @param {any} msg a message of the stream */
  #handle(msg) {
    switch (msg.type) {
      case "HELLO": {
        this.#attempt = 0;
        // A HELLO behind our last seq means callctl restarted and numbers anew.
        if (this.#needsReload || msg.seq < this.#lastSeq) {
          this.#lastSeq = msg.seq;
          this.#reload();
        } else {
          this.#opened();
        }
        return;
      }
      case "RESUME_FAILED":
        // Too far behind: what we missed is gone, so reload the sessions
        // and go on from the seq the server gives.
        this.#lastSeq = msg.seq;
        this.#reload();
        return;
      case "STATE_CHANGED":
      case "OPERATION":
      case "DTMF_RECEIVED":
      case "LISTEN_STARTED":
      case "LISTEN_STOPPED":
      case "RECOVERED": {
        if (typeof msg.seq !== "number" || msg.seq <= this.#lastSeq) {
          return; // already seen
        }
        this.#lastSeq = msg.seq;
        if (this.#queue !== null) {
          this.#queue.push(msg);
        } else {
          this.#apply(msg);
        }
        return;
      }
      default:
      // A message type this SDK does not know yet: ignore it.
    }
  }

  #opened() {
    this.#setState(ConnectionState.OPEN);
    if (this.#starting) {
      const { resolve } = this.#starting;
      this.#starting = null;
      resolve();
    }
  }

  /**
   * Reloads the sessions over REST while queueing the stream's events, then
   * applies the queue: what the events say is newer than the list.
   */
  async #reload() {
    if (this.#queue !== null) {
      return; // one is under way; it will apply what arrives meanwhile
    }
    this.#queue = [];
    const ws = this.#ws;
    let list;
    try {
      const data = await this._request("GET", "/api/v1/sessions");
      const at = Date.now();
      list = Array.isArray(data?.sessions) ? data.sessions : [];
      for (const view of list) {
        this._learnClock(view, at);
      }
    } catch (err) {
      if (this.#ws !== ws || this.#closed()) {
        return;
      }
      this.#queue = null;
      this.#needsReload = true;
      if (this.#starting) {
        const { reject } = this.#starting;
        this.#starting = null;
        this.#shutdown(err instanceof CallctlError ? err : undefined);
        reject(err);
        return;
      }
      // Try again from a fresh stream.
      this.#ws = null;
      ws?.close(1000, "reloading");
      this.#streamFailed(true, err);
      return;
    }
    if (this.#ws !== ws || this.#closed()) {
      return; // the stream dropped meanwhile; its close handles it
    }
    const queued = this.#queue;
    this.#queue = null;
    this.#needsReload = false;

    const seen = new Set();
    for (const view of list) {
      seen.add(view.id);
      this.#merge(view);
    }
    for (const s of [...this.#live.values()]) {
      if (!seen.has(s.sessionId)) {
        this.#leave(s); // ended and released while we were away
      }
    }
    for (const ev of queued) {
      this.#apply(ev);
    }
    this.#opened();
  }

  /**
   * Takes a session view from REST into the sessions.
   *
   * @param {SessionSnapshot} view
   */
  #merge(view) {
    const s = this.getSession(view.id);
    if (!s) {
      const n = new Session(this, view);
      if (isEndedState(view.state)) {
        this.#remember(n);
        n._markClosed();
      } else {
        this.#live.set(view.id, n);
        notify(this.#created, n);
      }
      return;
    }
    this.#update(s, view);
  }

  /** @param {SessionEvent} ev */
  #apply(ev) {
    let s = this.getSession(ev.sessionId);
    const snap = ev.session && typeof ev.session === "object" ? ev.session : null;
    if (!s) {
      if (snap && !isEndedState(snap.state)) {
        s = new Session(this, snap);
        this.#live.set(s.sessionId, s);
        notify(this.#created, s);
      }
    } else if (snap) {
      this.#update(s, snap);
    }
    if (s && ev.type === "LISTEN_STOPPED" && ev.listen) {
      s._listenStopped(ev.listen);
    }
    notify(this.#eventCallbacks, ev, s);
  }

  /**
   * Applies a newer snapshot to a known session, telling its listeners and
   * the client's of what changed.
   *
   * @param {Session} s
   * @param {SessionSnapshot} snap
   */
  #update(s, snap) {
    const before = s.sessionState;
    s._setRaw(snap);
    const state = s.sessionState;
    if (state === before) {
      return;
    }
    s._changed(state);
    if (isEndedState(state)) {
      this.#leave(s);
    }
  }

  /**
   * Moves a session out of the live ones and tells onSessionClosed, once.
   *
   * @param {Session} s
   */
  #leave(s) {
    const id = s.sessionId;
    this.#live.delete(id);
    s._sessionEnded();
    if (s.sessionState === SessionState.CLOSED) {
      this.#ended.delete(id); // released: the server forgets it too
    } else {
      this.#remember(s);
    }
    if (s._markClosed()) {
      notify(this.#closedCallbacks, s);
    }
  }

  /**
   * Keeps an ended session readable with getSession(), the last 500 only.
   *
   * @param {Session} s
   */
  #remember(s) {
    this.#ended.delete(s.sessionId);
    this.#ended.set(s.sessionId, s);
    while (this.#ended.size > 500) {
      const oldest = this.#ended.keys().next().value;
      if (oldest === undefined) {
        break;
      }
      this.#ended.delete(oldest);
    }
  }
}

/**
 * A session of a call: the seed's Session class. Got from
 * Client.sessions(), Client.getSession() and Client.onSessionCreated(); kept
 * current by the client's event stream.
 *
 * Operations need the matching privilege of the token's client (hold and
 * unhold: sessions.hold; blindTransfer: sessions.transfer; forward:
 * sessions.forward; hangup, close, closeWithHangup: sessions.hangup;
 * sendDtmf: sessions.dtmf; startListen, stopListen: sessions.listen). Each
 * returns a Promise of the server's answer that rejects with a CallctlError
 * (status 403 without the privilege, 409 in the wrong state, 502 when a
 * party refused, 504 on a timeout). The session's state changes arrive
 * through onSessionStateChanged, not through the promise.
 *
 * @hideconstructor
 */
export class Session {
  /** @type {Client} */ #client;
  /** @type {SessionSnapshot} */ #raw;
  /** @type {Set<SessionStateChangedCallback>} */ #callbacks = new Set();
  /** Whether onSessionClosed was told. */
  #closedNotified = false;
  /**
   * This client's listen-in on the session, starting or running, and the
   * promise startListen() returned for it.
   *
   * @type {{listen: Listen, promise: Promise<Listen>} | null}
   */
  #listenIn = null;

  /**
   * Made by the Client; do not construct.
   *
   * @param {Client} client
   * @param {SessionSnapshot} snapshot
   */
  constructor(client, snapshot) {
    this.#client = client;
    this.#raw = snapshot;
  }

  /** The session id. @type {string} */
  get sessionId() {
    return this.#raw.id;
  }

  /** The session's state. @type {SessionStateName} */
  get sessionState() {
    return this.#raw.state;
  }

  /** The caller's number (the caller ID). @type {string} */
  get caller() {
    return this.#raw.caller?.number ?? "";
  }

  /** The callee's number (the callee ID; after a transfer, the new party). @type {string} */
  get callee() {
    return this.#raw.callee?.number ?? "";
  }

  /** The caller's display name, or "". @type {string} */
  get callerDisplayName() {
    return this.#raw.caller?.displayName ?? "";
  }

  /** The callee's display name, or "". @type {string} */
  get calleeDisplayName() {
    return this.#raw.callee?.displayName ?? "";
  }

  /** The number the caller dialled. @type {string} */
  get dialedNumber() {
    return this.#raw.dialled ?? "";
  }

  /** When the call arrived. @type {Date} */
  get startTime() {
    return new Date(parseTime(this.#raw.start));
  }

  /** When the call was answered, or null. @type {Date | null} */
  get answerTime() {
    const t = parseTime(this.#raw.answer);
    return Number.isNaN(t) ? null : new Date(t);
  }

  /** When the call ended, or null while it is live. @type {Date | null} */
  get endTime() {
    const t = parseTime(this.#raw.end);
    return Number.isNaN(t) ? null : new Date(t);
  }

  /** Why the call ended, or "". @type {string} */
  get endReason() {
    return this.#raw.endReason ?? "";
  }

  /**
   * Seconds of talk: from answer to now (to the end, once ended); 0 if
   * never answered. Fractional; computed at each read.
   *
   * @type {number}
   */
  get talkDuration() {
    const answer = parseTime(this.#raw.answer);
    if (Number.isNaN(answer)) {
      return 0;
    }
    return Math.max(0, (this.#until() - answer) / 1000);
  }

  /**
   * Seconds in the current state, to now (to the end, once ended).
   * Fractional; computed at each read.
   *
   * @type {number}
   */
  get stateDuration() {
    const since = parseTime(this.#raw.stateSince);
    if (Number.isNaN(since)) {
      return 0;
    }
    return Math.max(0, (this.#until() - since) / 1000);
  }

  /**
   * How many listen-ins the call has, from all clients (this one's
   * included), as of the last snapshot.
   *
   * @type {number}
   */
  get listeners() {
    const n = this.#raw.listeners;
    return typeof n === "number" && n > 0 ? n : 0;
  }

  /**
   * This client's listen-in on the session once startListen() resolved and
   * until it ends; null otherwise.
   *
   * @type {Listen | null}
   */
  get listen() {
    const l = this.#listenIn?.listen;
    return l && l.listening ? l : null;
  }

  /**
   * The last snapshot of the session the server sent (REST or event), as
   * JSON: every field the API has. Do not modify it.
   *
   * @type {SessionSnapshot}
   */
  get raw() {
    return this.#raw;
  }

  /** @returns {number} the end time, or the server's now while live */
  #until() {
    const end = parseTime(this.#raw.end);
    return Number.isNaN(end) ? this.#client._serverNow() : end;
  }

  /**
   * Holds both call parties (re-INVITE with a=sendonly to each; music on
   * hold) → ON_HOLD. Needs sessions.hold.
   *
   * @returns {Promise<OperationResult>}
   */
  hold() {
    return this.#op("hold");
  }

  /**
   * Unholds both call parties → IN_CALL. Needs sessions.hold.
   *
   * @returns {Promise<OperationResult>}
   */
  unhold() {
    return this.#op("unhold");
  }

  /**
   * Transfers the call blindly: the party that is not the transferor is sent
   * to phoneNumber (REFER), and the transferor's leg ends. Needs
   * sessions.transfer.
   *
   * @param {string} transferor the transferor number: the caller ID or the callee ID
   * @param {string} phoneNumber the target party
   * @returns {Promise<OperationResult>} resolves when the transfer completed
   * @throws {CallctlError} synchronously (code "invalid_argument", nothing sent) if the
   *   transferor is not the caller ID or the callee ID, or if the phoneNumber was not specified
   */
  blindTransfer(transferor, phoneNumber) {
    const from = this.#party("transferor", transferor);
    const target = numberText(phoneNumber);
    if (target === "") {
      throw argumentError("phoneNumber", "blindTransfer: phoneNumber (the transfer target) was not specified");
    }
    return this.#op("transfer", { transferor: from, target });
  }

  /**
   * Forwards the session to another party: before answer the callee leg is
   * cancelled and phoneNumber rung (REDIRECTED); in a call, as
   * blindTransfer(callee, phoneNumber). Needs sessions.forward.
   *
   * @param {string} phoneNumber the target party
   * @returns {Promise<OperationResult>}
   * @throws {CallctlError} synchronously (code "invalid_argument", nothing sent) if the
   *   phoneNumber was not specified
   */
  forward(phoneNumber) {
    const target = numberText(phoneNumber);
    if (target === "") {
      throw argumentError("phoneNumber", "forward: phoneNumber (the forward target) was not specified");
    }
    return this.#op("forward", { target });
  }

  /**
   * Hangs the call up (BYE to answered legs, CANCEL or 487 to ringing ones)
   * → HUNG_UP; the session stays readable. Needs sessions.hangup.
   *
   * @returns {Promise<OperationResult>}
   */
  hangup() {
    return this.#op("hangup");
  }

  /**
   * Closes the session at once, terminating the call without waiting for
   * the parties → CLOSED. Works in any state. Needs sessions.hangup.
   *
   * @returns {Promise<OperationResult>}
   */
  close() {
    return this.#op("close");
  }

  /**
   * Hangs up, waits for it, then closes the session → CLOSED. Needs
   * sessions.hangup.
   *
   * @returns {Promise<OperationResult>}
   */
  closeWithHangup() {
    return this.#op("close-with-hangup");
  }

  /**
   * Sends DTMF to one of the call parties (RFC 4733 events in its RTP, or
   * SIP INFO where it has no telephone-event). Needs sessions.dtmf.
   *
   * @param {string} key the DTMF key: 0-9, *, #, A-D; a string of several keys sends them in turn
   * @param {string} phoneNumber the party that receives it: the caller ID or the callee ID
   * @returns {Promise<OperationResult>} resolves when the keys were sent
   * @throws {CallctlError} synchronously (code "invalid_argument", nothing sent) if the key
   *   was not specified or is not a DTMF key, or if phoneNumber is not the caller ID or the callee ID
   */
  sendDtmf(key, phoneNumber) {
    const keys = typeof key === "number" && Number.isInteger(key) && key >= 0 && key <= 9 ? String(key) : key;
    if (typeof keys !== "string" || keys === "") {
      throw argumentError("key", "sendDtmf: key was not specified; want one or more of 0-9, *, #, A-D");
    }
    if (!dtmfKeys.test(keys)) {
      throw argumentError("key", `sendDtmf: key ${JSON.stringify(keys)} is not a DTMF key; want one or more of 0-9, *, #, A-D`);
    }
    const party = this.#party("phoneNumber", phoneNumber);
    return this.#op("dtmf", keys.length === 1 ? { key: keys, party } : { keys, party });
  }

  /**
   * Starts listening in on the call: a WebRTC PeerConnection (no ICE
   * servers: host candidates) with two receive-only audio tracks, the caller
   * and the callee, as callctl relays them. The offer is sent once ICE
   * gathering completed (POST /api/v1/sessions/{id}/listen, no trickle); the
   * promise resolves once audio arrives on both tracks (getStats() counts
   * packets received on each). Needs sessions.listen; allowed in IN_CALL and
   * the hold states.
   *
   * One listen-in per session and client: while one is starting or running,
   * startListen() returns the same promise.
   *
   * @param {StartListenOptions} [options]
   * @returns {Promise<Listen>} rejects with a CallctlError: callctl's refusal
   *   (403 without sessions.listen, 409 in the wrong state), code "timeout" when
   *   no audio arrived in time, "aborted" when stopListen() or the end of the
   *   call came first, "webrtc" when the browser's WebRTC failed. On any
   *   rejection the PeerConnection is closed and callctl's listener released.
   * @throws {CallctlError} synchronously (code "invalid_argument", nothing sent) if
   *   options.timeout is not a number of milliseconds above 0
   */
  startListen(options = {}) {
    const timeout = options?.timeout ?? 10000;
    if (typeof timeout !== "number" || !(timeout > 0)) {
      throw argumentError("timeout", `startListen: options.timeout ${JSON.stringify(timeout)} is not a number of milliseconds above 0`);
    }
    if (this.#listenIn) {
      return this.#listenIn.promise;
    }
    const listen = new Listen(this, listenToken, (id) => this.#releaseListen(id));
    const entry = { listen, promise: this.#runListen(listen, options, timeout) };
    this.#listenIn = entry;
    const forget = () => {
      if (this.#listenIn === entry) {
        this.#listenIn = null;
      }
    };
    entry.promise.catch(forget);
    listen.ended.then(forget);
    return entry.promise;
  }

  /**
   * Stops this client's listen-in on the session: closes the
   * PeerConnection, then releases callctl's listener
   * (DELETE /api/v1/sessions/{id}/listen/{listenId}). A startListen() still
   * under way rejects with code "aborted". Without a listen-in it does
   * nothing. Needs sessions.listen.
   *
   * @returns {Promise<{ok: boolean}>} resolves once callctl released the listener
   *   (or had already: the call ended, the connection failed)
   */
  async stopListen() {
    const entry = this.#listenIn;
    if (!entry) {
      return { ok: true };
    }
    this.#listenIn = null;
    const { listen } = entry;
    // Silent at once, but the PeerConnection stays open until callctl
    // released the listener: closed first, callctl would end it on the DTLS
    // close and the DELETE would find nothing (the audit trail says who
    // stopped it).
    const wasLive = listen._end("stopped", true);
    try {
      // A POST still under way: wait for its listen id to release it.
      const id = await listen._posted;
      if (!wasLive || id === "") {
        return { ok: true };
      }
      return await this.#releaseListen(id);
    } finally {
      listen._close();
    }
  }

  /**
   * Calls callback(session, state) each time this session's state changes.  /**
   * Calls callback(session, state) each time this session's state changes.
   *
   * @param {SessionStateChangedCallback} callback
   * @returns {() => void} a function that removes the callback
   */
  onSessionStateChanged(callback) {
    return subscribe(this.#callbacks, callback, "onSessionStateChanged");
  }

  /** @returns {string} */
  toString() {
    return `Session ${this.sessionId} ${this.caller} → ${this.callee} ${this.sessionState}`;
  }

  /** @returns {SessionSnapshot} the snapshot, for JSON.stringify */
  toJSON() {
    return this.#raw;
  }

  /**
   * Checks that number is the caller's or the callee's.
   *
   * @param {string} field the argument's name
   * @param {unknown} number
   * @returns {string}
   */
  #party(field, number) {
    const n = numberText(number);
    if (n === "" || (n !== this.caller && n !== this.callee)) {
      const given = n === "" ? "was not specified" : `${JSON.stringify(n)} is neither party of the call`;
      throw argumentError(
        field,
        `${field} ${given}; want the caller ID ${JSON.stringify(this.caller)} or the callee ID ${JSON.stringify(this.callee)}`,
      );
    }
    return n;
  }

  /**
   * Runs startListen(): offer, answer, and the wait for audio.
   *
   * @param {Listen} listen
   * @param {StartListenOptions} options
   * @param {number} timeout ms
   * @returns {Promise<Listen>}
   */
  async #runListen(listen, options, timeout) {
    const deadline = Date.now() + timeout;
    const PeerConnection = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    try {
      if (typeof PeerConnection !== "function") {
        throw new CallctlError({ code: "unsupported", message: "startListen: this environment has no RTCPeerConnection (WebRTC)" });
      }
      /** @type {RTCPeerConnection} */
      let pc;
      try {
        pc = new PeerConnection({ iceServers: [] });
      } catch (err) {
        throw webrtcError("creating the RTCPeerConnection", err);
      }
      listen._setPeerConnection(pc);
      /** The answer's stream id ("caller", "callee") of each transceiver's track. @type {Map<RTCRtpTransceiver, string>} */
      const streamOf = new Map();
      pc.addEventListener("track", (ev) => {
        const id = ev.streams?.[0]?.id;
        if (ev.transceiver && id) {
          streamOf.set(ev.transceiver, id);
        }
      });
      let offer;
      try {
        pc.addTransceiver("audio", { direction: "recvonly" });
        pc.addTransceiver("audio", { direction: "recvonly" });
        offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
      } catch (err) {
        throw webrtcError("making the offer", err);
      }
      await iceGathered(pc, Math.min(3000, Math.max(0, deadline - Date.now())));
      listen._check();

      const answer = await this.#client._request("POST", `${this.#path()}/listen`, { type: "offer", sdp: pc.localDescription?.sdp ?? offer.sdp });
      const id = typeof answer?.listenId === "string" ? answer.listenId : "";
      listen._setPosted(id);
      if (id === "" || typeof answer?.sdp !== "string") {
        throw new CallctlError({ code: "bad_answer", message: "startListen: callctl's answer has no listenId or no sdp" });
      }
      listen._check();
      try {
        await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      } catch (err) {
        throw webrtcError("applying callctl's answer", err);
      }
      listen._check();

      // The answer names the tracks' streams "caller" and "callee"; without
      // those, its first audio track is the caller's and the second the callee's.
      const transceivers = pc.getTransceivers().filter((t) => t.receiver.track?.kind === "audio");
      const byStream = (/** @type {string} */ name) => transceivers.find((t) => streamOf.get(t) === name);
      const callerT = byStream("caller") ?? transceivers[0];
      const calleeT = byStream("callee") ?? transceivers.find((t) => t !== callerT);
      if (!callerT || !calleeT) {
        throw new CallctlError({ code: "bad_answer", message: "startListen: callctl's answer has fewer than two audio tracks" });
      }
      listen._setTracks(callerT.receiver, calleeT.receiver);
      await audioArriving(listen, pc, [callerT.receiver, calleeT.receiver], deadline, timeout);
      return listen;
    } catch (err) {
      // Released here unless stopListen() (which releases) or callctl (the
      // call ended) got there first. A stopListen() waiting for the POST
      // learns here that there is nothing to release.
      listen._setPosted(listen.listenId);
      if (listen._end("failed")) {
        if (listen.listenId !== "") {
          this.#releaseListen(listen.listenId).catch(() => {});
        }
      } else if (!(err instanceof CallctlError && err.status !== 0)) {
        // Stopped meanwhile (which may have made WebRTC calls fail): say so.
        listen._check();
      }
      if (err instanceof CallctlError) {
        throw err;
      }
      throw webrtcError("listening in", err);
    }
  }

  /**
   * DELETEs the listener; one callctl no longer has (404) counts as released.
   *
   * @param {string} id a listen id
   * @returns {Promise<{ok: boolean}>}
   */
  async #releaseListen(id) {
    try {
      const answer = await this.#client._request("DELETE", `${this.#path()}/listen/${encodeURIComponent(id)}`);
      return answer ?? { ok: true };
    } catch (err) {
      if (err instanceof CallctlError && err.status === 404) {
        return { ok: true };
      }
      throw err;
    }
  }

  /** @returns {string} */
  #path() {
    return `/api/v1/sessions/${encodeURIComponent(this.sessionId)}`;
  }

  /**
   * @param {string} name the operation's route
   * @param {object} [body]
   * @returns {Promise<OperationResult>}
   */
  async #op(name, body) {
    const answer = await this.#client._request("POST", `${this.#path()}/${name}`, body);
    this.#client._learnClock(answer?.session, Date.now());
    return answer;
  }

  /** @internal @param {SessionSnapshot} snap */
  _setRaw(snap) {
    this.#raw = snap;
  }

  /** @internal @param {SessionStateName} state */
  _changed(state) {
    notify(this.#callbacks, this, state);
  }

  /**
   * Marks the session as announced closed.
   *
   * @internal
   * @returns {boolean} whether it was not already
   */
  _markClosed() {
    const first = !this.#closedNotified;
    this.#closedNotified = true;
    return first;
  }

  /**
   * callctl said a listen-in stopped (LISTEN_STOPPED): if it is this
   * client's, it ends here too.
   *
   * @internal
   * @param {ListenInfo} info
   */
  _listenStopped(info) {
    const listen = this.#listenIn?.listen;
    if (listen && info.listenId !== "" && listen.listenId === info.listenId) {
      listen._end(info.reason || "stopped by callctl");
    }
  }

  /**
   * The call ended: callctl drops its listeners and says so
   * (LISTEN_STOPPED, with its reason). Should that not come, the
   * listen-in ends here a moment later anyway.
   *
   * @internal
   */
  _sessionEnded() {
    const listen = this.#listenIn?.listen;
    if (listen) {
      const state = this.sessionState;
      setTimeout(() => listen._end(`call ended (${state})`), listenGraceMs);
    }
  }
}

/** How long a listen-in waits for callctl's LISTEN_STOPPED once its call ended. */
const listenGraceMs = 2000;

/** Lets only the SDK construct a Listen. */
const listenToken = Symbol("callctl.Listen");

/**
 * Options of Session.startListen().
 *
 * @typedef {object} StartListenOptions
 * @property {number} [timeout] ms to wait for audio on both tracks before rejecting (default 10000)
 * @property {typeof RTCPeerConnection} [RTCPeerConnection] the RTCPeerConnection class to use
 *   (default: globalThis.RTCPeerConnection)
 */

/**
 * A listen-in on a call, resolved by Session.startListen(): the
 * PeerConnection and its two receive-only audio tracks, the caller and the
 * callee. Ends on stop() (or the session's stopListen()), when the call
 * ends, when callctl stops it, or when the connection fails; then the
 * PeerConnection is closed and `ended` resolves with why.
 *
 * @hideconstructor
 */
export class Listen {
  /** @type {Session} */ #session;
  /** @type {RTCPeerConnection | null} */ #pc = null;
  #listenId = "";
  /** @type {MediaStreamTrack | null} */ #caller = null;
  /** @type {MediaStreamTrack | null} */ #callee = null;
  /** @type {MediaStream | null} */ #stream = null;
  /** Resolved when startListen() got audio. */
  #started = false;
  /** Why it ended, once it did. @type {string | null} */
  #endReason = null;
  /** @type {(reason: string) => void} */ #resolveEnded = () => {};
  /** @type {Promise<string>} */ #ended;
  /** @type {((id: string) => void) | null} */ #resolvePosted = null;
  /** Releases callctl's listener (the session's DELETE). @type {(id: string) => Promise<unknown>} */ #release;
  /** Media elements attach() filled, emptied at the end. @type {Set<HTMLMediaElement>} */
  #attached = new Set();

  /**
   * The listen id once the POST answered, "" if it failed. Set before
   * anything awaits it.
   *
   * @internal
   * @type {Promise<string>}
   */
  _posted;

  /**
   * Made by Session.startListen(); do not construct.
   *
   * @param {Session} session
   * @param {symbol} token
   * @param {(id: string) => Promise<unknown>} release
   */
  constructor(session, token, release) {
    if (token !== listenToken) {
      throw new TypeError("Listen: use Session.startListen()");
    }
    this.#session = session;
    this.#release = release;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
    this._posted = new Promise((resolve) => {
      this.#resolvePosted = resolve;
    });
  }

  /** The session listened to. @type {Session} */
  get session() {
    return this.#session;
  }

  /** callctl's id of the listener (the LISTEN_STARTED/LISTEN_STOPPED events name it). @type {string} */
  get listenId() {
    return this.#listenId;
  }

  /** Both tracks, caller then callee, in one stream (to play both parties). @type {MediaStream} */
  get stream() {
    if (!this.#stream) {
      throw new TypeError("Listen: not started");
    }
    return this.#stream;
  }

  /** The caller's audio. @type {MediaStreamTrack} */
  get caller() {
    if (!this.#caller) {
      throw new TypeError("Listen: not started");
    }
    return this.#caller;
  }

  /** The callee's audio. @type {MediaStreamTrack} */
  get callee() {
    if (!this.#callee) {
      throw new TypeError("Listen: not started");
    }
    return this.#callee;
  }

  /** The RTCPeerConnection to callctl (closed once ended). @type {RTCPeerConnection} */
  get peerConnection() {
    if (!this.#pc) {
      throw new TypeError("Listen: not started");
    }
    return this.#pc;
  }

  /** Whether it is running: started and not ended. @type {boolean} */
  get listening() {
    return this.#started && this.#endReason === null;
  }

  /**
   * Resolves with why the listen-in ended: "stopped" (stop() or
   * stopListen()), "connection failed", "call ended (…)", or callctl's
   * reason from its LISTEN_STOPPED event.
   *
   * @type {Promise<string>}
   */
  get ended() {
    return this.#ended;
  }

  /**
   * Plays both parties in audioElement (sets its srcObject to stream) and
   * returns the element's play() promise, which rejects when the browser
   * blocks autoplay (call it from a click then). The element is emptied
   * when the listen-in ends.
   *
   * @param {HTMLMediaElement} audioElement an <audio> element
   * @returns {Promise<void>}
   */
  attach(audioElement) {
    if (!audioElement || typeof audioElement !== "object" || !("srcObject" in audioElement)) {
      throw new TypeError("attach: audioElement must be an <audio> element");
    }
    audioElement.srcObject = this.stream;
    this.#attached.add(audioElement);
    const played = audioElement.play?.();
    return played instanceof Promise ? played : Promise.resolve();
  }

  /**
   * Stops the listen-in: the session's stopListen().
   *
   * @returns {Promise<{ok: boolean}>}
   */
  stop() {
    if (this.#endReason !== null) {
      return Promise.resolve({ ok: true });
    }
    return this.#session.stopListen();
  }

  /** @internal @param {RTCPeerConnection} pc */
  _setPeerConnection(pc) {
    this.#pc = pc;
    pc.addEventListener("connectionstatechange", () => {
      // While starting, startListen() sees the failure and cleans up.
      if (pc.connectionState === "failed" && this.#started && this._end("connection failed")) {
        // callctl ends its side too when ICE/DTLS fails; the DELETE covers
        // the case it has not noticed yet.
        this.#release(this.#listenId).catch(() => {});
      }
    });
  }

  /** @internal Closes the PeerConnection. */
  _close() {
    try {
      this.#pc?.close();
    } catch {
      // already closed
    }
  }

  /**
   * Settles _posted with the listen id, or "" when no POST answered; only
   * the first call counts.
   *
   * @internal
   * @param {string} id
   */
  _setPosted(id) {
    if (this.#resolvePosted) {
      this.#listenId = id;
      this.#resolvePosted(id);
      this.#resolvePosted = null;
    }
  }

  /** @internal @param {RTCRtpReceiver} caller @param {RTCRtpReceiver} callee */
  _setTracks(caller, callee) {
    this.#caller = caller.track;
    this.#callee = callee.track;
    this.#stream = new MediaStream([caller.track, callee.track]);
  }

  /**
   * Throws the "aborted" error if the listen-in ended while starting;
   * otherwise marks nothing.
   *
   * @internal
   */
  _check() {
    if (this.#endReason !== null) {
      throw new CallctlError({ code: "aborted", message: `startListen: stopped before audio arrived (${this.#endReason})` });
    }
  }

  /** @internal */
  _markStarted() {
    this.#started = true;
  }

  /**
   * Ends the listen-in here: closes the PeerConnection (or, with keepOpen,
   * only silences its tracks: then _close() closes it), empties attached
   * elements, resolves ended. Releasing callctl's listener is the caller's.
   *
   * @internal
   * @param {string} reason
   * @param {boolean} [keepOpen]
   * @returns {boolean} whether it was not already ended
   */
  _end(reason, keepOpen = false) {
    if (this.#endReason !== null) {
      return false;
    }
    this.#endReason = reason;
    if (keepOpen) {
      for (const track of [this.#caller, this.#callee]) {
        if (track) {
          track.enabled = false;
        }
      }
    } else {
      this._close();
    }
    for (const el of this.#attached) {
      if (el.srcObject === this.#stream) {
        el.srcObject = null;
      }
    }
    this.#attached.clear();
    this.#resolveEnded(reason);
    return true;
  }
}

/**
 * Wraps a WebRTC failure of the browser.
 *
 * @param {string} doing what startListen was doing
 * @param {unknown} err
 * @returns {CallctlError}
 */
function webrtcError(doing, err) {
  return new CallctlError({
    code: "webrtc",
    message: `startListen: ${doing} failed: ${err instanceof Error ? err.message : String(err)}`,
    cause: err,
  });
}

/**
 * Waits until pc's ICE gathering completes, or ms passed: the offer is then
 * sent with the candidates it has (callctl does not trickle).
 *
 * @param {RTCPeerConnection} pc
 * @param {number} ms
 * @returns {Promise<void>}
 */
function iceGathered(pc, ms) {
  if (pc.iceGatheringState === "complete") {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") {
        done();
      }
    };
    /** @param {RTCPeerConnectionIceEvent} ev */
    const onCandidate = (ev) => {
      if (!ev.candidate) {
        done();
      }
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/**
 * The RTP packets a receiver got, from its inbound-rtp stats.
 *
 * @param {RTCRtpReceiver} receiver
 * @returns {Promise<number>}
 */
async function packetsReceived(receiver) {
  const report = await receiver.getStats();
  let n = 0;
  report.forEach((/** @type {any} */ st) => {
    if (st.type === "inbound-rtp" && (st.kind ?? st.mediaType) === "audio") {
      n += st.packetsReceived ?? 0;
    }
  });
  return n;
}

/**
 * Polls the receivers' stats until each has received packets; rejects at
 * the deadline, when the connection fails, or when the listen-in ended.
 *
 * @param {Listen} listen
 * @param {RTCPeerConnection} pc
 * @param {RTCRtpReceiver[]} receivers caller, callee
 * @param {number} deadline Date.now() value
 * @param {number} timeout ms, for the message
 */
async function audioArriving(listen, pc, receivers, deadline, timeout) {
  for (;;) {
    listen._check();
    if (pc.connectionState === "failed") {
      throw new CallctlError({ code: "webrtc", message: "startListen: the connection to callctl failed (ICE/DTLS)" });
    }
    const counts = await Promise.all(receivers.map(packetsReceived));
    listen._check();
    if (counts.every((n) => n > 0)) {
      listen._markStarted();
      return;
    }
    if (Date.now() >= deadline) {
      throw new CallctlError({
        code: "timeout",
        message: `startListen: no audio from callctl within ${timeout} ms (connection ${pc.connectionState}; packets received: caller ${counts[0]}, callee ${counts[1]})`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now()))));
  }
}
