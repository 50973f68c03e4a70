// ARM operator UI behaviour: toasts, drawer and modal focus management, tenant switch, genome editor.
// The Content-Security-Policy allows no inline script, inline event handler or eval: every behaviour the
// templates need is wired here from data-* attributes (data-confirm, data-href, data-copy, ...).
(function () {
  "use strict";

  // ---- toasts: dismiss on click, fade out after a while (errors stay longer); a toast offering a next
  // step (a link) stays until it is used or dismissed, so the step cannot vanish while being read.
  function armToasts(root) {
    (root || document).querySelectorAll(".toast:not([data-armed])").forEach(function (el) {
      el.setAttribute("data-armed", "1");
      if (el.querySelector("a[href]")) return;
      var ms = el.dataset.level === "error" ? 9000 : 5000;
      setTimeout(function () { el.remove(); }, ms);
    });
  }
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-dismiss-toast]");
    if (btn) btn.closest(".toast").remove();
  });

  function toast(level, text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast pointer-events-auto flex items-start gap-3 rounded-xl border px-4 py-3 text-sm shadow-2xl shadow-black/40 " +
      (level === "error" ? "border-arm-danger/60 bg-[#2a1117] text-red-100" : "border-arm-success/50 bg-[#0f2a1d] text-green-100");
    el.dataset.level = level;
    el.setAttribute("role", level === "error" ? "alert" : "status");
    var span = document.createElement("span");
    span.className = "flex-1";
    span.textContent = text;
    el.appendChild(span);
    box.appendChild(el);
    armToasts(box);
  }
  window.armToast = toast;

  // htmx does not swap error answers: say what happened instead of doing nothing.
  var ERRORS = {
    400: "The request was not understood.",
    403: "Your role in this tenant does not allow this.",
    404: "Not found: it may have been removed, or it belongs to another tenant.",
    405: "That action is not available here.",
    409: "That conflicts with a change made meanwhile; reload and try again.",
    429: "Too many attempts; wait a moment and try again.",
    500: "Something went wrong on the server; the error was logged.",
    503: "The database is unavailable right now; try again in a moment."
  };
  document.addEventListener("htmx:responseError", function (e) {
    var status = e.detail.xhr.status;
    toast("error", (ERRORS[status] || "The server answered " + status + ".") + " (" + status + ")");
  });
  document.addEventListener("htmx:sendError", function () {
    toast("error", "The server did not answer. Check the connection and try again.");
  });

  // ---- dialogs (drawer and modal): remember the opener, focus inside, trap Tab, Esc closes
  var openers = { "drawer-root": null, "modal-root": null };
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail.target;
    if (target && openers.hasOwnProperty(target.id) && !target.firstElementChild) {
      openers[target.id] = document.activeElement;
    }
  });

  function focusables(container) {
    return Array.prototype.filter.call(
      container.querySelectorAll('a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])'),
      function (el) { return el.offsetParent !== null; }
    );
  }

  function focusDialog(root) {
    var dialog = root.querySelector('[role="dialog"]');
    if (!dialog) return;
    var preferred = dialog.querySelector("[data-autofocus]") || dialog.querySelector(".input-error") || focusables(dialog)[0] || dialog;
    preferred.focus({ preventScroll: true });
  }

  function closeDialog(rootId) {
    var root = document.getElementById(rootId);
    if (!root || !root.firstElementChild) return false;
    root.innerHTML = "";
    if (rootId === "drawer-root") {
      document.querySelectorAll("tr[aria-selected=true]").forEach(function (r) { r.setAttribute("aria-selected", "false"); });
    }
    var opener = openers[rootId];
    openers[rootId] = null;
    if (opener && document.body.contains(opener)) opener.focus();
    return true;
  }
  window.armClose = closeDialog;

  document.addEventListener("click", function (e) {
    var closer = e.target.closest("[data-close]");
    if (closer) { e.preventDefault(); closeDialog(closer.getAttribute("data-close")); return; }
    var backdrop = e.target.closest("[data-backdrop]");
    if (backdrop && e.target === backdrop) closeDialog(backdrop.getAttribute("data-backdrop"));
  });

  // ---- sidebar below 1024 px: [data-sidebar-toggle] buttons open and close it (aria-expanded follows);
  // Esc or a click outside closes it and focus goes back to the menu button.
  function setSidebar(open, focusBack) {
    var sidebar = document.getElementById("sidebar");
    if (!sidebar) return false;
    var wasOpen = sidebar.hasAttribute("data-open");
    if (open) sidebar.setAttribute("data-open", ""); else sidebar.removeAttribute("data-open");
    document.querySelectorAll("[data-sidebar-toggle]").forEach(function (b) { b.setAttribute("aria-expanded", open ? "true" : "false"); });
    if (open) {
      var first = sidebar.querySelector(".nav-link-active") || sidebar.querySelector("a[href]");
      if (first) {
        // The panel becomes visible (focusable) as its transition starts; try now and once it has slid in.
        first.focus();
        setTimeout(function () { if (sidebar.hasAttribute("data-open") && !sidebar.contains(document.activeElement)) first.focus(); }, 170);
      }
    } else if (wasOpen && focusBack) {
      var menu = document.querySelector('[data-testid="menu-button"]');
      if (menu) menu.focus();
    }
    return wasOpen !== open;
  }
  document.addEventListener("click", function (e) {
    var toggle = e.target.closest("[data-sidebar-toggle]");
    var sidebar = document.getElementById("sidebar");
    if (toggle) { e.preventDefault(); setSidebar(!(sidebar && sidebar.hasAttribute("data-open")), true); return; }
    if (sidebar && sidebar.hasAttribute("data-open") && !e.target.closest("#sidebar")) setSidebar(false, false);
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      if (closeDialog("modal-root") || closeDialog("drawer-root")) { e.preventDefault(); return; }
      var sb = document.getElementById("sidebar");
      if (sb && sb.hasAttribute("data-open")) { setSidebar(false, true); e.preventDefault(); }
      return;
    }
    if (e.key === "/" && !e.target.closest("input, textarea, select")) {
      var search = document.getElementById("global-search");
      if (search) { e.preventDefault(); search.focus(); }
      return;
    }
    if (e.key === "Tab") {
      var modalRoot = document.getElementById("modal-root");
      if (!modalRoot) return;  // pages without dialogs (sign-in, error pages)
      var root = modalRoot.firstElementChild ? modalRoot : document.getElementById("drawer-root");
      var dialog = root && root.querySelector('[role="dialog"]');
      if (!dialog || !dialog.contains(document.activeElement)) return;
      var items = focusables(dialog);
      if (!items.length) return;
      var first = items[0], last = items[items.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    }
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var target = e.detail.target;
    armToasts();
    if (target && (target.id === "drawer-root" || target.id === "modal-root")) {
      if (target.querySelector('[role="dialog"]')) {
        focusDialog(target);
      } else {
        // The server closed it (saved): give focus back to whatever opened it.
        var opener = openers[target.id];
        openers[target.id] = null;
        if (opener && document.body.contains(opener)) opener.focus();
      }
    }
    if (target) initGenomeEditors(target);
  });

  // Filter forms: leave blank fields out of GET requests, so shared URLs carry only real filters.
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.verb !== "get") return;
    var params = e.detail.parameters;
    var remove = [];
    var entries = params instanceof FormData ? Array.from(params.keys()) : Object.keys(params);
    entries.forEach(function (key) {
      var value = params instanceof FormData ? params.getAll(key) : params[key];
      var values = Array.isArray(value) ? value : [value];
      if (values.every(function (v) { return typeof v === "string" && v.trim() === ""; })) remove.push(key);
    });
    remove.forEach(function (key) { if (params instanceof FormData) params.delete(key); else delete params[key]; });
  });

  // Row selection highlight
  document.addEventListener("htmx:beforeRequest", function (e) {
    var row = e.detail.elt;
    if (row && row.tagName === "TR" && row.hasAttribute("data-drawer-row")) {
      document.querySelectorAll("tr[aria-selected=true]").forEach(function (r) { r.setAttribute("aria-selected", "false"); });
      row.setAttribute("aria-selected", "true");
    }
  });

  // "arm:close-modal" from the server closes the modal after a successful save
  document.body && document.body.addEventListener("arm:close-modal", function () { closeDialog("modal-root"); });
  document.addEventListener("arm:close-modal", function () { closeDialog("modal-root"); });

  // ---- data-autosubmit (a form, or one field of it) submits the form on change: tenant switcher, filters
  document.addEventListener("change", function (e) {
    var el = e.target.closest("[data-autosubmit]");
    if (!el) return;
    var form = el.tagName === "FORM" ? el : el.form;
    if (form) form.submit();
  });

  // ---- forms that ask first: <form data-confirm="Delete ...?">
  document.addEventListener("submit", function (e) {
    var form = e.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  // ---- clickable rows (<tr data-href>), select-on-click fields, copy buttons, "go back" links
  document.addEventListener("click", function (e) {
    var row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input, select, textarea, label")) {
      window.location.href = row.getAttribute("data-href");
      return;
    }
    var field = e.target.closest("[data-select-on-click]");
    if (field && field.select) field.select();
    var copy = e.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (source) copyText(source);
    }
    var back = e.target.closest("[data-history-back]");
    if (back && window.history.length > 1) {
      e.preventDefault();
      window.history.back();
    }
  });

  // Copy a field's value or an element's text. navigator.clipboard exists only on HTTPS and localhost;
  // elsewhere the text is selected and copied with execCommand, or left selected for Ctrl+C.
  function copyText(source) {
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () { toast("success", "Copied to the clipboard."); };
    var fallback = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      if (source.select) source.select(); else sel.addRange(range);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      if (ok) done(); else toast("error", "Copying is blocked here: the text is selected, press Ctrl+C.");
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  // ---- drawer rows open with Enter too (hx-trigger="click, arm:activate")
  document.addEventListener("keyup", function (e) {
    if (e.key !== "Enter" || !window.htmx) return;
    var row = e.target.closest("[data-drawer-row]");
    if (row) window.htmx.trigger(row, "arm:activate");
  });

  // ---- a poll (data-poll-pause-on-focus) skips its refresh while focus is inside it, so a half-typed
  // note or a focused button is not swapped away.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll-pause-on-focus") && elt.contains(document.activeElement)) {
      e.preventDefault();
    }
  });

  // ---- meters: the bar width comes from data-bar-width (CSSOM, which the CSP allows; style="" it does not)
  function initBars(root) {
    (root || document).querySelectorAll("[data-bar-width]").forEach(function (bar) {
      var width = parseFloat(bar.getAttribute("data-bar-width"));
      if (!isNaN(width)) bar.style.width = Math.max(0, Math.min(100, width)) + "%";
    });
  }
  document.addEventListener("htmx:afterSettle", function (e) { initBars(e.detail.target); initCharts(e.detail.target); });

  // ---- charts (ledger/charts.py: responsive): the server renders a chart at several widths, one in the
  // page and all of them in <template data-chart-width>; show the widest that fits the box, so the chart
  // is scaled up a little at most and its text never drawn smaller than its size. Again on every resize.
  function fitChart(box) {
    var room = box.clientWidth, shown = parseInt(box.getAttribute("data-chart-shown"), 10);
    var chosen = {w: shown, t: null};
    box.querySelectorAll("template[data-chart-width]").forEach(function (t) {
      var w = parseInt(t.getAttribute("data-chart-width"), 10);
      if (w <= room && (w > chosen.w || chosen.w > room) || chosen.w > room && w < chosen.w) chosen = {w: w, t: t};
    });
    if (!chosen.t) return;
    // The rendering that leaves goes into a template of its own, for a later resize.
    var live = box.querySelector(":scope > svg"), kept = document.createElement("template");
    kept.setAttribute("data-chart-width", String(shown));
    if (live) kept.content.appendChild(live);
    box.insertBefore(chosen.t.content.firstElementChild, box.firstChild);
    box.replaceChild(kept, chosen.t);
    box.setAttribute("data-chart-shown", String(chosen.w));
  }
  var chartObserver = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { fitChart(entry.target); });
  }) : null;
  function initCharts(root) {
    (root || document).querySelectorAll("[data-chart-variants]:not([data-chart-armed])").forEach(function (box) {
      box.setAttribute("data-chart-armed", "1");
      fitChart(box);
      if (chartObserver) chartObserver.observe(box);
    });
  }

  // ---- genome editor: tabs (structured / raw JSON) and tool rows
  // Switching to the raw tab starts from what the structured fields hold (never overwrites typed JSON).
  function prefillRaw(ed) {
    var raw = ed.querySelector("textarea[name=genome_json]");
    if (!raw || raw.value.trim()) return;
    var val = function (name) { var el = ed.querySelector("[name=" + name + "]"); return el ? el.value.trim() : ""; };
    var model = { provider: val("model_provider"), name: val("model_name") };
    try { var params = JSON.parse(val("model_parameters") || "{}"); if (Object.keys(params).length) model.parameters = params; } catch (err) { /* left for the server to report */ }
    var tools = [];
    ed.querySelectorAll("[data-tool-rows] [data-tool-row]").forEach(function (row) {
      var name = row.querySelector("[name=tool_name]").value.trim();
      if (!name) return;
      var tool = { name: name, risk: row.querySelector("[name=tool_risk]").value };
      var version = row.querySelector("[name=tool_version]").value.trim();
      if (version) tool.version = version;
      var scopes = row.querySelector("[name=tool_scopes]").value.split(/[\s,]+/).filter(Boolean);
      if (scopes.length) tool.data_scopes = scopes;
      tools.push(tool);
    });
    var genome = { model_config: model, prompt_bundle_hash: val("prompt_bundle_hash"), tool_manifest: tools };
    var provenance = {};
    [["source", "provenance_source"], ["commit", "provenance_commit"], ["built_by", "provenance_built_by"]].forEach(function (p) {
      if (val(p[1])) provenance[p[0]] = val(p[1]);
    });
    if (Object.keys(provenance).length) genome.provenance = provenance;
    raw.value = JSON.stringify(genome, null, 2);
  }

  function initGenomeEditors(root) {
    (root || document).querySelectorAll("[data-genome-editor]:not([data-armed])").forEach(function (ed) {
      ed.setAttribute("data-armed", "1");
      var mode = ed.querySelector("input[name=genome_mode]");
      ed.querySelectorAll("[data-genome-tab]").forEach(function (tab) {
        tab.addEventListener("click", function () {
          var want = tab.getAttribute("data-genome-tab");
          if (want === "raw" && mode.value !== "raw") prefillRaw(ed);
          mode.value = want;
          ed.querySelectorAll("[data-genome-tab]").forEach(function (t) {
            var on = t.getAttribute("data-genome-tab") === want;
            t.classList.toggle("tab-active", on);
            t.setAttribute("aria-selected", on ? "true" : "false");
          });
          ed.querySelectorAll("[data-genome-panel]").forEach(function (p) {
            p.hidden = p.getAttribute("data-genome-panel") !== want;
          });
        });
      });
      var rows = ed.querySelector("[data-tool-rows]");
      var tpl = ed.querySelector("template[data-tool-template]");
      var hint = ed.querySelector("[data-no-tools]");
      var syncHint = function () { if (hint) hint.hidden = rows.querySelector("[data-tool-row]") !== null; };
      syncHint();
      ed.addEventListener("click", function (e) {
        if (e.target.closest("[data-add-tool]")) {
          e.preventDefault();
          rows.appendChild(tpl.content.cloneNode(true));
          var inputs = rows.querySelectorAll("input[name=tool_name]");
          inputs[inputs.length - 1].focus();
          syncHint();
        }
        var rm = e.target.closest("[data-remove-tool]");
        if (rm) { e.preventDefault(); rm.closest("[data-tool-row]").remove(); syncHint(); }
      });
    });
  }

  // ---- a field shown only for some values of another field of its form:
  // <div data-show-for="kind" data-show-values="webhook slack"> (without JS every field shows).
  function syncShowFor(root) {
    (root || document).querySelectorAll("[data-show-for]").forEach(function (el) {
      var form = el.closest("form");
      var field = form && form.elements[el.getAttribute("data-show-for")];
      if (field) el.hidden = el.getAttribute("data-show-values").split(" ").indexOf(field.value) === -1;
    });
  }
  document.addEventListener("change", function (e) { if (e.target.form) syncShowFor(e.target.form); });
  document.addEventListener("htmx:afterSwap", function (e) { if (e.detail.target) syncShowFor(e.detail.target); });

  function init() {
    armToasts();
    syncShowFor(document);
    initGenomeEditors(document);
    initBars(document);
    initCharts(document);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
