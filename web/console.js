// The supervisor console, served by callctl at /: a plain ES module over the
// SDK (/sdk/callctl.js), no build step.
//
// Sign in with a token (kept in sessionStorage for this tab, never in a URL);
// the live calls fill a table kept current by the SDK's event stream; each
// call offers the seed's operations as controls, only those the token's
// client holds the privilege for (Client.can, from GET /api/v1/me); errors
// are shown in words beside the control that caused them; every event of
// the stream goes to the event log.

import { CallctlError, ConnectionState, Privilege, SessionState, connect, isEndedState } from "./sdk/callctl.js";

/** Where the token is kept: this tab only, gone when it closes. */
const tokenKey = "callctl.token";
/** The event log keeps this many lines. */
const logLimit = 300;
/** An ended call stays in the table this long, showing how it ended. */
const endedRowMs = 8000;

/** States where hold() is allowed. @type {ReadonlySet<string>} */
const holdable = new Set([SessionState.IN_CALL, SessionState.CALLER_ON_HOLD, SessionState.CALLEE_ON_HOLD]);
/** States of an established call: transfer, DTMF and listen-in are allowed. @type {ReadonlySet<string>} */
const established = new Set([...holdable, SessionState.ON_HOLD]);
/** States where forward() is allowed. @type {ReadonlySet<string>} */
const forwardable = new Set([SessionState.SETUP, SessionState.RINGING, SessionState.REDIRECTED, SessionState.IN_CALL]);

/** The DTMF keypad, row by row. */
const keypad = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

/**
 * Makes an element: el("button", { type: "button", class: "x", onclick: f }, "text").
 * Attributes given as true are set empty, false/null/undefined are skipped;
 * on* functions become event listeners.
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      e.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    } else {
      e.setAttribute(name, value === true ? "" : String(value));
    }
  }
  e.append(...children);
  return e;
}

/**
 * Formats seconds as m:ss, or h:mm:ss from an hour.
 *
 * @param {number} seconds
 * @returns {string}
 */
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * A state's look: in a call, on hold, setting up, transferring, or ended.
 *
 * @param {string} state
 * @returns {string} a CSS class
 */
function stateClass(state) {
  if (isEndedState(state)) {
    return "state-ended";
  }
  if (state === SessionState.IN_CALL) {
    return "state-call";
  }
  if (established.has(state)) {
    return "state-hold";
  }
  if (state.startsWith("TRANSFER")) {
    return "state-transfer";
  }
  return "state-setup";
}

/**
 * An error in words, for the page.
 *
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  if (err instanceof CallctlError) {
    const status = err.status ? ` (HTTP ${err.status}${err.sipStatus ? `, SIP ${err.sipStatus}` : ""})` : "";
    return `${err.message}${status}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The audio side of listen-in: one AudioContext for the page, and a level
 * meter per track driven by an AnalyserNode.
 */
class Levels {
  /** @type {AudioContext | null} */ #ctx = null;
  /** @type {Set<{analyser: AnalyserNode, source: MediaStreamAudioSourceNode, meter: HTMLMeterElement, data: Float32Array<ArrayBuffer>, level: number}>} */
  #meters = new Set();
  #frame = 0;

  /**
   * The page's AudioContext, made or resumed on a user's click (browsers
   * start it suspended otherwise).
   *
   * @returns {AudioContext}
   */
  context() {
    if (!this.#ctx) {
      this.#ctx = new AudioContext();
    }
    if (this.#ctx.state === "suspended") {
      this.#ctx.resume().catch(() => {});
    }
    return this.#ctx;
  }

