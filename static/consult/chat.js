/*
 * Chat page: renders the consultation state and keeps it live over a websocket.
 *
 * The patient token is the URL fragment (#<token>): browsers never send fragments to the server,
 * so it stays out of server logs and Referer headers. It is sent once per connection in the first
 * websocket frame and as a Bearer token to the REST API. Every piece of text is inserted with
 * textContent / text nodes, never parsed as HTML.
 *
 * Pushes are best effort (a socket can die quietly, a frame can be dropped on the way): the REST state
 * is the truth. So besides reading it on load and on every reconnect, the page reads it again when one
 * of the patient's messages has waited a few seconds without news, and whenever the tab becomes visible.
 */
(function () {
  "use strict";

  var root = document.getElementById("consultation");
  if (!root) return;

  var consultationId = root.getAttribute("data-consultation-id");
  var storageKey = "consult-token-" + consultationId;
  var apiUrl = "/api/consultations/" + consultationId + "/";

  var el = {
    messages: document.getElementById("messages"),
    form: document.getElementById("message-form"),
    input: document.getElementById("message-input"),
    send: document.getElementById("send-button"),
    composerError: document.getElementById("composer-error"),
    connection: document.getElementById("connection-status"),
    invalidLink: document.getElementById("invalid-link"),
    linkNotice: document.getElementById("link-notice"),
    closedNotice: document.getElementById("closed-notice"),
    advice: document.getElementById("advice"),
    urgency: document.getElementById("urgency"),
    urgencySource: document.getElementById("urgency-source"),
    clinicianReview: document.getElementById("clinician-review"),
    clinicianReviewLevel: document.getElementById("clinician-review-level"),
    clinicianReviewReason: document.getElementById("clinician-review-reason"),
    adviceLevel: document.getElementById("advice-level"),
    adviceText: document.getElementById("advice-text"),
    record: {
      symptoms: document.getElementById("record-symptoms"),
      diseases: document.getElementById("record-diseases"),
      drugs: document.getElementById("record-drugs")
    }
  };

  var TYPE_LABELS = {
    SYMPTOM: "Symptom", DISEASE: "Condition", DRUG: "Medicine",
    ANATOMY: "Body part", DURATION: "Duration", SEVERITY: "Severity"
  };
  // Levels whose advice is shown first, above everything else on the page.
  var ACT_NOW = { emergency_ambulance: true, emergency: true };

  // The first re-read comes this long after a message starts waiting, the next ones ever later (a long
  // queue is normal under load: the page should not poll it hard).
  var RESYNC_FIRST_DELAY_MS = 4000;
  var RESYNC_MAX_DELAY_MS = 30000;

  var token = readToken();
  var state = null;
  var stateVersion = 0;  // how many states were applied: a re-read that a push overtook is not applied
  // Messages sent but not yet in the server's state: {clientId, text, id, error, afterId}; afterId is the
  // newest message id the page knew when it sent, so that the server's copy can be recognised without id.
  var pending = [];
  var resyncTimer = null;
  var resyncDelay = RESYNC_FIRST_DELAY_MS;
  var resyncInFlight = false;
  var socket = null;
  var reconnectDelay = 1000;
  var reconnectTimer = null;
  var authFailed = false;
  var actNowShown = false;  // an act-now instruction is shown (it is brought into view once, when it appears)
  var clientCounter = 0;

  function readToken() {
    var fromHash = decodeURIComponent((window.location.hash || "").replace(/^#/, ""));
    try {
      if (fromHash) {
        window.sessionStorage.setItem(storageKey, fromHash);
        return fromHash;
      }
      return window.sessionStorage.getItem(storageKey) || "";
    } catch (e) {
      return fromHash;
    }
  }

  // ---------------------------------------------------------------- rendering helpers

  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
  }

  function setConnection(stateName, text) {
    el.connection.setAttribute("data-state", stateName);
    el.connection.textContent = text;
  }

  function highlightedText(text, entities) {
    var fragment = document.createDocumentFragment();
    var sorted = (entities || []).slice().sort(function (a, b) {
      return a.start - b.start || b.end - a.end;
    });
    var cursor = 0;
    sorted.forEach(function (entity) {
      if (typeof entity.start !== "number" || typeof entity.end !== "number") return;
      if (entity.start < cursor || entity.end > text.length || entity.end <= entity.start) return;
      if (entity.start > cursor) fragment.appendChild(document.createTextNode(text.slice(cursor, entity.start)));
      var label = TYPE_LABELS[entity.type] || entity.type;
      var mark = node("mark", "entity entity--" + String(entity.type).toLowerCase(), text.slice(entity.start, entity.end));
      mark.setAttribute("data-type", entity.type);
      mark.setAttribute("title", label + (entity.assertion === "absent" ? " (not present)" : ""));
      fragment.appendChild(mark);
      cursor = entity.end;
    });
    if (cursor < text.length) fragment.appendChild(document.createTextNode(text.slice(cursor)));
    return fragment;
  }

  function statusLine(message) {
    if (message.status === "queued" || message.status === "processing" || message.status === "sending") {
      var waiting = node("p", "message__status message__status--pending");
      waiting.appendChild(node("span", "dots", ""));
      waiting.appendChild(document.createTextNode(
        message.status === "processing" ? "The assistant is reading your message…" : "Waiting for the assistant…"
      ));
      return waiting;
    }
    if (message.status === "failed") {
      return node("p", "message__status message__status--failed",
        message.error || "The assistant could not process this message. Please try sending it again.");
    }
    return null;
  }

  function messageItem(message) {
    var role = message.role === "assistant" ? "assistant" : "patient";
    var item = node("li", "message " + role);
    item.setAttribute("data-status", message.status || "");
    if (message.id !== undefined && message.id !== null) item.setAttribute("data-id", String(message.id));
    var who = node("span", "visually-hidden", role === "patient" ? "You said: " : "Assistant: ");
    var bubble = node("div", "message__bubble");
    bubble.appendChild(who);
    if (role === "patient") {
      bubble.appendChild(highlightedText(message.text || "", message.entities));
    } else {
      bubble.appendChild(document.createTextNode(message.text || ""));
    }
    item.appendChild(bubble);
    var status = role === "patient" ? statusLine(message) : null;
    if (status) item.appendChild(status);
    return item;
  }

  // Rendered messages by key, so that an update only touches messages that changed: the list is
  // an aria-live region, and rebuilding it would make screen readers read the whole chat again.
  var rendered = {};

  function messageSignature(message) {
    return [message.role, message.status, message.text, message.error || "",
      JSON.stringify((message.entities || []).map(function (e) { return [e.start, e.end, e.type]; }))].join("|");
  }

  // The page is the one scroll (the message list has none of its own). The patient "follows" the chat while the
  // composer is in view or nearly; on the first render too, unless an act-now instruction is shown at the top.
  var firstRender = true;

  function followingChat() {
    if (firstRender) return !actNowShown;
    var box = el.form.getBoundingClientRect();
    return box.bottom > -80 && box.top < window.innerHeight + 80;
  }

  // The newest message and the composer below it, in view together when they fit; else the newest message from
  // its start (a long reply is read from its top).
  function newestShow() {
    var last = el.messages.lastElementChild;
    if (!last || !last.scrollIntoView) return;
    var top = last.getBoundingClientRect().top;
    var bottom = el.form.hidden ? last.getBoundingClientRect().bottom : el.form.getBoundingClientRect().bottom;
    if (top >= 0 && bottom <= window.innerHeight) return;
    if (bottom - top <= window.innerHeight) {
      (el.form.hidden ? last : el.form).scrollIntoView({ block: "end" });
    } else {
      last.scrollIntoView({ block: "start" });
    }
  }

  function renderMessages() {
    var nearBottom = followingChat();
    firstRender = false;
    var known = {};
    var wanted = [];
    (state ? state.messages : []).forEach(function (message) {
      known[message.id] = true;
      wanted.push({ key: "m" + message.id, message: message });
    });
    pendingMatch(state ? state.messages : []);
    pending = pending.filter(function (local) { return !(local.id && known[local.id]); });
    pending.forEach(function (local) {
      wanted.push({ key: "p" + local.clientId, message: {
        id: local.id, role: "patient", text: local.text,
        status: local.error ? "failed" : (local.id ? "queued" : "sending"),
        error: local.error, entities: []
      } });
    });

    var next = {};
    var nodes = wanted.map(function (entry) {
      var signature = messageSignature(entry.message);
      var previous = rendered[entry.key];
      var item = previous && previous.signature === signature ? previous.node : messageItem(entry.message);
      if (previous && previous.node !== item && previous.node.parentNode) previous.node.parentNode.removeChild(previous.node);
      next[entry.key] = { signature: signature, node: item };
      return item;
    });
    Object.keys(rendered).forEach(function (key) {
      var old = rendered[key].node;
      if (!next[key] && old.parentNode) old.parentNode.removeChild(old);
    });
    rendered = next;

    var intro = el.messages.querySelector(".message--intro");
    var cursor = intro ? intro.nextSibling : el.messages.firstChild;
    nodes.forEach(function (item) {
      if (cursor === item) {
        cursor = cursor.nextSibling;
      } else {
        el.messages.insertBefore(item, cursor);
      }
    });

    if (nearBottom) newestShow();
    // Whatever changed what is shown (a send, an acknowledgement, a state) may start or end a wait.
    resyncSchedule();
  }

  // A message whose acknowledgement has not come (yet, or ever: the socket closed after sending) is shown
  // once: the server's copy with the same text, newer than what the page knew at sending, is taken as it.
  function pendingMatch(messages) {
    var claimed = {};
    pending.forEach(function (local) { if (local.id) claimed[local.id] = true; });
    pending.forEach(function (local) {
      if (local.id || local.error) return;
      var match = messages.filter(function (message) {
        return message.role === "patient" && message.id > local.afterId && !claimed[message.id] &&
          message.text === local.text;
      })[0];
      if (match) {
        local.id = match.id;
        claimed[match.id] = true;
      }
    });
  }

  function newestMessageId() {
    return (state ? state.messages : []).reduce(function (newest, message) {
      return Math.max(newest, message.id);
    }, 0);
  }

  function renderRecordList(list, items) {
    clear(list);
    if (!items || !items.length) {
      list.appendChild(node("li", "record__empty", list.getAttribute("data-empty")));
      return;
    }
    items.forEach(function (item) {
      var li = node("li", "record__item", item.text);
      li.setAttribute("data-type", item.type);
      if (item.assertion === "absent") {
        li.classList.add("record__item--absent");
        li.appendChild(node("span", "record__note", " (not present)"));
      }
      list.appendChild(li);
    });
  }

  function renderState() {
    if (!state) return;
    var record = state.record || {};
    renderRecordList(el.record.symptoms, record.symptoms);
    renderRecordList(el.record.diseases, record.diseases);
    renderRecordList(el.record.drugs, record.drugs);

    // A clinician who reviewed the consultation owns its urgency: their level, with their reason, wins.
    var review = state.clinician_review || null;
    var urgency = review ? review.urgency : state.urgency;
    var urgencyLabel = review ? review.urgency_label : state.urgency_label;
    el.urgency.setAttribute("data-urgency", urgency || "");
    el.urgency.textContent = urgencyLabel || "Not assessed yet";
    el.urgencySource.hidden = !review;
    el.clinicianReview.hidden = !review;
    el.clinicianReview.setAttribute("data-urgency", review ? review.urgency : "");
    el.clinicianReviewLevel.textContent = review ? review.urgency_label : "";
    el.clinicianReviewReason.textContent = review ? review.reason : "";

    // The advice comes first on the page: at once when it says act now (an alert, brought into view when it
    // appears), and for the other levels too, as a calm notice, once there is advice (a red flag's while the
    // questions go on, the conclusion's) or a clinician's review. Its level is the label the side panel shows.
    var actNow = Boolean(ACT_NOW[urgency]);
    var shown = Boolean(urgency) && (actNow || state.status === "closed" || Boolean(review) || Boolean(state.advice));
    el.advice.hidden = !shown;
    el.advice.setAttribute("data-urgency", urgency || "");
    el.advice.setAttribute("role", actNow ? "alert" : "status");
    el.advice.classList.toggle("advice--calm", shown && !actNow);
    el.adviceLevel.textContent = shown ? urgencyLabel : "";
    el.adviceText.textContent = shown ? (review ? review.reason : (state.advice || "")) : "";

    // A concluded consultation still takes messages: the patient can add what they forgot and is re-triaged.
    el.closedNotice.hidden = state.status !== "closed";
    setComposerEnabled(true);
    var actNowNew = shown && actNow && !actNowShown;
    actNowShown = shown && actNow;
    renderMessages();
    if (actNowNew && el.advice.getBoundingClientRect().top < 0) el.advice.scrollIntoView({ block: "start" });
  }

  function setComposerEnabled(enabled) {
    el.input.disabled = !enabled;
    el.send.disabled = !enabled;
  }

  function showInvalidLink() {
    authFailed = true;
    el.invalidLink.hidden = false;
    el.linkNotice.hidden = true;
    el.form.hidden = true;
    setConnection("failed", "Not connected");
  }

  // ---------------------------------------------------------------- server communication

  // The consultation's state from the REST API (null when the link is not valid).
  function stateFetch() {
    return window.fetch(apiUrl, {
      headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401 || response.status === 404) {
        showInvalidLink();
        return null;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function stateApply(data) {
    state = data;
    stateVersion += 1;
    renderState();
  }

  function stateLoad() {
    return stateFetch().then(function (data) {
      if (data) stateApply(data);
    }).catch(function () {
      setConnection("offline", "Could not load your consultation. Retrying…");
    });
  }

  // ---------------------------------------------------------------- resync

  function messageWaiting() {
    var serverWaiting = (state ? state.messages : []).some(function (message) {
      return message.role === "patient" && (message.status === "queued" || message.status === "processing");
    });
    return serverWaiting || pending.some(function (local) { return !local.error; });
  }

  // Reads the state again, later and later, while a message waits; stops once none does.
  function resyncSchedule() {
    if (authFailed || !messageWaiting()) {
      window.clearTimeout(resyncTimer);
      resyncTimer = null;
      resyncDelay = RESYNC_FIRST_DELAY_MS;
      return;
    }
    if (resyncTimer !== null) return;
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      resyncDelay = Math.min(resyncDelay * 2, RESYNC_MAX_DELAY_MS);
      stateResync();
    }, resyncDelay);
  }

  // The REST read the page starts with, which works whatever state the socket is in. Harmless when nothing
  // was missed: rendering is keyed by message id, so a state the page already shows changes nothing on screen.
  function stateResync() {
    if (authFailed || resyncInFlight || !state) return;
    resyncInFlight = true;
    var versionAtStart = stateVersion;
    stateFetch().then(function (data) {
      resyncInFlight = false;
      // A push that came while the request was out may be newer than this answer: keep the push.
      if (data && stateVersion === versionAtStart) {
        stateApply(data);
      } else {
        resyncSchedule();
      }
    }).catch(function () {
      // Offline, or the server restarts: the socket reports that; try again on the next turn.
      resyncInFlight = false;
      resyncSchedule();
    });
  }

  function connect() {
    if (authFailed) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setConnection("connecting", "Connecting…");
    socket = new WebSocket(scheme + window.location.host + "/ws/consultations/" + consultationId + "/");
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "auth", token: token }));
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handleFrame(frame);
    });
    socket.addEventListener("close", function () {
      socket = null;
      if (authFailed) return;
      setConnection("offline", "Connection lost. Reconnecting…");
      reconnectTimer = window.setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 30000);
    });
  }

  function handleFrame(frame) {
    if (frame.type === "consultation.update") {
      reconnectDelay = 1000;
      setConnection("online", "Connected");
      stateApply(frame);
    } else if (frame.type === "message.queued") {
      pending.forEach(function (local) {
        if (local.clientId === frame.client_id) local.id = frame.id;
      });
      renderMessages();
    } else if (frame.type === "error") {
      if (frame.code === "auth_failed") {
        showInvalidLink();
        return;
      }
      var local = pending.filter(function (item) { return item.clientId === frame.client_id; })[0];
      if (local) {
        pending.splice(pending.indexOf(local), 1);
        if (!el.input.value) el.input.value = local.text;
        renderMessages();
      }
      el.composerError.textContent = frame.message || "Something went wrong. Please try again.";
    }
  }

  function sendOverApi(local) {
    return window.fetch(apiUrl + "messages/", {
      method: "POST",
      headers: {
        "Authorization": "Bearer " + token,
        "Content-Type": "application/json",
        "Accept": "application/json"
      },
      credentials: "omit",
      body: JSON.stringify({ text: local.text })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (result.ok) {
        local.id = result.body.id;
      } else {
        pending.splice(pending.indexOf(local), 1);
        el.input.value = el.input.value || local.text;
        var detail = result.body && (result.body.text || result.body.detail);
        el.composerError.textContent = Array.isArray(detail) ? detail.join(" ") : (detail || "Could not send.");
      }
      renderMessages();
    }).catch(function () {
      local.error = "Not sent: you seem to be offline. Please try again.";
      renderMessages();
    });
  }

  function submit(event) {
    if (event) event.preventDefault();
    var text = el.input.value.trim();
    el.composerError.textContent = "";
    if (!text) {
      el.composerError.textContent = "Please type a message first.";
      return;
    }
    // No maxlength attribute: browsers silently cut pasted text, and a message is never truncated.
    var maxChars = parseInt(el.input.getAttribute("data-max-chars"), 10);
    if (maxChars && text.length > maxChars) {
      el.composerError.textContent = "Your message is too long (" + text.length + " characters; the limit is " + maxChars + ").";
      return;
    }
    clientCounter += 1;
    var local = {
      clientId: "c" + Date.now().toString(36) + clientCounter, text: text, id: null, error: null,
      afterId: newestMessageId()
    };
    pending.push(local);
    el.input.value = "";
    renderMessages();
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message.send", text: text, client_id: local.clientId }));
    } else {
      sendOverApi(local);
    }
  }

  // ---------------------------------------------------------------- start

  if (!token) {
    showInvalidLink();
    return;
  }
  el.linkNotice.hidden = false;
  el.form.addEventListener("submit", submit);
  el.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
  });
  document.addEventListener("visibilitychange", function () {
    // A hidden tab's timers are throttled and its socket may have been cut: catch up at once.
    if (document.visibilityState === "visible") stateResync();
  });
  stateLoad().then(function () {
    connect();
    // No scrolling to the composer: what the first render showed (the act-now instruction) stays in view.
    if (!el.input.disabled) el.input.focus({ preventScroll: true });
  });
})();
