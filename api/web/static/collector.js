/*
 * genpulse browser event collector: the product's web pages report user actions with it.
 *
 *   <script src="/v1/collector.js"></script>
 *   <script>
 *     const pulse = GenPulseCollector.init({ingestKey: "…", service: "uvp-web"});
 *     pulse.track("uvp_approved", {edits_made: 0});
 *   </script>
 *
 * Events are buffered in memory and sent to /v1/collect when `flushAt` are buffered, every
 * `flushIntervalMs`, on flush(), and when the page is hidden or closed (pagehide /
 * visibilitychange), so closing the tab loses nothing. Ordinary flushes use fetch with
 * keepalive so a failure is seen and retried with exponential backoff; the page-exit flush
 * uses navigator.sendBeacon (text/plain, the key as a query parameter), falling back to
 * fetch with keepalive when the beacon is refused. Each event carries a unique event_id, so
 * the pipeline can de-duplicate a batch that was retried after an ambiguous failure.
 */
(function (global) {
  "use strict";

  var DEFAULTS = {
    endpoint: "/v1/collect",
    ingestKey: "",
    service: "web",
    userId: null,
    flushAt: 50,
    flushIntervalMs: 30000,
    maxBufferEvents: 5000,
    retryBaseMs: 1000,
    retryMaxMs: 30000,
    maxBatchEvents: 500,
    debugViewSize: 200
  };

  function newId() {
    if (global.crypto && global.crypto.randomUUID) {
      return global.crypto.randomUUID().replace(/-/g, "");
    }
    var out = "";
    for (var i = 0; i < 32; i++) out += Math.floor(Math.random() * 16).toString(16);
    return out;
  }

  function tabSessionId() {
    try {
      var stored = global.sessionStorage.getItem("genpulse.session_id");
      if (stored) return stored;
      var fresh = newId();
      global.sessionStorage.setItem("genpulse.session_id", fresh);
      return fresh;
    } catch (e) {
      return newId();
    }
  }

  function Collector(options) {
    this.options = {};
    for (var k in DEFAULTS) this.options[k] = DEFAULTS[k];
    for (var o in options || {}) this.options[o] = options[o];
    this.sessionId = this.options.sessionId || tabSessionId();
    this.buffer = [];        // events not yet handed to a send
    this.retryQueue = [];    // batches whose send failed, oldest first
    this.recent = [];        // bounded local view for debugging (getEvents)
    this.sending = false;
    this.retryDelayMs = 0;
    this.retryTimer = null;
    this.stats = {tracked: 0, sent: 0, refused: 0, failedSends: 0, dropped: 0, beacons: 0};
    var self = this;
    this.timer = global.setInterval(function () { self.flush(); }, this.options.flushIntervalMs);
    var onHide = function () { self.flushOnExit(); };
    global.addEventListener("pagehide", onHide);
    global.document && global.document.addEventListener("visibilitychange", function () {
      if (global.document.visibilityState === "hidden") onHide();
    });
  }

  Collector.prototype.track = function (eventType, data) {
    var event = {
      v: 1,
      type: String(eventType),
      event_id: newId(),
      timestamp: Date.now(),
      session_id: this.sessionId,
      user_id: this.options.userId,
      service: this.options.service,
      data: data || {}
    };
    this.stats.tracked++;
    this.buffer.push(event);
    this.recent.push(event);
    if (this.recent.length > this.options.debugViewSize) this.recent.shift();
    if (this.buffer.length > this.options.maxBufferEvents) {
      this.buffer.shift();
      this.stats.dropped++;
    }
    if (this.buffer.length >= this.options.flushAt) this.flush();
    return event.event_id;
  };

  Collector.prototype.getEvents = function () { return this.recent.slice(); };
  Collector.prototype.clearEvents = function () { this.recent = []; };
  Collector.prototype.getStats = function () {
    var s = {};
    for (var k in this.stats) s[k] = this.stats[k];
    s.buffered = this.buffer.length;
    s.pendingRetry = this.retryQueue.reduce(function (n, b) { return n + b.length; }, 0);
    return s;
  };

  Collector.prototype._url = function (withKey) {
    var url = this.options.endpoint;
    if (withKey && this.options.ingestKey) {
      url += (url.indexOf("?") < 0 ? "?" : "&") + "key=" + encodeURIComponent(this.options.ingestKey);
    }
    return url;
  };

  /* Send what is buffered now (in batches of flushAt). Returns a promise. */
  Collector.prototype.flush = function () {
    while (this.buffer.length > 0) {
      this.retryQueue.push(this.buffer.splice(0, this.options.flushAt));
    }
    return this._drain();
  };

  Collector.prototype._drain = function () {
    if (this.sending || this.retryTimer || this.retryQueue.length === 0) {
      return Promise.resolve();
    }
    var self = this;
    var batch = this.retryQueue[0];
    this.sending = true;
    return this._post(batch).then(function (outcome) {
      self.sending = false;
      if (outcome !== "retry") {
        self.retryQueue.shift();
        self.stats[outcome === "sent" ? "sent" : "refused"] += batch.length;
        self.retryDelayMs = 0;
        return self._drain();
      }
      self.stats.failedSends++;
      self.retryDelayMs = Math.min(
        self.options.retryMaxMs,
        self.retryDelayMs ? self.retryDelayMs * 2 : self.options.retryBaseMs
      );
      var wait = self.retryDelayMs / 2 + Math.random() * self.retryDelayMs / 2;
      self.retryTimer = global.setTimeout(function () {
        self.retryTimer = null;
        self._drain();
      }, wait);
    });
  };

  Collector.prototype._post = function (batch) {
    var headers = {"Content-Type": "application/json"};
    if (this.options.ingestKey) headers["X-GenPulse-Key"] = this.options.ingestKey;
    return global.fetch(this._url(false), {
      method: "POST",
      headers: headers,
      body: JSON.stringify({events: batch}),
      keepalive: true,
      credentials: "omit"
    }).then(function (response) {
      if (response.ok) return "sent";
      if (response.status >= 500 || response.status === 408 || response.status === 429) {
        return "retry";
      }
      // Other 4xx (bad key, origin not allowed, too large) will not get better by retrying.
      if (global.console) global.console.warn("genpulse: /v1/collect refused a batch: " + response.status);
      return "refused";
    }, function () { return "retry"; });
  };

  /* The page is going away: hand everything to the browser, which sends it after unload. */
  Collector.prototype.flushOnExit = function () {
    while (this.buffer.length > 0) {
      this.retryQueue.push(this.buffer.splice(0, this.options.flushAt));
    }
    // An in-flight batch stays first in the queue: its keepalive fetch outlives the page.
    var keep = this.sending ? this.retryQueue.slice(0, 1) : [];
    for (var i = keep.length; i < this.retryQueue.length; i++) {
      var batch = this.retryQueue[i];
      var body = JSON.stringify({events: batch});
      var queued = false;
      if (global.navigator && global.navigator.sendBeacon) {
        queued = global.navigator.sendBeacon(this._url(true), new Blob([body], {type: "text/plain"}));
      }
      if (queued) {
        this.stats.beacons++;
        this.stats.sent += batch.length;
      } else {
        keep.push(batch);
      }
    }
    this.retryQueue = keep;
    if (keep.length && !this.sending) this._drain();
  };

  Collector.prototype.close = function () {
    global.clearInterval(this.timer);
    return this.flush();
  };

  global.GenPulseCollector = {
    init: function (options) { return new Collector(options); },
    Collector: Collector
  };
})(typeof window !== "undefined" ? window : this);