  /**
   * Shows track's level on meter until the returned function is called.
   *
   * @param {MediaStreamTrack} track
   * @param {HTMLMeterElement} meter
   * @returns {() => void}
   */
  watch(track, meter) {
    const ctx = this.context();
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser); // not to the destination: the <audio> element plays it
    const entry = { analyser, source, meter, data: new Float32Array(new ArrayBuffer(analyser.fftSize * 4)), level: 0 };
    this.#meters.add(entry);
    if (!this.#frame) {
      this.#frame = requestAnimationFrame(() => this.#draw());
    }
    return () => {
      this.#meters.delete(entry);
      source.disconnect();
      meter.value = 0;
      meter.dataset.level = "0";
    };
  }

  #draw() {
    this.#frame = 0;
    for (const m of this.#meters) {
      m.analyser.getFloatTimeDomainData(m.data);
      let sum = 0;
      for (const x of m.data) {
        sum += x * x;
      }
      const rms = Math.sqrt(sum / m.data.length);
      // -60 dBFS .. 0 dBFS onto 0 .. 1; falls back slowly like a VU meter.
      const target = rms > 0 ? Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60)) : 0;
      m.level = target > m.level ? target : m.level * 0.85 + target * 0.15;
      m.meter.value = m.level;
      m.meter.dataset.level = m.level.toFixed(3);
    }
    if (this.#meters.size > 0) {
      this.#frame = requestAnimationFrame(() => this.#draw());
    }
  }
}

/**
 * One call in the table: a row of facts and, below it, the controls the
 * client may use. Made once per session; update() refreshes it in place so
 * focus and typed numbers survive events.
 */
class SessionRow {
  /** @type {import("./sdk/callctl.js").Session} */ session;
  /** @type {HTMLTableSectionElement} */ body;
  /** Controls in flight, by group name, disabled until they answer. @type {Set<string>} */
  #busy = new Set();
  /** @type {Record<string, HTMLElement>} */ #cells = {};
  /** @type {Record<string, HTMLElement>} */ #status = {};
  /**
   * The controls by name (hold, unhold, transfer, transferor, …, callerMeter,
   * calleeMeter); only those the client's privileges allow exist.
   *
   * @type {Record<string, any>}
   */
  #controls = {};
  /** @type {HTMLButtonElement[]} */ #dtmfKeys = [];
  /** Stops the listen-in meters. @type {(() => void)[]} */ #unwatch = [];
  /** @type {HTMLAudioElement} */ #audio = el("audio", { hidden: true });
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #removal;
  /** @type {ConsoleApp} */ #app;

