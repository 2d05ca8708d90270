// The protocol form: autosave of drafts, reading time, and setting answers from the keyboard.
// Every save names the version of the answer this page holds (the hidden "version" field); when another tab
// or window saved a newer one, the server answers 409, keeps the newer answer, and this page says so and
// stops saving until it is reloaded.

const AUTOSAVE_DELAY_MS = 600;

export class AnnotationForm {
  constructor(form, { autosaveUrl, finalised }) {
    this.form = form;
    this.url = autosaveUrl;
    this.finalised = finalised;
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
    this.show("Saving…", "pending");
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.save(), AUTOSAVE_DELAY_MS);
  }

  updateDescriptionHint() {
    const yes = this.form.querySelector('input[name="q1_meaningful"][value="yes"]').checked;
    this.hint.textContent = yes ? "required" : "required if yes";
    this.description.classList.toggle("required", yes);
  }

  async save() {
    window.clearTimeout(this.timer);
    if (this.finalised || this.submitting || this.conflict) return;
    if (this.saving) await this.saving;
    this.dirty = false;
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
      if (response.ok && this.version && body.version !== undefined) this.version.value = String(body.version);
      if (response.status === 409 && body.conflict) {
        this.showConflict(Object.values(body.errors || {}).flat().join(" "));
      } else if (response.ok) {
        const time = new Date(body.updated_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
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
    if (this.dirty || this.pendingMs >= 1000) navigator.sendBeacon(this.url, this.data());
  }

  beforeSubmit(event) {
    if (this.saving) {
      // Submit once the autosave in flight has answered, so the submit names the version it stored.
      event.preventDefault();
      this.saving.finally(() => this.form.requestSubmit());
      return;
    }
    this.submitting = true;
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
    if (!input) return;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (name === "q1_meaningful" && value === "yes" && !this.description.value.trim()) this.description.focus();
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
