// Issue Coupon: a tick adds the account to the session's selection at once and an untick
// takes it out (coupons/issue_views.py IssueSelectionView), so ticks survive paging and
// searching; the summary and Selected Accounts follow each answer. One request is in flight
// at a time and the ticks made meanwhile go in the next one, so no change overwrites
// another. Confirm is still checked in full on the server. Without JavaScript the page's
// "Move ticked" and "Remove" buttons do the same with a reload.
(function () {
  // The script's own words come from Django's JavaScript catalog (djangojs, loaded first).
  const _ = window.gettext || ((text) => text);
  const form = document.getElementById("pick-form");
  if (!form || !form.dataset.selectionUrl) return;
  const url = form.dataset.selectionUrl;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const boxes = () => Array.from(form.querySelectorAll("input.pick"));
  const byId = (id) => document.getElementById(id);

  boxes().forEach((box) => { box.disabled = false; });
  const move = byId("move-ticked");
  if (move) move.classList.add("d-none");
  const hint = byId("pick-hint");
  if (hint && hint.dataset.liveText) hint.textContent = hint.dataset.liveText;

  const pending = { add: new Set(), remove: new Set() };
  let busy = false;

  function want(id, on) {
    pending[on ? "remove" : "add"].delete(id);
    pending[on ? "add" : "remove"].add(id);
    flush();
  }

  function note(text, kind) {
    const notes = byId("pick-notes");
    if (!notes) return;
    const div = document.createElement("div");
    div.className = "alert alert-" + kind + " py-1 px-2 mb-1";
    div.textContent = text;
    notes.replaceChildren(div);
  }

  function markRow(box, selected) {
    box.checked = selected;
    if (selected) box.removeAttribute("name"); else box.name = "pick";
    const cell = box.closest("tr") && box.closest("tr").cells[4];
    if (!cell) return;
    cell.replaceChildren();
    if (selected) {
      const badge = document.createElement("span");
      badge.className = "badge text-bg-success";
      badge.textContent = form.dataset.selectedText || _("Selected");
      cell.appendChild(badge);
    }
  }

  function showSelected(data) {
    const list = byId("selected-list");
    if (!list) return;
    const items = data.selected_shown.map((a) => {
      const li = document.createElement("li");
      li.className = "list-group-item d-flex justify-content-between align-items-center py-1";
      const span = document.createElement("span");
      const code = document.createElement("code");
      code.textContent = a.account_id;
      span.append(code, " " + a.name);
      if (a.tier2) {
        const badge = document.createElement("span");
        badge.className = "badge text-bg-light border ms-1";
        badge.textContent = _("tier-2 reseller");
        span.append(badge);
      }
      const button = document.createElement("button");
      button.className = "btn btn-sm btn-outline-secondary";
      button.type = "submit";
      button.name = "account_id";
      button.value = a.account_id;
      button.textContent = list.dataset.removeText || _("← Remove");
      li.append(span, button);
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "list-group-item text-muted";
      li.textContent = list.dataset.emptyText;
      items.push(li);
    }
    if (data.selected_more) {
      const li = document.createElement("li");
      li.className = "list-group-item text-muted";
      li.textContent = (list.dataset.moreText || _("… and %(n)s more"))
        .replace("%(n)s", data.selected_more.toLocaleString("en-US"));
      items.push(li);
    }
    list.replaceChildren(...items);
  }

  function showSummary(data) {
    const s = data.summary;
    const set = (id, text) => { const el = byId(id); if (el) el.textContent = text; };
    set("summary-count", s.count.toLocaleString("en-US"));
    set("selected-count", s.selected_text);
    set("summary-total", s.total_text);
    if (s.budget_text !== null) set("summary-budget", s.budget_text);
    const after = byId("summary-budget-after-wrap");
    if (after) {
      set("summary-budget-after", s.budget_after_text);
      after.classList.toggle("d-none", !s.budget_after_text);
    }
    const problems = byId("summary-problems");
    if (problems) {
      problems.replaceChildren(...s.problems.map((p) => {
        const div = document.createElement("div");
        div.textContent = p;
        return div;
      }));
      problems.classList.toggle("d-none", !s.problems.length);
    }
    const confirm = byId("confirm-button");
    if (confirm) {
      confirm.disabled = !s.can_confirm || Boolean(confirm.dataset.blocked);
      confirm.textContent = s.confirm_text;
    }
    const first = byId("select-first");
    if (first) first.classList.toggle("d-none", s.count > 0);
    const token = byId("submission-token");
    if (token) token.value = data.submission;
  }

  function apply(data, ids) {
    const selected = new Set(data.selected);
    boxes().forEach((box) => {
      // A tick made while this answer was on its way is the user's newer wish: keep it.
      if (ids.includes(box.value) && !pending.add.has(box.value)
          && !pending.remove.has(box.value)) markRow(box, selected.has(box.value));
    });
    showSelected(data);
    showSummary(data);
    if (data.refused.length) {
      note(data.refused.join(" "), "warning");
    } else {
      const notes = byId("pick-notes");
      if (notes) notes.replaceChildren();
    }
  }

  async function flush() {
    if (busy) return;
    const action = pending.remove.size ? "remove" : pending.add.size ? "add" : null;
    if (!action) return;
    const ids = Array.from(pending[action]);
    pending[action].clear();
    busy = true;
    const body = new URLSearchParams();
    body.append("action", action);
    ids.forEach((id) => body.append("account_id", id));
    try {
      const response = await fetch(url, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      });
      if (!response.ok) throw new Error(String(response.status));
      apply(await response.json(), ids);
    } catch (error) {
      // The server's selection is unknown now: reload shows it as it is.
      const notes = byId("pick-notes");
      note((notes && notes.dataset.failedText || _("Your ticks could not be saved; reload the page."))
        + " (" + error.message + ")", "danger");
    } finally {
      busy = false;
      flush();
    }
  }

  form.addEventListener("change", (event) => {
    const box = event.target;
    if (box.id === "pick-all") {
      boxes().forEach((b) => {
        if (b.checked !== box.checked) { b.checked = box.checked; want(b.value, box.checked); }
      });
      return;
    }
    if (box.classList.contains("pick")) want(box.value, box.checked);
  });

  // Remove in Selected Accounts: the same endpoint, without a reload.
  const selectedForm = byId("selected-form");
  if (selectedForm) {
    selectedForm.addEventListener("click", (event) => {
      const button = event.target.closest("button[name=account_id]");
      if (!button) return;
      event.preventDefault();
      boxes().forEach((b) => { if (b.value === button.value) b.checked = false; });
      want(button.value, false);
    });
  }
})();
