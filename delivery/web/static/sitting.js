// The sitting page: one question at a time, answers saved as they are chosen.
//
// The server holds the truth: the items (without keys), the answers, the marks
// and the clock. This page keeps a copy to render from, sends each change at
// once, and retries a save until the server has committed it. Changes not yet
// acknowledged are also kept in localStorage, so a reload sends them again.
(function () {
  "use strict";

  var csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  var state = null;          // as returned by GET /api/sitting
  var current = 1;           // the position shown
  var deadline = null;       // Date.now() value at which time runs out
  var clockStopped = false;  // paused by the proctor
  var finishing = false;
  var fieldNames = {};       // field code -> its name in the page's language
  var stopped = false;       // this PC no longer holds the sitting (moved to another seat)
  var pending = {};          // position -> {kind, value, attempt}; not yet acknowledged
  var storageKey = null;
  var alertsGiven = {};
  var words = {};            // the page's words, in its language (the template's #sitting-strings)

  function $(id) { return document.getElementById(id); }

  // A sentence of the page's words with its {places} filled in.
  function say(key, values) {
    return (words[key] || key).replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function item(position) { return state.items[position - 1]; }

  // ---- rendering -------------------------------------------------------

  function renderQuestion(focusHeading) {
    var it = item(current);
    $("question-number").textContent = current;
    $("question-count").textContent = state.items.length;
    $("question-field").textContent = fieldNames[it.field] || it.field_name;
    $("question-stem").textContent = it.stem;
    $("question-instructions").textContent = it.instructions || "";
    $("question-instructions").hidden = !it.instructions;
    $("question-stimulus").hidden = !it.stimulus;
    $("question-stimulus-title").textContent = it.stimulus ? (it.stimulus.title || say("passage")) : "";
    $("question-stimulus-text").textContent = it.stimulus ? it.stimulus.text : "";
    // The item's own language (QTI xml:lang) on its text, not on the page's own labels.
    ["question-instructions", "question-stimulus", "question-stem", "question-table", "question-options"]
      .forEach(function (id) {
        if (it.language) { $(id).lang = it.language; } else { $(id).removeAttribute("lang"); }
      });

    var tableBox = $("question-table");
    tableBox.textContent = "";
    if (it.figure) {
      var figure = document.createElement("figure");
      figure.className = "item-figure";
      var image = document.createElement("img");
      image.src = it.figure.src;
      image.alt = it.figure.alt;
      figure.appendChild(image);
      tableBox.appendChild(figure);
    }
    if (it.table) {
      var table = document.createElement("table");
      table.className = "item-table";
      var head = table.createTHead().insertRow();
      it.table.header.forEach(function (text) {
        var th = document.createElement("th");
        th.scope = "col";
        th.textContent = text;
        head.appendChild(th);
      });
      var body = table.createTBody();
      it.table.rows.forEach(function (cells) {
        var row = body.insertRow();
        cells.forEach(function (text) { row.insertCell().textContent = text; });
      });
      tableBox.appendChild(table);
    }

    var box = $("question-options");
    box.querySelectorAll(".option").forEach(function (node) { node.remove(); });
    box.querySelector("legend").textContent = say("options_for", { n: current });
    it.options.forEach(function (option, index) {
      var label = document.createElement("label");
      label.className = "option";
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "option";
      input.value = String(option.id);
      input.checked = it.answer === option.id;
      input.addEventListener("change", function () { choose(option.id); });
      var letter = document.createElement("span");
      letter.className = "option-label";
      letter.textContent = state.option_labels[index];
      var text = document.createElement("span");
      text.className = "option-text";
      text.textContent = option.text;
      label.appendChild(input);
      label.appendChild(letter);
      label.appendChild(text);
      box.appendChild(label);
    });

    $("mark-checkbox").checked = it.marked;
    $("question-flag").hidden = !it.marked;
    $("previous-button").disabled = current === 1;
    $("next-button").disabled = current === state.items.length;
    showSaveStatus();
    renderNavigator();
    if (focusHeading) $("question-title").focus();
  }

  function describe(it) {
    var parts = [say("question", { n: it.position }), say(it.answer === null ? "unanswered" : "answered")];
    if (it.marked) parts.push(say("marked"));
    if (it.position === current) parts.push(say("current"));
    return parts.join(say("list_separator"));
  }

  function renderNavigator() {
    var list = $("navigator-list");
    if (list.children.length !== state.items.length) {
      list.textContent = "";
      state.items.forEach(function (it) {
        var li = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        var number = document.createElement("span");
        number.className = "nav-number";
        number.textContent = it.position;
        // The flag (drawn by the stylesheet) shows a marked question by its shape too, not by colour alone.
        var flag = document.createElement("span");
        flag.className = "nav-flag";
        flag.setAttribute("aria-hidden", "true");
        button.appendChild(number);
        button.appendChild(flag);
        button.addEventListener("click", function () { go(it.position); });
        li.appendChild(button);
        list.appendChild(li);
      });
    }
    state.items.forEach(function (it, index) {
      var button = list.children[index].firstChild;
      button.className = "nav-item" + (it.answer !== null ? " answered" : "") + (it.marked ? " marked" : "") +
        (it.position === current ? " current" : "");
      button.setAttribute("aria-label", describe(it));
      if (it.position === current) button.setAttribute("aria-current", "step");
      else button.removeAttribute("aria-current");
    });
    var answered = state.items.filter(function (it) { return it.answer !== null; }).length;
    $("answered-count").textContent = say("answered_count", { answered: answered, total: state.items.length });
  }

  function showSaveStatus() {
    var status = $("save-status");
    var waiting = pending["answer:" + current] || pending["mark:" + current];
    status.className = "save-status";
    if (waiting && waiting.attempt > 0) {
      status.textContent = say("retrying");
      status.classList.add("unsaved");
    } else if (waiting) {
      status.textContent = say("saving");
    } else if (item(current).answer !== null) {
      status.textContent = say("saved");
      status.classList.add("saved");
    } else {
      status.textContent = "";
    }
  }

  function renderReview(focus) {
    var lists = { unanswered: $("review-unanswered"), marked: $("review-marked"), answered: $("review-answered") };
    Object.keys(lists).forEach(function (key) { lists[key].textContent = ""; });
    var counts = { answered: 0, unanswered: 0, marked: 0 };
    state.items.forEach(function (it) {
      var groups = [it.answer === null ? "unanswered" : "answered"];
      if (it.marked) groups.push("marked");
      groups.forEach(function (group) {
        counts[group] += 1;
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.href = "#question-" + it.position;
        link.textContent = say("question", { n: it.position });
        link.addEventListener("click", function (event) { event.preventDefault(); closeReview(); go(it.position); });
        li.appendChild(link);
        lists[group].appendChild(li);
      });
    });
    Object.keys(lists).forEach(function (key) {
      if (lists[key].children.length > 0) return;
      var none = document.createElement("li");
      none.className = "review-none";
      none.textContent = say("none");
      lists[key].appendChild(none);
    });
    $("review-summary").textContent = say("review_summary", counts);
    if (focus) $("review-title").focus();
  }

  // ---- navigation --------------------------------------------------------

  function go(position) {
    if (position < 1 || position > state.items.length) return;
    current = position;
    renderQuestion(true);
    savePosition(position);
  }

  // One position save in flight at a time, then the latest: two quick moves sent at once
  // could arrive in either order and leave the earlier position stored.
  var positionInFlight = false, positionWanted = null;
  function savePosition(position) {
    positionWanted = position;
    if (positionInFlight) return;
    positionInFlight = true;
    api("PUT", "/api/sitting/position", { position: position }).catch(function () {}).then(function () {
      positionInFlight = false;
      if (positionWanted !== position) savePosition(positionWanted);
    });
  }

  function openReview() {
    $("question").hidden = true;
    $("review").hidden = false;
    renderReview(true);
  }

  function closeReview() {
    $("review").hidden = true;
    $("question").hidden = false;
    renderQuestion(true);
  }

  // ---- saving --------------------------------------------------------------

  function remember() {
    try { localStorage.setItem(storageKey, JSON.stringify(pending)); } catch (e) { /* storage full: retries still run */ }
  }

  function choose(optionId) {
    item(current).answer = optionId;
    queue("answer", current, optionId);
  }

  function toggleMark(marked) {
    item(current).marked = marked;
    $("question-flag").hidden = !marked;
    queue("mark", current, marked);
  }

  function queue(kind, position, value) {
    var key = kind + ":" + position;
    pending[key] = { kind: kind, position: position, value: value, attempt: 0 };
    remember();
    renderNavigator();
    showSaveStatus();
    send(key);
  }

  function send(key) {
    var entry = pending[key];
    if (!entry) return Promise.resolve(true);
    var path = entry.kind === "answer" ? "/api/sitting/answers/" + entry.position : "/api/sitting/marks/" + entry.position;
    var body = entry.kind === "answer" ? { option: entry.value } : { marked: entry.value };
    return api("PUT", path, body).then(function (response) {
      if (response.ok) {
        if (pending[key] === entry) delete pending[key];
        remember();
        if (entry.position === current) showSaveStatus();
        return true;
      }
      if (response.status >= 500 || response.status === 429) return retry(key, entry);
      if (response.status === 423) {
        // Paused by the proctor: keep the change; it is sent again when the sitting resumes.
        syncClock();
        return false;
      }
      // Refused for good (time up, paused, logged out): stop retrying and say why.
      if (pending[key] === entry) delete pending[key];
      remember();
      handleRefusal(response);
      return false;
    }, function () { return retry(key, entry); });
  }

  function retry(key, entry) {
    if (pending[key] !== entry) return Promise.resolve(true);
    entry.attempt += 1;
    if (entry.position === current) showSaveStatus();
    var delay = Math.min(10000, 500 * Math.pow(2, entry.attempt - 1));
    return new Promise(function (resolve) {
      setTimeout(function () { send(key).then(resolve); }, delay);
    });
  }

  function flush() {
    return Promise.all(Object.keys(pending).map(function (key) { return send(key); }));
  }

  function handleRefusal(response) {
    var message = (response.data && response.data.error) || say("refused");
    if (response.status === 401) {
      signedOut(response);
      return;
    }
    syncClock();
    $("save-status").textContent = message;
    $("save-status").className = "save-status unsaved";
  }

  // This page no longer holds the sitting. After a seat move the server says where it
  // continues, and the screen says so and stops; otherwise it goes back to the login page.
  function signedOut(response) {
    if (response.data && response.data.moved_to_seat) {
      stopped = true;
      $("stopped-reason").textContent = response.data.error;
      $("stopped").hidden = false;
      $("paused").hidden = true;
      $("timer").textContent = "-:--:--";  // this PC's clock no longer counts
      if ($("finish-dialog").open) $("finish-dialog").close();
      $("stopped").querySelector("a").focus();
      return;
    }
    window.location.href = "/";
  }

  // ---- the clock -------------------------------------------------------------

  // h:mm:ss, as the proctor's board writes the time left (delivery.console.format_remaining).
  function formatTime(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
  }

  function setClock(status, remaining) {
    var resumed = clockStopped && status === "in_progress";
    clockStopped = status !== "in_progress";
    deadline = Date.now() + remaining * 1000;
    $("paused").hidden = status !== "paused";
    $("paused-time").textContent = formatTime(remaining);
    $("timer").textContent = formatTime(remaining);
    if (resumed) flush();
  }

  function tick() {
    if (!state || clockStopped || finishing || stopped) return;
    var left = (deadline - Date.now()) / 1000;
    $("timer").textContent = formatTime(left);
    [10, 5, 1].forEach(function (minutes) {
      if (left <= minutes * 60 && left > minutes * 60 - 5 && !alertsGiven[minutes]) {
        alertsGiven[minutes] = true;
        $("time-alert").textContent = minutes === 1 ? say("one_minute_left") : say("minutes_left", { minutes: minutes });
      }
    });
    if (left <= 0) finish(true);
  }

  function syncClock() {
    if (stopped) return Promise.resolve();
    return api("GET", "/api/sitting/clock").then(function (response) {
      // A poll in flight while the sitting is being finished sees the token the finish replaced:
      // the finish's own answer says where the page goes (the result), not this one.
      if (response.status === 401) { if (!finishing) signedOut(response); return; }
      if (!response.ok) return;
      if (response.data.status === "finished" || response.data.status === "ended") {
        window.location.href = response.data.result_url;
        return;
      }
      setClock(response.data.status, response.data.remaining_seconds);
    }, function () { /* offline: the local clock keeps running */ });
  }

  // ---- finishing -------------------------------------------------------------

  function openFinishDialog() {
    var unanswered = state.items.filter(function (it) { return it.answer === null; }).map(function (it) { return it.position; });
    $("finish-summary").textContent = unanswered.length === 0
      ? say("all_answered")
      : say("not_answered", { count: unanswered.length, list: unanswered.join(say("list_separator")) });
    var unsaved = Object.keys(pending).length;
    $("finish-unsaved").hidden = unsaved === 0;
    $("finish-unsaved").textContent = say("unsaved", { count: unsaved });
    $("finish-dialog").showModal();
  }

  function finish(timeUp) {
    if (finishing) return;
    finishing = true;
    $("finish-confirm").disabled = true;
    $("time-alert").textContent = say(timeUp ? "time_up" : "finishing");
    var flushed = timeUp ? Promise.resolve() : flush();
    flushed.then(function () { return submitFinish(0); });
  }

  function submitFinish(attempt) {
    return api("POST", "/api/sitting/finish", {}).then(function (response) {
      if (response.ok) {
        try { localStorage.removeItem(storageKey); } catch (e) { /* nothing to clean */ }
        window.location.href = response.data.result_url;
      } else if (response.status >= 500) {
        setTimeout(function () { submitFinish(attempt + 1); }, Math.min(10000, 1000 * (attempt + 1)));
      } else {
        finishing = false;
        $("finish-confirm").disabled = false;
        if ($("finish-dialog").open) $("finish-dialog").close();
        handleRefusal(response);
      }
    }, function () {
      setTimeout(function () { submitFinish(attempt + 1); }, Math.min(10000, 1000 * (attempt + 1)));
    });
  }

  // ---- keyboard --------------------------------------------------------------

  function onKey(event) {
    if (!state || event.ctrlKey || event.altKey || event.metaKey) return;
    if ($("finish-dialog").open || !$("paused").hidden || stopped) return;
    var key = event.key.toLowerCase();
    var questionShown = !$("question").hidden;
    if (questionShown && /^[1-9]$/.test(key)) {
      var index = parseInt(key, 10) - 1;
      var option = item(current).options[index];
      if (option) {
        choose(option.id);
        var radio = $("question-options").querySelectorAll("input")[index];
        radio.checked = true;
        radio.focus();
        event.preventDefault();
      }
    } else if (key === "n" && questionShown) { go(current + 1); event.preventDefault(); }
    else if (key === "p" && questionShown) { go(current - 1); event.preventDefault(); }
    else if (key === "m" && questionShown) {
      $("mark-checkbox").checked = !$("mark-checkbox").checked;
      toggleMark($("mark-checkbox").checked);
      event.preventDefault();
    } else if (key === "r") { if (questionShown) openReview(); else closeReview(); event.preventDefault(); }
  }

  // ---- start -----------------------------------------------------------------

  function replayPending() {
    var stored = {};
    try { stored = JSON.parse(localStorage.getItem(storageKey) || "{}"); } catch (e) { stored = {}; }
    Object.keys(stored).forEach(function (key) {
      var entry = stored[key];
      var it = item(entry.position);
      if (!it) return;
      if (entry.kind === "answer") it.answer = entry.value; else it.marked = entry.value;
      pending[key] = { kind: entry.kind, position: entry.position, value: entry.value, attempt: 0 };
      send(key);
    });
  }

  // The questions (prepared at login, the same on every reload) joined with what changes:
  // the answers and marks so far.
  function withQuestions(sitting, questions) {
    var saved = {};
    sitting.answers.forEach(function (a) { saved[a.position] = a; });
    sitting.option_labels = questions.option_labels;
    sitting.items = questions.items.map(function (it) {
      var a = saved[it.position];
      it.answer = a ? a.answer : null;
      it.marked = a ? a.marked : false;
      return it;
    });
    return sitting;
  }

  function start() {
    api("GET", "/api/sitting").then(function (response) {
      if (response.status === 401) { signedOut(response); return null; }
      if (!response.ok) throw new Error(response.data.error || say("load_failed"));
      if (response.data.result_url) { window.location.href = response.data.result_url; return null; }
      return api("GET", "/api/sitting/questions").then(function (questions) {
        if (questions.status === 401) { signedOut(questions); return null; }
        if (!questions.ok) throw new Error(questions.data.error || say("load_failed"));
        return withQuestions(response.data, questions.data);
      });
    }).then(function (loaded) {
      if (!loaded) return;
      state = loaded;
      storageKey = "cbt-pending-" + state.sitting_key;
      replayPending();
      current = Math.min(Math.max(state.current_position, 1), state.items.length);
      $("loading").hidden = true;
      $("question").hidden = false;
      $("navigator").hidden = false;
      setClock(state.status, state.remaining_seconds);
      renderQuestion(false);
      setInterval(tick, 1000);
      // The server's clock is read every few seconds (a pause shows at once), each page
      // at its own offset so that a room of candidates does not poll in step.
      var every = 1000 * Math.max(2, parseInt($("loading").dataset.clockPollSeconds || "5", 10));
      setTimeout(function () { syncClock(); setInterval(syncClock, every); }, Math.random() * every);
    }).catch(function (error) {
      $("loading").hidden = true;
      $("load-error").hidden = false;
      $("load-error").textContent = error.message + " " + say("reload");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    try { words = JSON.parse($("sitting-strings").textContent); } catch (e) { words = {}; }
    try { fieldNames = JSON.parse($("field-names").textContent); } catch (e) { fieldNames = {}; }
    $("previous-button").addEventListener("click", function () { go(current - 1); });
    $("next-button").addEventListener("click", function () { go(current + 1); });
    $("mark-checkbox").addEventListener("change", function (event) { toggleMark(event.target.checked); });
    $("review-button").addEventListener("click", function () { if ($("review").hidden) openReview(); else closeReview(); });
    $("review-back").addEventListener("click", closeReview);
    $("finish-button").addEventListener("click", openFinishDialog);
    $("finish-cancel").addEventListener("click", function () { $("finish-dialog").close(); });
    $("finish-confirm").addEventListener("click", function () { finish(false); });
    document.querySelectorAll(".size-controls button").forEach(function (button) {
      button.addEventListener("click", function () {
        var step = button.dataset.size === "larger" ? 1 : button.dataset.size === "smaller" ? -1 : 0;
        window.cbtDisplaySize.change(step);
      });
    });
    document.addEventListener("keydown", onKey);
    window.addEventListener("online", function () { flush(); syncClock(); });
    start();
  });
})();
