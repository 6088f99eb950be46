// SPDX-License-Identifier: Apache-2.0
// TypeScript declarations of the callctl JavaScript SDK (callctl.js beside
// this file, served at /sdk/callctl.js).

/** The session states, as the API spells them. */
export declare const SessionState: Readonly<{
  /** The inbound INVITE arrived; the callee leg is being set up. */
  SETUP: "SETUP";
  /** The callee is ringing. */
  RINGING: "RINGING";
  /** Both parties are connected. */
  IN_CALL: "IN_CALL";
  /** The callee holds the caller. */
  CALLER_ON_HOLD: "CALLER_ON_HOLD";
  /** The caller holds the callee. */
  CALLEE_ON_HOLD: "CALLEE_ON_HOLD";
  /** A client put both parties on hold (hold()). */
  ON_HOLD: "ON_HOLD";
  /** A blind transfer was asked for (REFER sent). */
  TRANSFER_REQUESTED: "TRANSFER_REQUESTED";
  /** The transferee is reaching the target. */
  TRANSFERRING: "TRANSFERRING";
  /** The transfer failed; the session goes back to the state before it. */
  TRANSFER_FAILED: "TRANSFER_FAILED";
  /** Forwarded before answer: ringing the new target. */
  REDIRECTED: "REDIRECTED";
  /** The call was handed away by REFER (ended); a transfer callctl connects itself goes TRANSFERRING → IN_CALL instead. */
  TRANSFER_COMPLETED: "TRANSFER_COMPLETED";
  /** The caller hung up. */
  CALLER_HUNG_UP: "CALLER_HUNG_UP";
  /** The callee hung up. */
  CALLEE_HUNG_UP: "CALLEE_HUNG_UP";
  /** A client hung the call up (hangup()). */
  HUNG_UP: "HUNG_UP";
  /** The session was released (close(), closeWithHangup()); it is no longer readable. */
  CLOSED: "CLOSED";
  /** The callee was busy. */
  BUSY: "BUSY";
  /** The callee does not exist. */
  NOT_FOUND: "NOT_FOUND";
  /** Nobody answered. */
  NOT_ANSWERED: "NOT_ANSWERED";
  /** The caller gave up before answer. */
  CANCELLED: "CANCELLED";
  /** The session ended on an error. */
  ERROR: "ERROR";
  /** callctl stopped while the call was up. */
  ABORTED: "ABORTED";
}>;

/** A session state name: one of the values of SessionState. */
export type SessionStateName = (typeof SessionState)[keyof typeof SessionState];

/**
 * Reports whether state is an ended state. An ended session never goes back
 * to a live state.
 */
export declare function isEndedState(state: string): boolean;

/** The states of the client's connection to callctl. */
export declare const ConnectionState: Readonly<{
  /** connect() is loading the sessions and opening the event stream. */
  CONNECTING: "connecting";
  /** Events are flowing. */
  OPEN: "open";
  /** The stream dropped; the client is reconnecting and will resume where it left off. */
  RECONNECTING: "reconnecting";
  /** close() was called, or callctl refused the token: the client stays closed. */
  CLOSED: "closed";
}>;

/** A connection state name: one of the values of ConnectionState. */
export type ConnectionStateName = (typeof ConnectionState)[keyof typeof ConnectionState];

/** The privileges a client can hold, as the API spells them. */
export declare const Privilege: Readonly<{
  /** See sessions and follow their events. */
  VIEW: "sessions.view";
  /** hold() and unhold(). */
  HOLD: "sessions.hold";
  /** blindTransfer(). */
  TRANSFER: "sessions.transfer";
  /** forward(). */
  FORWARD: "sessions.forward";
  /** hangup(), close() and closeWithHangup(). */
  HANGUP: "sessions.hangup";
  /** sendDtmf(). */
  DTMF: "sessions.dtmf";
  /** startListen() and stopListen(). */
  LISTEN: "sessions.listen";
  /** Read the audit trail and call records. */
  AUDIT_VIEW: "audit.view";
  /** Ask callctl to re-read its configuration (POST /api/v1/config/reload). */
  CONFIG_RELOAD: "config.reload";
}>;

/** A privilege name: one of the values of Privilege. */
export type PrivilegeName = (typeof Privilege)[keyof typeof Privilege];

/**
 * An error from callctl or from the SDK's argument checks. Errors from the
 * server carry its JSON error body and the HTTP status; argument errors thrown
 * synchronously by Session methods have code "invalid_argument", status 0
 * (nothing was sent) and the argument's name in field; network failures have
 * code "network" and status 0.
 */