  /**
   * @param {ConsoleApp} app
   * @param {import("./sdk/callctl.js").Session} session
   */
  constructor(app, session) {
    this.#app = app;
    this.session = session;
    const id = session.sessionId;
    const cell = (/** @type {string} */ name, /** @type {string} */ cls = "") =>
      (this.#cells[name] = el("td", { "data-field": name, class: cls || undefined }));
    const summary = el(
      "tr",
      { class: "summary" },
      cell("caller", "party"),
      cell("callee", "party"),
      cell("state"),
      cell("talk", "num"),
      cell("stateDuration", "num"),
      cell("listeners", "num"),
    );
    this.body = el("tbody", { "data-session-id": id, class: "session" }, summary);
    const controls = this.#buildControls();
    if (controls.length > 0) {
      this.body.append(
        el(
          "tr",
          { class: "controls-row" },
          el("td", { colspan: 6 }, el("div", { class: "controls", role: "group", "aria-label": `Controls for call ${id}` }, ...controls)),
        ),
      );
    }
    this.update();
  }

  /** @returns {HTMLElement[]} the control groups the client's privileges allow */
  #buildControls() {
    const can = (/** @type {string} */ p) => this.#app.client?.can(p) ?? false;
    const s = this.session;
    /** @type {HTMLElement[]} */
    const groups = [];
    const status = (/** @type {string} */ group) => (this.#status[group] = el("p", { class: "status", "aria-live": "polite", "data-status": group }));
    const button = (/** @type {string} */ op, /** @type {string} */ label, /** @type {() => unknown} */ run, /** @type {string} */ group) =>
      (this.#controls[op] = el("button", { type: "button", "data-op": op, onclick: () => this.#run(group, label, run) }, label));

    if (can(Privilege.HOLD)) {
      groups.push(
        el(
          "fieldset",
          { class: "group" },
          el("legend", {}, "Hold"),
          el(
            "div",
            { class: "row" },
            button("hold", "Hold", () => s.hold(), "hold"),
            button("unhold", "Unhold", () => s.unhold(), "hold"),
          ),
          status("hold"),
        ),
      );
    }

    if (can(Privilege.TRANSFER)) {
      const transferor = /** @type {HTMLSelectElement} */ (
        (this.#controls.transferor = el("select", { "aria-label": "Transferor", "data-field": "transferor" }, el("option", { value: "caller" }), el("option", { value: "callee" })))
      );
      const target = /** @type {HTMLInputElement} */ (
        (this.#controls.transferTarget = el("input", { type: "tel", inputmode: "tel", placeholder: "Number", "aria-label": "Transfer to number", "data-field": "transfer-target", size: 10 }))
      );
      const submit = (this.#controls.transfer = el("button", { type: "submit", "data-op": "transfer" }, "Transfer"));
      groups.push(
        el(
          "form",
          {
            class: "group",
            onsubmit: (/** @type {Event} */ ev) => {
              ev.preventDefault();
              const from = transferor.value === "caller" ? s.caller : s.callee;
              this.#run("transfer", "Transfer", () => s.blindTransfer(from, target.value.trim()));
            },
          },
          el("fieldset", {}, el("legend", {}, "Transfer"), el("div", { class: "row" }, transferor, target, submit), status("transfer")),
        ),
      );
    }

    if (can(Privilege.FORWARD)) {
      const target = /** @type {HTMLInputElement} */ (
        (this.#controls.forwardTarget = el("input", { type: "tel", inputmode: "tel", placeholder: "Number", "aria-label": "Forward to number", "data-field": "forward-target", size: 10 }))
      );
      const submit = (this.#controls.forward = el("button", { type: "submit", "data-op": "forward" }, "Forward"));
      groups.push(
        el(
          "form",
          {
            class: "group",
            onsubmit: (/** @type {Event} */ ev) => {
              ev.preventDefault();
              this.#run("forward", "Forward", () => s.forward(target.value.trim()));
            },
          },
          el("fieldset", {}, el("legend", {}, "Forward"), el("div", { class: "row" }, target, submit), status("forward")),
        ),
      );
    }

    if (can(Privilege.HANGUP)) {
      groups.push(
        el(
          "fieldset",
          { class: "group" },
          el("legend", {}, "End"),
          el(
            "div",
            { class: "row" },
            button("hangup", "Hang up", () => s.hangup(), "end"),
            button("close", "Close", () => s.close(), "end"),
          ),
          status("end"),
        ),
      );
    }

    if (can(Privilege.DTMF)) {
      const party = /** @type {HTMLSelectElement} */ (
        (this.#controls.dtmfParty = el("select", { "aria-label": "DTMF to party", "data-field": "dtmf-party" }, el("option", { value: "caller" }), el("option", { value: "callee" })))
      );
      this.#dtmfKeys = keypad.map((key) =>
        el(
          "button",
          {
            type: "button",
            "data-op": "dtmf",
            "data-key": key,
            "aria-label": `Send DTMF ${key}`,
            onclick: () => this.#run("dtmf", `DTMF ${key}`, () => s.sendDtmf(key, party.value === "caller" ? s.caller : s.callee)),
          },
          key,
        ),
      );
      groups.push(
        el(
          "fieldset",
          { class: "group" },
          el("legend", {}, "DTMF"),
          el("div", { class: "row" }, party),
          el("div", { class: "keypad" }, ...this.#dtmfKeys),
          status("dtmf"),
        ),
      );
    }

    if (can(Privilege.LISTEN)) {
      const meter = (/** @type {string} */ role) =>
        (this.#controls[`${role}Meter`] = el("meter", { min: 0, max: 1, low: 0.05, high: 0.95, optimum: 0.5, value: 0, "data-meter": role, "aria-label": `${role} level` }));
      const callerMeter = meter("caller");
      const calleeMeter = meter("callee");
      const stop = (this.#controls.stopListen = el(
        "button",
        { type: "button", "data-op": "stop-listen", hidden: true, onclick: () => this.#run("listen", "Stop listening", () => s.stopListen()) },
        "Stop listening",
      ));
      groups.push(
        el(
          "fieldset",
          { class: "group listen" },
          el("legend", {}, "Listen"),
          el("div", { class: "row" }, button("listen", "Listen", () => this.#listen(), "listen"), stop),
          el(
            "div",
            { class: "meters" },
            el("label", {}, el("span", {}, "Caller"), callerMeter),
            el("label", {}, el("span", {}, "Callee"), calleeMeter),
          ),
          status("listen"),
          this.#audio,
        ),
      );
    }
    return groups;
  }

  /**
   * Runs an operation from a control: disables its group meanwhile, then
   * shows the outcome, an error in words, beside it.
   *
   * @param {string} group
   * @param {string} label what the user asked for, e.g. "Hold"
   * @param {() => unknown} operation may throw (the SDK's argument checks) or return a promise
   */
  async #run(group, label, operation) {
    const out = this.#status[group];
    this.#busy.add(group);
    this.update();
    out.classList.remove("error");
    out.textContent = `${label}…`;
    try {
      await operation();
      out.textContent = "";
    } catch (err) {
      // The SDK's messages start with its method's name; the label says it already.
      out.textContent = `${label} failed: ${describe(err).replace(/^[a-z][A-Za-z]*: /, "")}`;
      out.classList.add("error");
    } finally {
      this.#busy.delete(group);
      this.update();
    }
  }

  /** Starts listening in: audio to the hidden <audio> element, a meter per party. */
  async #listen() {
    const levels = this.#app.levels;
    levels.context(); // made inside the click, so the browser lets it run
    const listen = await this.session.startListen();
    this.#unwatch = [
      levels.watch(listen.caller, /** @type {HTMLMeterElement} */ (this.#controls.callerMeter)),
      levels.watch(listen.callee, /** @type {HTMLMeterElement} */ (this.#controls.calleeMeter)),
    ];
    listen.attach(this.#audio).catch((err) => {
      this.#status.listen.textContent = `The browser did not start playback: ${describe(err)}`;
    });
    listen.ended.then((reason) => {
      for (const stop of this.#unwatch) {
        stop();
      }
      this.#unwatch = [];
      if (reason !== "stopped") {
        this.#status.listen.textContent = `Listening ended: ${reason}`;
      }
      this.update();
    });
  }

  /** Refreshes every field and which controls are enabled. */
  update() {
    const s = this.session;
    const state = s.sessionState;
    const ended = isEndedState(state) || this.#removal !== undefined;
    this.#party(this.#cells.caller, s.callerDisplayName, s.caller);
    this.#party(this.#cells.callee, s.calleeDisplayName, s.callee);
    const badge = this.#cells.state.firstElementChild ?? this.#cells.state.appendChild(el("span"));
    if (badge.textContent !== state) {
      badge.textContent = state;
      badge.className = `state ${stateClass(state)}`;
      badge.setAttribute("title", s.raw.endReason || s.raw.transfer?.progress || "");
    }
    this.tick();
    this.#text(this.#cells.listeners, String(s.listeners));
    this.body.classList.toggle("ended", ended);

    const c = this.#controls;
    const off = (/** @type {string} */ group, /** @type {boolean} */ allowed) => ended || this.#busy.has(group) || !allowed;
    if (c.hold) {
      c.hold.disabled = off("hold", holdable.has(state));
      c.unhold.disabled = off("hold", state === SessionState.ON_HOLD);
    }
    if (c.transfer) {
      this.#partyOptions(/** @type {HTMLSelectElement} */ (c.transferor));
      c.transfer.disabled = off("transfer", established.has(state));
    }
    if (c.forward) {
      c.forward.disabled = off("forward", forwardable.has(state));
    }
    if (c.hangup) {
      c.hangup.disabled = off("end", true);
      c.close.disabled = off("end", true);
    }
    if (c.dtmfParty) {
      this.#partyOptions(/** @type {HTMLSelectElement} */ (c.dtmfParty));
      for (const key of this.#dtmfKeys) {
        key.disabled = off("dtmf", established.has(state));
      }
    }
    if (c.listen) {
      const listening = s.listen !== null;
      c.listen.hidden = listening;
      c.stopListen.hidden = !listening;
      c.listen.disabled = off("listen", established.has(state));
      c.stopListen.disabled = this.#busy.has("listen");
      this.body.classList.toggle("listening", listening);
    }
  }

  /** Refreshes the durations (called every second). */
  tick() {
    const s = this.session;
    this.#text(this.#cells.talk, s.answerTime ? duration(s.talkDuration) : "–");
    this.#text(this.#cells.stateDuration, duration(s.stateDuration));
  }

  /** The call ended: show how, drop the controls, leave the table soon. */
  ended() {
    if (this.#removal === undefined) {
      this.#removal = setTimeout(() => this.#app.removeRow(this), endedRowMs);
    }
    this.update();
  }

  /** Takes the row away, stopping its listen-in. */
  dispose() {
    clearTimeout(this.#removal);
    for (const stop of this.#unwatch) {
      stop();
    }
    this.body.remove();
  }

  /**
   * @param {HTMLElement} td
   * @param {string} name
   * @param {string} number
   */
  #party(td, name, number) {
    const key = `${name}\n${number}`;
    if (td.dataset.value === key) {
      return;
    }
    td.dataset.value = key;
    td.replaceChildren(...(name ? [el("span", { class: "name" }, name), el("span", { class: "number" }, number)] : [el("span", { class: "number" }, number)]));
  }

  /** @param {HTMLSelectElement} select the caller/callee choice, labelled with their numbers */
  #partyOptions(select) {
    const [caller, callee] = select.options;
    const label = (/** @type {string} */ role, /** @type {string} */ number) => `${role} ${number}`;
    if (caller.text !== label("Caller", this.session.caller)) {
      caller.text = label("Caller", this.session.caller);
    }
    if (callee.text !== label("Callee", this.session.callee)) {
      callee.text = label("Callee", this.session.callee);
    }
  }

  /** @param {HTMLElement} node @param {string} text */
  #text(node, text) {
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }
}

/** The page: sign-in, the table of calls, the event log. */
class ConsoleApp {
  /** @type {import("./sdk/callctl.js").Client | null} */ client = null;
  levels = new Levels();
  /** @type {Map<string, SessionRow>} */ #rows = new Map();
  /** @type {(() => void)[]} */ #unsubscribe = [];
  /** @type {ReturnType<typeof setInterval> | undefined} */ #ticker;

  #form = /** @type {HTMLFormElement} */ (document.getElementById("sign-in"));
  #token = /** @type {HTMLInputElement} */ (document.getElementById("token"));
  #signInError = /** @type {HTMLElement} */ (document.getElementById("sign-in-error"));
  #console = /** @type {HTMLElement} */ (document.getElementById("console"));
  #table = /** @type {HTMLTableElement} */ (document.getElementById("sessions"));
  #noCalls = /** @type {HTMLElement} */ (document.getElementById("no-calls"));
  #count = /** @type {HTMLElement} */ (document.getElementById("call-count"));
  #log = /** @type {HTMLOListElement} */ (document.getElementById("event-log"));
  #connection = /** @type {HTMLElement} */ (document.getElementById("connection"));
  #who = /** @type {HTMLElement} */ (document.getElementById("who"));
  #signOut = /** @type {HTMLButtonElement} */ (document.getElementById("sign-out"));

  start() {
    this.#form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = this.#token.value.trim();
      if (token !== "") {
        this.signIn(token);
      }
    });
    this.#signOut.addEventListener("click", () => this.signOut(""));
    const saved = sessionStorage.getItem(tokenKey);
    if (saved) {
      this.signIn(saved);
    } else {
      this.#showSignIn("");
    }
  }

  /**
   * Connects with token; on success keeps it for the tab, else says why.
   *
   * @param {string} token
   */
  async signIn(token) {
    const submit = /** @type {HTMLButtonElement} */ (this.#form.querySelector("button[type=submit]"));
    submit.disabled = true;
    this.#signInError.textContent = "";
    /** @type {import("./sdk/callctl.js").Client} */
    let client;
    try {
      client = await connect(location.origin, token, {
        onConnectionStateChanged: (state, error) => this.#connectionChanged(state, error),
      });
    } catch (err) {
      const refused = err instanceof CallctlError && (err.status === 401 || err.status === 403);
      if (refused) {
        sessionStorage.removeItem(tokenKey);
      }
      this.#showSignIn(refused ? `callctl refused the token: ${describe(err)}` : `Could not connect to callctl: ${describe(err)}`);
      return;
    } finally {
      submit.disabled = false;
    }
    sessionStorage.setItem(tokenKey, token);
    this.#token.value = "";
    this.client = client;
    this.#showConsole();
  }

  /**
   * Closes the connection, forgets the token and shows the sign-in form.
   *
   * @param {string} message why, or ""
   */
  signOut(message) {
    sessionStorage.removeItem(tokenKey);
    for (const off of this.#unsubscribe) {
      off();
    }
    this.#unsubscribe = [];
    clearInterval(this.#ticker);
    const client = this.client;
    this.client = null;
    for (const row of this.#rows.values()) {
      row.session.stopListen().catch(() => {});
      row.dispose();
    }
    this.#rows.clear();
    client?.close();
    this.#log.replaceChildren();
    this.#showSignIn(message);
  }

  /** @param {SessionRow} row */
  removeRow(row) {
    if (this.#rows.get(row.session.sessionId) === row) {
      this.#rows.delete(row.session.sessionId);
      row.dispose();
      this.#counted();
    }
  }

  /** @param {string} message */
  #showSignIn(message) {
    this.#console.hidden = true;
    this.#signOut.hidden = true;
    this.#who.hidden = true;
    this.#connection.hidden = true;
    this.#form.hidden = false;
    this.#signInError.textContent = message;
    this.#token.focus();
  }

  #showConsole() {
    const client = /** @type {import("./sdk/callctl.js").Client} */ (this.client);
    this.#form.hidden = true;
    this.#console.hidden = false;
    this.#signOut.hidden = false;
    this.#who.hidden = false;
    const privileges = client.privileges;
    this.#who.replaceChildren(
      el("span", {}, "Signed in as "),
      el("strong", {}, client.name || "an unnamed client"),
      el("span", { class: "privileges" }, privileges ? ` · ${privileges.map((p) => p.replace(/^sessions\./, "")).join(", ") || "no privileges"}` : ""),
    );
    this.#connectionChanged(client.connectionState);
    this.#unsubscribe = [
      client.onSessionCreated((s) => this.#add(s)),
      client.onSessionClosed((s) => this.#rows.get(s.sessionId)?.ended()),
      client.onEvent((ev, s) => {
        if (s) {
          this.#rows.get(s.sessionId)?.update();
        }
        this.#logEvent(ev);
      }),
    ];
    for (const s of client.sessions()) {
      this.#add(s);
    }
    this.#counted();
    // Twice a second, so the seconds shown never skip one.
    this.#ticker = setInterval(() => {
      for (const row of this.#rows.values()) {
        row.update();
      }
    }, 500);
  }

  /** @param {import("./sdk/callctl.js").Session} s */
  #add(s) {
    if (this.#rows.has(s.sessionId)) {
      return;
    }
    const row = new SessionRow(this, s);
    this.#rows.set(s.sessionId, row);
    this.#table.append(row.body);
    this.#counted();
  }

  #counted() {
    const live = [...this.#rows.values()].filter((r) => !isEndedState(r.session.sessionState)).length;
    this.#count.textContent = String(live);
    this.#noCalls.hidden = this.#rows.size > 0;
  }

  /**
   * @param {string} state
   * @param {CallctlError} [error]
   */
  #connectionChanged(state, error) {
    /** @type {Record<string, string>} */
    const words = {
      [ConnectionState.CONNECTING]: "Connecting…",
      [ConnectionState.OPEN]: "Live",
      [ConnectionState.RECONNECTING]: "Reconnecting…",
      [ConnectionState.CLOSED]: "Disconnected",
    };
    this.#connection.textContent = words[state] ?? state;
    this.#connection.dataset.state = state;
    this.#connection.hidden = this.client === null;
    if (this.client) {
      this.#logLine("", state === ConnectionState.OPEN ? "Event stream open" : `Event stream ${words[state] ?? state}`);
    }
    if (state === ConnectionState.CLOSED && error && this.client) {
      this.signOut(`callctl closed the connection: ${describe(error)}`);
    }
  }

  /** @param {import("./sdk/callctl.js").SessionEvent} ev */
  #logEvent(ev) {
    /** @type {string} */
    let text;
    switch (ev.type) {
      case "STATE_CHANGED":
        text = `${ev.previous ?? "–"} → ${ev.state}${ev.reason ? ` (${ev.reason})` : ""}`;
        break;
      case "OPERATION": {
        const op = ev.operation;
        const args = op?.args ? Object.entries(op.args).map(([k, v]) => `${k}=${v}`).join(" ") : "";
        text = `${op?.name ?? "operation"}${args ? ` ${args}` : ""}: ${op?.result ?? ""}${op?.error ? ` — ${op.error}` : ""}`;
        break;
      }
      case "DTMF_RECEIVED":
        text = `DTMF ${ev.dtmf?.digit ?? "?"} from the ${ev.dtmf?.role ?? "party"} ${ev.dtmf?.party ?? ""}`.trim();
        break;
      case "LISTEN_STARTED":
        text = `${ev.listen?.client || "a client"} started listening`;
        break;
      case "LISTEN_STOPPED":
        text = `${ev.listen?.client || "a client"} stopped listening${ev.listen?.reason ? ` (${ev.listen.reason})` : ""}`;
        break;
      case "RECOVERED":
        text = "re-adopted after a callctl restart: audio flows again";
        break;
      default:
        text = ev.type;
    }
    this.#logLine(ev.sessionId, text, ev.type, ev.time);
  }

  /**
   * @param {string} sessionId
   * @param {string} text
   * @param {string} [type]
   * @param {string} [time] RFC 3339; default now
   */
  #logLine(sessionId, text, type = "CONNECTION", time) {
    const at = time ? new Date(time.replace(/(\.\d{3})\d+/, "$1")) : new Date();
    const li = el(
      "li",
      { "data-type": type, "data-session-id": sessionId || undefined },
      el("time", { datetime: at.toISOString() }, at.toLocaleTimeString([], { hour12: false })),
      el("span", { class: "sid", title: sessionId }, sessionId ? sessionId.slice(0, 8) : ""),
      el("span", { class: "what" }, text),
    );
    this.#log.prepend(li);
    while (this.#log.childElementCount > logLimit) {
      this.#log.lastElementChild?.remove();
    }
  }
}

new ConsoleApp().start();
