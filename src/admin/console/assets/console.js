// rowhook console: the little behaviour the server-rendered pages need.
//
// - [data-live]: polls its URL and replaces its HTML when it changed (keeping
//   the focused control focused), so the overview and the deliveries stay
//   current without a reload.
// - button[data-api]: calls the admin API (method, path, JSON body) with the
//   session cookie and its CSRF token, after a confirmation when data-confirm
//   says so, then does what data-done says.
// - form[data-api-form]: the same with the form's fields as the JSON body
//   (a webhook's fields; or, with data-fields, each named field as it is).
// Everything shown from an answer goes in as text (textContent), never as HTML.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var statusLine = document.getElementById("status");

  function say(text, bad) {
    if (!statusLine) return;
    statusLine.textContent = text;
    statusLine.className = bad ? "status bad" : "status ok";
  }

  function api(method, path, body) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.json().then(
        function (data) { return { ok: response.ok, status: response.status, data: data }; },
        function () { return { ok: response.ok, status: response.status, data: null }; }
      );
    });
  }

  function errorOf(result) {
    if (result.data && typeof result.data.error === "string") return result.data.error;
    return "the server answered " + result.status;
  }

  // A modal confirmation (a <dialog>, so keyboard and screen readers work); resolves true or false.
  function confirmed(text) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(false);
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () { resolve(dialog.returnValue === "confirm"); }, { once: true });
    });
  }

  // Shows a new secret once; resolves when the dialog is closed.
  function showSecret(secret) {
    var dialog = document.getElementById("secret-dialog");
    var field = document.getElementById("secret-value");
    field.value = secret;
    dialog.showModal();
    field.focus();
    field.select();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () { field.value = ""; resolve(); }, { once: true });
    });
  }

  var refreshers = [];

  function refreshAll() {
    refreshers.forEach(function (refresh) { refresh(); });
  }

  function done(spec, result) {
    var data = result.data && result.data.data;
    if (spec === "reload") {
      window.location.reload();
    } else if (spec === "reload-live") {
      refreshAll();
    } else if (spec === "secret" && data && data.secret) {
      showSecret(data.secret).then(function () { window.location.reload(); });
    } else if (spec === "created" && data && data.id) {
      var go = function () { window.location.assign("/console/webhooks/" + encodeURIComponent(data.id)); };
      if (data.secret) showSecret(data.secret).then(go); else go();
    } else if (spec && spec.indexOf("goto:") === 0) {
      window.location.assign(spec.slice(5));
    }
  }

  function warnings(result) {
    var meta = result.data && result.data.meta;
    return meta && meta.warnings && meta.warnings.length ? " (" + meta.warnings.join("; ") + ")" : "";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-api]");
    if (!button || button.disabled) return;
    event.preventDefault();
    var question = button.getAttribute("data-confirm");
    (question ? confirmed(question) : Promise.resolve(true)).then(function (yes) {
      if (!yes) { button.focus(); return; }
      var raw = button.getAttribute("data-body");
      var body = raw ? JSON.parse(raw) : undefined;
      button.disabled = true;
      say("Working…", false);
      api(button.getAttribute("data-api"), button.getAttribute("data-path"), body).then(function (result) {
        button.disabled = false;
        if (!result.ok) { say("Not done: " + errorOf(result), true); return; }
        say("Done: " + button.textContent.trim() + warnings(result), false);
        done(button.getAttribute("data-done"), result);
      }, function (error) {
        button.disabled = false;
        say("Not done: " + error, true);
      });
    });
  });

  function formBody(form, method) {
    var body = {};
    var url = form.elements.namedItem("url");
    if (url) body.url = url.value.trim();
    body.events = Array.prototype.map.call(form.querySelectorAll('input[name="events"]:checked'), function (box) { return box.value; });
    var ordering = form.elements.namedItem("ordering");
    if (ordering) {
      if (ordering.value) body.ordering = ordering.value;
      else if (method === "PUT") body.ordering = null;
    }
    var secret = form.elements.namedItem("secret");
    if (secret && secret.value) body.secret = secret.value;
    var active = form.elements.namedItem("is_active");
    if (active) body.is_active = active.checked;
    return body;
  }

  // A datetime-local value (shown as UTC) as RFC 3339.
  function utc(value) {
    return value.length === 16 ? value + ":00Z" : value + "Z";
  }

  // form[data-fields]: each named field with a value, as the JSON body: numbers
  // as numbers, times as RFC 3339 in UTC, [data-json] fields parsed. Throws on bad JSON.
  function fieldsBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.value.trim() === "") return;
      var value = field.value.trim();
      if (field.type === "number") body[field.name] = Number(value);
      else if (field.type === "datetime-local") body[field.name] = utc(value);
      else if (field.hasAttribute("data-json")) {
        try { body[field.name] = JSON.parse(value); } catch (e) { throw new Error(field.labels[0].textContent + ": not JSON (" + e.message + ")"); }
      } else body[field.name] = value;
    });
    return body;
  }

  // What an answer says beyond "done": how many deliveries a replay queued.
  function summary(result) {
    var data = result.data && result.data.data;
    return data && typeof data.replayed === "number" ? ": " + data.replayed + " deliveries queued again" : "";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-api-form]");
    if (!form) return;
    event.preventDefault();
    var error = form.querySelector(".form-error");
    var method = form.getAttribute("data-api");
    var body;
    if (form.hasAttribute("data-fields")) {
      try { body = fieldsBody(form); } catch (e) { error.textContent = e.message; return; }
    } else {
      body = formBody(form, method);
      if (!body.events.length) {
        error.textContent = "Choose at least one event type.";
        return;
      }
    }
    error.textContent = "";
    var submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    api(method, form.getAttribute("data-path"), body).then(function (result) {
      submit.disabled = false;
      if (!result.ok) { error.textContent = errorOf(result); return; }
      say((form.getAttribute("data-saying") || "Saved") + summary(result) + warnings(result), false);
      done(form.getAttribute("data-done"), result);
    }, function (e) {
      submit.disabled = false;
      error.textContent = String(e);
    });
  });

  // Live regions.
  Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), function (region) {
    var url = region.getAttribute("data-live");
    var every = Number(region.getAttribute("data-every")) || 3000;
    var last = region.innerHTML;
    var busy = false;
    function refresh() {
      if (busy) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
        return response.text().then(function (text) {
          if (response.status === 401) { say("Signed out: sign in again to see changes.", true); return; }
          if (!response.ok || text === last) return;
          var focused = document.activeElement && region.contains(document.activeElement) ? document.activeElement.id : "";
          region.innerHTML = text;
          last = region.innerHTML;
          if (focused) {
            var again = document.getElementById(focused);
            if (again) again.focus();
          }
        });
      }, function () { /* the next poll tries again */ }).then(function () { busy = false; }, function () { busy = false; });
    }
    refreshers.push(refresh);
    window.setInterval(function () { if (!document.hidden) refresh(); }, every);
  });
})();
