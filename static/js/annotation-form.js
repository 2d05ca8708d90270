// The protocol form: autosave of drafts, reading time, and setting answers from the keyboard.
// Every save names the version of the answer this page holds (the hidden "version" field); when another tab
// or window saved a newer one, the server answers 409, keeps the newer answer, and this page says so and
// stops saving until it is reloaded.

const AUTOSAVE_DELAY_MS = 600;
// A local copy of an unsaved edit yields to a server save made this much later (another tab or computer).
const LOCAL_COPY_MARGIN_MS = 5000;

// One time format everywhere on the screen: 24-hour HH:MM:SS in the reader's time zone.
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

export class AnnotationForm {
  constructor(form, { autosaveUrl, finalised, draftKey, savedAt, savedStatus, submittedAt, serverNow, refused }) {
    this.form = form;
    this.url = autosaveUrl;
    this.finalised = finalised;
    this.draftKey = draftKey;
    this.savedAt = savedAt;
    // Server clock minus this computer's: local edits are stamped in the server's time.
    this.clockOffset = serverNow ? Date.parse(serverNow) - Date.now() : 0;
    this.state = document.getElementById("save-state");
    this.timer = null;
    this.dirty = false;
    this.saving = null;
    this.submitting = false;
    this.conflict = false;
    this.version = form.querySelector("#id_version");
    this.pendingMs = 0;
    this.lastTick = performance.now();
    this.description = form.querySelector("#id_clinical_description");
    this.hint = form.querySelector("#description-hint");
    if (finalised) return;
    form.addEventListener("input", () => this.changed());
    form.addEventListener("change", () => this.changed());
    form.addEventListener("submit", (event) => this.beforeSubmit(event));
    document.addEventListener("visibilitychange", () => this.tick());
    window.addEventListener("pagehide", () => this.flushOnLeave());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.flushOnLeave();
    });
    this.updateDescriptionHint();
    if (refused) {
      // A refused submit: keep what was posted as a draft, so a reload does not lose it.
      this.changed();
    } else {
      if (savedStatus === "draft" && savedAt) this.show(`Draft saved ${formatTime(savedAt)}`, "ok");
      else if (savedStatus === "submitted" && submittedAt) this.show(`Submitted ${formatTime(submittedAt)}`, "ok");
      this.reconcile();
    }
  }

  // --- the local copy of the latest edit ------------------------------------------------------

  snapshot() {
    const data = new FormData(this.form);
    const names = new Set();
    for (const element of this.form.elements) {
      if (element.name && !["csrfmiddlewaretoken", "seconds", "version"].includes(element.name)) names.add(element.name);
    }
    const values = {};
    for (const name of [...names].sort()) values[name] = data.get(name) ?? "";
    return values;
  }

  keepLocal() {
    if (!this.draftKey) return;
    try {
      // The copy keeps the version its edit was based on, so a restored edit is still checked against
      // answers saved meanwhile from another tab.
      const copy = { data: this.snapshot(), version: this.version?.value, editedAt: Date.now() + this.clockOffset };
      window.localStorage.setItem(this.draftKey, JSON.stringify(copy));
    } catch {
      // Storage full or disabled: the server's draft is the only copy.
    }
  }

  readLocal() {
    try {
      return JSON.parse(window.localStorage.getItem(this.draftKey) || "null");
    } catch {
      return null;
    }
  }

  // A save of this tab moved the answer's version on: an edit kept locally is based on the new one.
  refreshLocalVersion() {
    if (!this.draftKey) return;
    const copy = this.readLocal();
    if (!copy || !this.version) return;
    copy.version = this.version.value;
    try {
      window.localStorage.setItem(this.draftKey, JSON.stringify(copy));
    } catch {
      // Storage full or disabled.
    }
  }

  // The server stored ``data``: the local copy is no longer needed if it holds the same answers.
  confirmLocal(data) {
    const copy = this.readLocal();
    if (copy && JSON.stringify(copy.data) === JSON.stringify(data)) window.localStorage.removeItem(this.draftKey);
  }

  // After a reload: an edit the server has not stored yet (typed just before leaving) wins over the server's
  // older draft, unless the server's was saved clearly later (from another tab or computer).
  reconcile() {
    if (!this.draftKey) return;
    const copy = this.readLocal();
    if (!copy || !copy.data) return;
    const current = this.snapshot();
    if (JSON.stringify(copy.data) === JSON.stringify(current)) {
      window.localStorage.removeItem(this.draftKey);
      return;
    }
    const serverAt = this.savedAt ? Date.parse(this.savedAt) : 0;
    if (serverAt > copy.editedAt + LOCAL_COPY_MARGIN_MS) {
      window.localStorage.removeItem(this.draftKey);
      return;
    }
    this.restore(copy.data);
    if (this.version && copy.version !== undefined) this.version.value = String(copy.version);
    this.changed();
  }

  restore(values) {
    for (const [name, value] of Object.entries(values)) {
      const elements = this.form.querySelectorAll(`[name="${name}"]`);
      for (const element of elements) {
        if (element.disabled) continue; // a frozen answer (the before-rating once the explanation was shown)
        if (element.type === "radio" || element.type === "checkbox") element.checked = element.value === value;
        else element.value = value;
      }
    }
    this.updateDescriptionHint();
  }

  // Reading time counts only while the page is visible.
  tick() {
    const now = performance.now();
    if (document.visibilityState === "visible") this.pendingMs += now - this.lastTick;
    this.lastTick = now;
  }

  takeSeconds() {
    this.tick();
    const seconds = Math.floor(this.pendingMs / 1000);
    this.pendingMs -= seconds * 1000;
    return seconds;
  }

  data() {
    const data = new FormData(this.form);
    data.set("seconds", String(this.takeSeconds()));
    return data;
  }

  changed() {
    this.updateDescriptionHint();
    if (this.conflict) return;
    this.dirty = true;
    this.keepLocal();
    this.show("Saving…", "pending");
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.save(), AUTOSAVE_DELAY_MS);
  }

  updateDescriptionHint() {
    const q1 = this.form.querySelector('input[name="q1_meaningful"][value="yes"]');
    if (!q1 || !this.hint) return; // a saliency item has no Q1 of the counterfactual protocol
    const yes = q1.checked;
    this.hint.textContent = yes ? "required" : "required if yes";
    this.description.classList.toggle("required", yes);
  }

  async save() {
    window.clearTimeout(this.timer);
    if (this.finalised || this.submitting || this.conflict) return;
    if (this.saving) await this.saving;
    this.dirty = false;
    this.sent = this.snapshot();
    this.saving = this.post(this.data());
    try {
      await this.saving;
    } finally {
      this.saving = null;
    }
  }

  async post(data) {
    try {
      const response = await fetch(this.url, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken"), Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok && this.version && body.version !== undefined) {
        this.version.value = String(body.version);
        this.refreshLocalVersion();
      }
      if (response.status === 409 && body.conflict) {
        this.showConflict(Object.values(body.errors || {}).flat().join(" "));
      } else if (response.ok) {
        if (this.sent) this.confirmLocal(this.sent);
        this.savedAt = body.updated_at;
        const time = formatTime(body.updated_at);
        this.show(body.status === "submitted" ? `Saved ${time} (submitted answer updated)` : `Draft saved ${time}`, "ok");
      } else {
        const messages = Object.values(body.errors || {}).flat().map((e) => e.message || e);
        this.show(messages.join(" ") || `Not saved (error ${response.status})`, "error");
      }
    } catch (error) {
      this.dirty = true;
      this.show("Not saved: the server cannot be reached. Your answers stay on this page.", "error");
    }
  }

  // Save before leaving for another item; resolves when the draft is stored.
  async flush() {
    if (this.finalised) return;
    if (this.dirty || this.timer) await this.save();
    else if (this.saving) await this.saving;
  }

  flushOnLeave() {
    if (this.finalised || this.submitting || this.conflict) return;
    this.tick();
    if (this.dirty || this.pendingMs >= 1000) {
      // The local copy (kept on every edit) covers a beacon the server reads after the next page is drawn.
      if (navigator.sendBeacon(this.url, this.data())) this.dirty = false;
    }
  }

  beforeSubmit(event) {
    if (this.saving) {
      // Submit once the autosave in flight has answered, so the submit names the version it stored.
      event.preventDefault();
      this.saving.finally(() => this.form.requestSubmit());
      return;
    }
    this.submitting = true;
    this.keepLocal();
    window.clearTimeout(this.timer);
    this.form.querySelector("#id_seconds").value = String(this.takeSeconds());
  }

  submit() {
    if (this.finalised) return;
    this.form.requestSubmit();
  }

  // Another tab or window saved a newer answer: nothing more is saved from this page, and the reader is
  // told plainly, with a way to load the newer answer.
  showConflict(message) {
    this.conflict = true;
    this.dirty = false;
    window.clearTimeout(this.timer);
    // This tab's unsaved edit lost to a newer answer: a reload shows that answer, not the edit again.
    if (this.draftKey) window.localStorage.removeItem(this.draftKey);
    this.show("Not saved: a newer answer was saved elsewhere.", "error");
    let alert = document.getElementById("conflict-alert");
    if (!alert) {
      alert = document.createElement("div");
      alert.id = "conflict-alert";
      alert.className = "error";
      alert.setAttribute("role", "alert");
      this.form.prepend(alert);
    }
    alert.textContent = message || "This answer was changed in another tab or window. Nothing was saved here.";
    const reload = document.createElement("button");
    reload.type = "button";
    reload.textContent = "Reload to see the newer answer";
    reload.addEventListener("click", () => window.location.reload());
    alert.append(" ", reload);
    reload.focus();
  }

  show(text, kind) {
    this.state.textContent = text;
    this.state.dataset.kind = kind;
  }

  // --- answers from the keyboard --------------------------------------------------------------

  choose(name, value) {
    if (this.finalised) return;
    const input = this.form.querySelector(`input[name="${name}"][value="${value}"]`);
    if (!input || input.disabled) return;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (name === "q1_meaningful" && value === "yes" && this.description && !this.description.value.trim()) {
      this.description.focus();
    }
  }

  // Pass on the item (image unreadable, not sure); the same flag again clears it.
  toggleFlag(value) {
    const current = this.form.querySelector('input[name="flag"]:checked');
    this.choose("flag", current && current.value === value ? "" : value);
  }

  chooseNth(name, n) {
    const inputs = this.form.querySelectorAll(`input[name="${name}"]`);
    if (n >= 1 && n <= inputs.length) this.choose(name, inputs[n - 1].value);
  }

  focus(selector) {
    if (this.finalised) return;
    this.form.querySelector(selector).focus();
  }
}
