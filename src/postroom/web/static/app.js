// Postroom's own small script: progressive enhancement only — every form works without it.
// Live connection tests (NDJSON stream, one result per protocol), port suggestions, the
// certificate warning, part toggles and queue counters. No third-party code, no build step.
"use strict";

(function () {
  const csrf = () => (document.querySelector('input[name="csrf_token"]') || {}).value || "";
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const MARKS = { ok: "✓", failed: "✗", skipped: "–", warning: "!" };

  // --- small behaviours -------------------------------------------------------------------
  document.querySelectorAll("select[data-autosubmit]").forEach((s) =>
    s.addEventListener("change", () => s.form.submit()));
  document.querySelectorAll("[data-confirm]").forEach((b) =>
    b.addEventListener("click", (e) => { if (!confirm(b.dataset.confirm)) e.preventDefault(); }));
  document.querySelectorAll("[data-print]").forEach((b) =>
    b.addEventListener("click", () => window.print()));

  // --- the account form ---------------------------------------------------------------------
  const form = document.querySelector("form.account-form");
  if (form) {
    const ports = JSON.parse(form.dataset.ports || "{}");
    const field = (name) => form.elements.namedItem(name);

    form.querySelectorAll("fieldset.part").forEach((fs) => {
      const box = field("has_" + fs.dataset.part);
      const sync = () => fs.classList.toggle("off", !box.checked);
      box.addEventListener("change", sync);
      sync();
    });
    form.querySelectorAll(".cert-warning").forEach((warning) => {
      const box = field(warning.dataset.for);
      const sync = () => { warning.hidden = box.checked; };
      box.addEventListener("change", sync);
      sync();
    });
    // Suggest the conventional port when security (or protocol) changes, unless the user
    // typed a port of their own.
    [["outgoing", () => "smtp"], ["incoming", () => field("incoming.protocol").value]].forEach(
      ([part, protocol]) => {
        const port = field(part + ".port");
        const security = field(part + ".security");
        const suggest = () => {
          const table = ports[protocol()] || {};
          const conventional = Object.values(table).map(String);
          const next = String(table[security.value] || "");
          port.placeholder = next;
          if (port.value === "" || conventional.includes(port.value)) port.value = next;
        };
        security.addEventListener("change", suggest);
        if (part === "incoming") field("incoming.protocol").addEventListener("change", suggest);
        port.placeholder = String((ports[protocol()] || {})[security.value] || "");
      });

    const button = form.querySelector("[data-live-test]");
    button.addEventListener("click", (event) => {
      event.preventDefault();
      const body = new FormData(form);
      body.delete("intent");
      liveCheck(form.dataset.checkUrl, body, form.querySelector(".live-results"), form);
    });
  }

  document.querySelectorAll("form[data-live-check]").forEach((f) =>
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      const target = f.closest("section").querySelector(".live-results");
      liveCheck(f.action, new FormData(f), target, null);
    }));

  // --- live check: read the NDJSON stream and draw each result as it arrives ----------------
  async function liveCheck(url, body, target, formEl) {
    target.replaceChildren(el("p", "muted", "Testing…"));
    if (formEl) clearErrors(formEl);
    const summary = document.getElementById("error-summary");
    if (summary) summary.hidden = true;
    let response;
    try {
      response = await fetch(url, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), Accept: "application/x-ndjson" },
      });
    } catch (err) {
      target.replaceChildren(el("p", "why", "The test could not be started: " + err));
      return;
    }
    if (!response.ok || !response.body) {
      target.replaceChildren(el("p", "why", "The test could not be run (HTTP " + response.status + ")."));
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const pending = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) handle(JSON.parse(line));
      }
      if (done) break;
    }

    function handle(item) {
      if (item.errors) {
        target.replaceChildren(el("p", "why", "These values cannot be tested yet — see the marked fields."));
        if (formEl) showErrors(formEl, item.errors);
        return;
      }
      if (item.protocols) {
        target.replaceChildren();
        item.protocols.forEach((p) => {
          const box = el("section", "check running");
          box.dataset.protocol = p;
          box.append(el("h3", "", p.toUpperCase() + ": testing…"));
          target.append(box);
          pending.push(box);
        });
        return;
      }
      const box = pending.find((b) => b.dataset.protocol === item.protocol) || el("section");
      target.contains(box) || target.append(box);
      drawResult(box, item);
    }
  }

  function drawResult(box, r) {
    box.className = "check " + (r.ok ? "ok" : "bad");
    box.replaceChildren(el("h3", "", r.protocol.toUpperCase() + ": " + (r.ok ? "connect success!" : "failed")));
    const steps = el("ol", "steps");
    (r.steps || []).forEach((s) => {
      const li = el("li", "step " + s.outcome);
      li.append(el("span", "mark", MARKS[s.outcome] || "?"), " " + s.name + " ",
        el("small", "", s.elapsed_ms + " ms"));
      if (s.message) li.append(" ", el("span", "msg", s.message));
      steps.append(li);
    });
    box.append(steps);
    if (!r.ok) {
      const why = el("p", "why", r.error_message || "failed");
      if (r.hint) why.append(" — ", el("em", "", r.hint));
      if (r.field) why.append(" (field: " + r.field + ")");
      box.append(why);
    }
    (r.warnings || []).forEach((w) => box.append(el("p", "warn", w)));
    const details = el("details", "transcript");
    details.append(el("summary", "", "Detail"));
    const lines = (r.transcript || []).map((t) =>
      String(t.ms).padStart(6) + " " + ({ client: "C:", server: "S:" }[t.direction] || "--") + " " + t.text);
    details.append(el("pre", "", lines.join("\n")));
    box.append(details);
  }

  function clearErrors(formEl) {
    formEl.querySelectorAll(".field.has-error").forEach((f) => {
      f.classList.remove("has-error");
      const small = f.querySelector(".error");
      if (small) small.textContent = "";
    });
  }

  function showErrors(formEl, errors) {
    Object.entries(errors).forEach(([name, message]) => {
      const f = formEl.querySelector('.field[data-field="' + CSS.escape(name) + '"]');
      if (!f) return;
      f.classList.add("has-error");
      const small = f.querySelector(".error");
      if (small) small.textContent = message;
    });
  }

  // --- queue counters -----------------------------------------------------------------------
  document.querySelectorAll("[data-counts]").forEach((box) => {
    const refresh = async () => {
      try {
        const response = await fetch(box.dataset.counts, { credentials: "same-origin" });
        if (!response.ok) return;
        const counts = await response.json();
        box.querySelectorAll("[data-status]").forEach((c) => {
          c.querySelector("b").textContent = String(counts[c.dataset.status] || 0);
        });
      } catch (err) { /* offline for a moment: keep the last figures */ }
    };
    refresh();
    setInterval(refresh, 5000);
  });
})();