export declare class CallctlError extends Error {
  constructor(init: {
    code: string;
    message: string;
    field?: string;
    status?: number;
    sipStatus?: number;
    cause?: unknown;
  });
  /** Machine-readable code, e.g. "invalid_argument", "forbidden", "not_found", "wrong_state". */
  code: string;
  /** The argument or body field at fault, or "". */
  field: string;
  /** The HTTP status, or 0 when no answer came from the server. */
  status: number;
  /** The SIP status of a peer's refusal, or 0. */
  sipStatus: number;
}

/** A party of a call as the API shows it. */
export interface PartySnapshot {
  /** The party's number (caller: the From user; callee: the number called). */
  number: string;
  /** The display name, if the party sent one. */
  displayName?: string;
  /** callctl's id of the party's leg. */
  legId?: string;
  /** The SIP Call-ID of the party's leg. */
  callId?: string;
}

/** A transfer or forward under way, or the last news of one that ended. */
export interface TransferSnapshot {
  /** The number that asked for the transfer. */
  transferor?: string;
  /** The transfer target. */
  target: string;
  /** The latest news, e.g. "REFER sent" or a NOTIFY's sipfrag line. */
  progress?: string;
  /** The SIP status of that news. */
  status?: number;
}

/** One leg's media counters as callctl saw them. */
export interface LegStats {
  role: "caller" | "callee";
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  lost: number;
}

/** A session as the API shows it (GET /api/v1/sessions/{id}, and each event's session). */
export interface SessionSnapshot {
  id: string;
  state: SessionStateName;
  caller: PartySnapshot;
  callee: PartySnapshot;
  /** The number the caller dialled. */
  dialled: string;
  /** When the call arrived (RFC 3339). */
  start: string;
  /** When it was answered. */
  answer?: string;
  /** When it ended. */
  end?: string;
  /** When it entered its state. */
  stateSince: string;
  /** Why it ended. */
  endReason?: string;
  /** The transfer or forward, if any. */
  transfer?: TransferSnapshot;
  legs?: LegStats[];
  /** Seconds since answer, at the time of a REST answer. */
  talkDuration?: number;
  /** Seconds in the state, at the time of a REST answer. */
  stateDuration?: number;
  /** How many listen-ins the call has (all clients). */
  listeners?: number;
}

/** A listen-in that started or stopped (LISTEN_STARTED, LISTEN_STOPPED). */
export interface ListenInfo {
  /** The listen id startListen() got. */
  listenId: string;
  /** The name of the client listening. */
  client?: string;
  /** Why it stopped (LISTEN_STOPPED), e.g. stopped, call ended, ICE failed. */
  reason?: string;
}

/** One message of the event stream. */
export interface SessionEvent {
  /** The event's sequence number; it only grows. */
  seq: number;
  type: "STATE_CHANGED" | "OPERATION" | "DTMF_RECEIVED" | "LISTEN_STARTED" | "LISTEN_STOPPED" | "RECOVERED";
  sessionId: string;
  /** The session's state after the event. */
  state: SessionStateName;
  /** The state before (STATE_CHANGED). */
  previous?: SessionStateName;
  /** Why the state changed. */
  reason?: string;
  /** When it happened (RFC 3339). */
  time: string;
  /** The session after the event. */
  session: SessionSnapshot;
  /** An operation's outcome or progress (OPERATION). */
  operation?: { name: string; args?: Record<string, string>; result: string; error?: string };
  /** A digit a party sent (DTMF_RECEIVED). */
  dtmf?: { digit: string; party: string; role: string };
  /** The listen-in (LISTEN_STARTED, LISTEN_STOPPED). */
  listen?: ListenInfo;
}

/** The server's answer to an operation. */
export interface OperationResult {
  /** Always true: failures reject. */
  ok: boolean;
  /** The session after the operation. */
  session: SessionSnapshot;
}

export type SessionStateChangedCallback = (session: Session, state: SessionStateName) => void;
export type SessionCallback = (session: Session) => void;
export type ConnectionStateChangedCallback = (state: ConnectionStateName, error?: CallctlError) => void;
export type EventCallback = (event: SessionEvent, session: Session | undefined) => void;

