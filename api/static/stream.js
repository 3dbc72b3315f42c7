// The live event stream (GET api/stream, Server-Sent Events), read with fetch().
//
// EventSource cannot send an Authorization header, so the stream is fetched and its
// text/event-stream lines are parsed here, as the SSE specification says: "field: value"
// lines, a blank line ends a message, lines starting with ":" are comments (the
// server's keep-alive). When the stream ends or fails, it is opened again after the
// server's `retry:` delay (2 s unless told), with Last-Event-ID so the server replays the
// ledger events that were missed.

import { ApiError, apiUrl, authHeaders } from "./api.js";

const DEFAULT_RETRY_MS = 2000;
/** The server sends a keep-alive comment every 15 s: this much silence means the
 * connection is dead even if the socket does not say so. */
const SILENCE_MS = 45000;

export class LedgerStream {
  /**
   * @param onMessage called with {event, id, data} for each message (data parsed as JSON)
   * @param onState called with (state, detail): "connecting", "live", "reconnecting",
   *   "unauthorized" (the stream stops), "stopped"
   */
  constructor({ onMessage, onState }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.lastEventId = null;
    this.retryMs = DEFAULT_RETRY_MS;
    this.controller = null;
    this.running = false;
    this.connections = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.#run();
  }

  stop() {
    this.running = false;
    if (this.controller) this.controller.abort();
    this.onState("stopped");
  }

  async #run() {
    while (this.running) {
      this.controller = new AbortController();
      this.onState(this.connections === 0 ? "connecting" : "reconnecting");
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
        const response = await fetch(apiUrl("api/stream"), {
          headers,
          cache: "no-store",
          signal: this.controller.signal,
        });
        if (response.status === 401 || response.status === 403) {
          const body = await response.json().catch(() => null);
          this.running = false;
          this.onState("unauthorized", new ApiError(response.status, body).message);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.connections += 1;
        this.onState("live", this.connections);
        await this.#read(response.body);
        if (this.running) this.onState("reconnecting", "the stream ended");
      } catch (error) {
        if (!this.running) return;
        this.onState("reconnecting", error.name === "AbortError" ? "no keep-alive" : error.message);
      }
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
  }

  async #read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = newMessage();
    let watchdog = setTimeout(() => this.controller.abort(), SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => this.controller.abort(), SILENCE_MS);
        buffer += value;
        const lines = buffer.split("\n");
        buffer = lines.pop(); // an incomplete last line waits for the next chunk
        for (const raw of lines) {
          const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
          if (line === "") {
            this.#dispatch(message);
            message = newMessage();
          } else if (!line.startsWith(":")) {
            this.#field(message, line);
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }

  #field(message, line) {
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") message.event = value;
    else if (name === "data") message.data.push(value);
    else if (name === "id" && !value.includes("\0")) message.id = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
  }

  #dispatch(message) {
    if (message.id !== null) this.lastEventId = message.id;
    if (message.data.length === 0) return;
    let data;
    try {
      data = JSON.parse(message.data.join("\n"));
    } catch {
      return; // not ours to understand
    }
    this.onMessage({ event: message.event, id: message.id, data });
  }
}

function newMessage() {
  return { event: "message", id: null, data: [] };
}