/** Options of connect(). */
export interface ConnectOptions {
  /** The fetch to use (default: globalThis.fetch, looked up at each request). */
  fetch?: typeof fetch;
  /** The WebSocket class to use (default: globalThis.WebSocket). */
  WebSocket?: typeof WebSocket;
  /** ms before the first reconnect attempt; doubled after each failure (default 500). */
  reconnectDelay?: number;
  /** The longest wait between reconnect attempts, in ms (default 15000). */
  maxReconnectDelay?: number;
  /**
   * How the WebSocket carries the token: "protocol" (default) offers
   * Sec-WebSocket-Protocol "bearer.<token>" beside "callctl.v1"; "query" sends
   * ?access_token=. A token a subprotocol cannot hold falls back to "query".
   */
  tokenTransport?: "protocol" | "query";
  /** Registered before connecting, so it also sees "connecting". */
  onConnectionStateChanged?: ConnectionStateChangedCallback;
}

/**
 * Connects to callctl: asks who the token's client is (GET /api/v1/me),
 * loads the sessions the token may see and opens the event stream, which the
 * client keeps open, reconnecting with backoff and resuming after the last
 * event it got. Rejects with a CallctlError (e.g. status 401 for a bad token).
 *
 * @param url callctl's base URL, e.g. location.origin
 * @param token a bearer token of a client with at least sessions.view
 */
export declare function connect(url: string, token: string, options?: ConnectOptions): Promise<Client>;

/** A connection to callctl, made by connect(). */
export declare class Client {
  private constructor();
  /** callctl's base URL, without a trailing slash. */
  readonly url: string;
  /** The connection state. */
  readonly connectionState: ConnectionStateName;
  /** The sequence number of the last event received; a reconnect resumes after it. */
  readonly lastSeq: number;
  /** The token's client name, or "" when callctl did not say (no GET /api/v1/me). */
  readonly name: string;
  /** The privileges callctl granted the token, or null when it did not say. */
  readonly privileges: readonly string[] | null;
  /** The number patterns limiting the calls the client sees ([] for all), or null when callctl did not say. */
  readonly scope: readonly string[] | null;
  /** The number patterns the client may transfer or forward to ([] for any the policy allows), or null when callctl did not say. */
  readonly targets: readonly string[] | null;
  /**
   * Whether the client holds privilege, as callctl said at connect; true when
   * callctl did not say (callctl still checks every request).
   */
  can(privilege: PrivilegeName | string): boolean;
  /** The live sessions, oldest first. */
  sessions(): Session[];
  /** The session with this id, live or recently ended. */
  getSession(id: string): Session | undefined;
  /** Calls callback with each new session. Returns a function that removes it. */
  onSessionCreated(callback: SessionCallback): () => void;
  /**
   * Calls callback once for each session that leaves: on an ended state or
   * CLOSED, whichever comes first, or when a reload finds it gone. Returns a
   * function that removes it.
   */
  onSessionClosed(callback: SessionCallback): () => void;
  /** Calls callback with each new connection state. Returns a function that removes it. */
  onConnectionStateChanged(callback: ConnectionStateChangedCallback): () => void;
  /** Calls callback with every event of the stream after it was applied. Returns a function that removes it. */
  onEvent(callback: EventCallback): () => void;
  /** Closes the event stream for good; the state becomes "closed". */
  close(): void;
}

/**
 * A session of a call: the seed's Session class. Operations return a promise
 * of the server's answer that rejects with a CallctlError; argument errors
 * throw synchronously, before anything is sent.
 */
export declare class Session {
  private constructor();
  /** The session id. */
  readonly sessionId: string;
  /** The session's state. */
  readonly sessionState: SessionStateName;
  /** The caller's number (the caller ID). */
  readonly caller: string;
  /** The callee's number (the callee ID). */
  readonly callee: string;
  /** The caller's display name, or "". */
  readonly callerDisplayName: string;
  /** The callee's display name, or "". */
  readonly calleeDisplayName: string;
  /** The number the caller dialled. */
  readonly dialedNumber: string;
  /** When the call arrived. */
  readonly startTime: Date;
  /** When the call was answered, or null. */
  readonly answerTime: Date | null;
  /** When the call ended, or null while it is live. */
  readonly endTime: Date | null;
  /** Why the call ended, or "". */
  readonly endReason: string;
  /** Seconds of talk, from answer to now (to the end once ended); 0 if never answered. */
  readonly talkDuration: number;
  /** Seconds in the current state, to now (to the end once ended). */
  readonly stateDuration: number;
  /** How many listen-ins the call has, from all clients, as of the last snapshot. */
  readonly listeners: number;
  /** This client's listen-in once startListen() resolved and until it ends; null otherwise. */
  readonly listen: Listen | null;
  /** The last snapshot the server sent. Do not modify it. */
  readonly raw: SessionSnapshot;

  /** Holds both call parties → ON_HOLD. Needs sessions.hold. */
  hold(): Promise<OperationResult>;
  /** Unholds both call parties → IN_CALL. Needs sessions.hold. */
  unhold(): Promise<OperationResult>;
  /**
   * Transfers the call blindly to phoneNumber. Needs sessions.transfer.
   * @throws {CallctlError} synchronously if the transferor is not the caller ID or the
   *   callee ID, or if the phoneNumber was not specified
   */
  blindTransfer(transferor: string, phoneNumber: string): Promise<OperationResult>;
  /**
   * Forwards the session to phoneNumber. Needs sessions.forward.
   * @throws {CallctlError} synchronously if the phoneNumber was not specified
   */
  forward(phoneNumber: string): Promise<OperationResult>;
  /** Hangs the call up → HUNG_UP. Needs sessions.hangup. */
  hangup(): Promise<OperationResult>;
  /** Closes the session at once → CLOSED. Needs sessions.hangup. */
  close(): Promise<OperationResult>;
  /** Hangs up, waits for it, then closes the session → CLOSED. Needs sessions.hangup. */
  closeWithHangup(): Promise<OperationResult>;
  /**
   * Sends DTMF (0-9, *, #, A-D; several keys in turn) to a party. Needs sessions.dtmf.
   * @throws {CallctlError} synchronously if the key was not specified or is not a DTMF
   *   key, or if phoneNumber is not the caller ID or the callee ID
   */
  sendDtmf(key: string, phoneNumber: string): Promise<OperationResult>;
  /**
   * Starts listening in: a WebRTC PeerConnection (host candidates, no ICE
   * servers) with two receive-only audio tracks, caller and callee. Resolves
   * once audio arrives on both. While one is starting or running, returns the
   * same promise. Needs sessions.listen; IN_CALL and the hold states.
   * Rejects with a CallctlError: callctl's refusal (403, 409, …), "timeout",
   * "aborted" (stopListen or the call's end came first), "webrtc"; the
   * PeerConnection is then closed and callctl's listener released.
   * @throws {CallctlError} synchronously if options.timeout is not a number of ms above 0
   */
  startListen(options?: StartListenOptions): Promise<Listen>;
  /**
   * Stops this client's listen-in: closes the PeerConnection and releases
   * callctl's listener. A startListen() under way rejects with "aborted".
   * Without a listen-in it does nothing. Needs sessions.listen.
   */
  stopListen(): Promise<{ ok: boolean }>;
  /** Calls callback(session, state) each time the state changes. Returns a function that removes it. */
  onSessionStateChanged(callback: SessionStateChangedCallback): () => void;
  toString(): string;
  toJSON(): SessionSnapshot;
}

/** Options of Session.startListen(). */
export interface StartListenOptions {
  /** ms to wait for audio on both tracks before rejecting (default 10000). */
  timeout?: number;
  /** The RTCPeerConnection class to use (default: globalThis.RTCPeerConnection). */
  RTCPeerConnection?: typeof RTCPeerConnection;
}

/**
 * A listen-in, resolved by Session.startListen(). Ends on stop() (or the
 * session's stopListen()), when the call ends, when callctl stops it, or when
 * the connection fails: then the PeerConnection is closed and ended resolves.
 */
export declare class Listen {
  private constructor();
  /** The session listened to. */
  readonly session: Session;
  /** callctl's id of the listener (named by LISTEN_STARTED/LISTEN_STOPPED). */
  readonly listenId: string;
  /** Both tracks, caller then callee. */
  readonly stream: MediaStream;
  /** The caller's audio. */
  readonly caller: MediaStreamTrack;
  /** The callee's audio. */
  readonly callee: MediaStreamTrack;
  /** The RTCPeerConnection to callctl (closed once ended). */
  readonly peerConnection: RTCPeerConnection;
  /** Whether it is running: started and not ended. */
  readonly listening: boolean;
  /**
   * Why it ended: "stopped", "connection failed", "call ended (…)", or
   * callctl's reason from LISTEN_STOPPED.
   */
  readonly ended: Promise<string>;
  /**
   * Plays both parties in audioElement (srcObject = stream); returns its
   * play() promise, which rejects when the browser blocks autoplay. The
   * element is emptied when the listen-in ends.
   */
  attach(audioElement: HTMLMediaElement): Promise<void>;
  /** Stops the listen-in: the session's stopListen(). */
  stop(): Promise<{ ok: boolean }>;
}
