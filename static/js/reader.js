// The reading screen: wires the viewer and the protocol form to the keyboard and the toolbar.
// Every action has a key; the "?" overlay is drawn from KEYMAP, so it always lists what works.

import { AnnotationForm } from "./annotation-form.js";
import { Viewer } from "./viewer.js";

const config = JSON.parse(document.getElementById("viewer-config").textContent);
const root = document.getElementById("reader");
const viewer = new Viewer(root, { sourceUrl: config.sourceUrl, prefsKey: `reader-prefs:${config.readerId}` });
const form = new AnnotationForm(document.getElementById("annotation-form"), config);
const helpOverlay = document.getElementById("help-overlay");
const gifOverlay = document.getElementById("gif-overlay");
const saliency = config.arm === "saliency";
const firstQuestion = saliency ? "saliency_relevant" : "q1_meaningful";
// Confidence change: until the reader rated the call from the original alone and asked for the explanation,
// the server sends nothing of it, and only the keys of BEFORE_STAGE below work.
const awaitingBefore = Boolean(config.awaitingBefore);

async function go(url) {
  if (!url) return;
  await form.flush();
  window.location.href = url;
}

function toggleOverlay(overlay, show = overlay.hidden) {
  for (const other of [helpOverlay, gifOverlay]) if (other !== overlay) other.hidden = true;
  overlay.hidden = !show;
  if (overlay === gifOverlay && show) {
    const gif = document.getElementById("gif-image");
    if (!gif.src) gif.src = gif.dataset.src;
  }
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else root.requestFullscreen?.().catch(() => {});
}

const BOTH = true; // the key works in the before-stage too (it neither shows nor works on the explanation)

// [keys shown, description, group, matcher, action, works in the before-stage]
const KEYMAP = [
  ["← / →", "Previous / next item (saves the draft)", "Navigate", (e) => e.key === "ArrowLeft" && !e.shiftKey, () => go(config.previousUrl), BOTH],
  ["", "", "Navigate", (e) => e.key === "ArrowRight" && !e.shiftKey, () => go(config.nextUrl), BOTH],
  ["Enter", "Submit and go to the next unanswered item (Ctrl+Enter in a text box)", "Navigate", (e) => e.key === "Enter", () => form.submit()],
  ["Y / N", saliency ? "Q1: the highlighted region does / does not show relevant findings" : "Q1: the change is / is not semantically meaningful", "Answer", (e) => e.key.toLowerCase() === "y" && !e.shiftKey, () => form.choose(firstQuestion, "yes")],
  ["", "", "Answer", (e) => e.key.toLowerCase() === "n" && !e.shiftKey, () => form.choose(firstQuestion, "no")],
  ["E", "Write the clinical description", "Answer", (e) => e.key.toLowerCase() === "e", () => form.focus("#id_clinical_description")],
  ["1 – 6", "Q2: yes · possible · early change · subtle · not compelling · no", "Answer", (e) => !e.shiftKey && /^Digit[1-6]$/.test(e.code), (e) => form.chooseNth("q2_pneumonia", Number(e.code.slice(5)))],
  ["M", "Write a comment", "Answer", (e) => e.key.toLowerCase() === "m", () => form.focus("#id_comment")],
  ["Shift+1 – 5", "Confidence 1 (low) to 5 (high)", "Answer", (e) => e.shiftKey && /^Digit[1-5]$/.test(e.code), (e) => form.chooseNth("confidence", Number(e.code.slice(5)))],
  ["U", "Pass on the item: image unreadable (again: clear)", "Answer", (e) => e.key.toLowerCase() === "u", () => form.toggleFlag("unreadable"), BOTH],
  ["S", "Pass on the item: not sure (again: clear)", "Answer", (e) => e.key.toLowerCase() === "s", () => form.toggleFlag("unsure"), BOTH],
  ["F", "Flicker the perturbed panel over the unmodified image", "Compare", (e) => e.key === "f", () => viewer.toggleFlicker()],
  ["[ / ]", "Flicker slower / faster", "Compare", (e) => e.key === "[", () => setRate(viewer.flickerRate - 0.5)],
  ["", "", "Compare", (e) => e.key === "]", () => setRate(viewer.flickerRate + 0.5)],
  ["Space (hold)", "Show the unmodified image in the perturbed panel while held", "Compare", (e) => e.code === "Space", () => viewer.hold(true)],
  ["G", "Show the flicker GIF", "Compare", (e) => e.key.toLowerCase() === "g", () => toggleOverlay(gifOverlay)],
  ["D", "Difference map on / off", "Compare", (e) => e.key.toLowerCase() === "d", () => viewer.toggleDifference()],
  ["+ / −", "Zoom in / out (all panels together)", "View", (e) => e.key === "+" || e.key === "=", () => viewer.zoomIn(), BOTH],
  ["", "", "View", (e) => e.key === "-" || e.key === "_", () => viewer.zoomOut(), BOTH],
  ["Shift+arrows", "Pan when zoomed", "View", (e) => e.shiftKey && e.key.startsWith("Arrow"), (e) => panWithArrow(e.key), BOTH],
  ["0", "Fit the images (reset zoom and pan)", "View", (e) => e.code === "Digit0" || e.code === "Numpad0", () => viewer.fit(), BOTH],
  ["V", "Next layout: 1-up (perturbed), 2-up (reconstruction, perturbed), 3-up (all three)", "View", (e) => e.key.toLowerCase() === "v", () => viewer.nextLayout()],
  ["H", "Hide / show the answers panel (larger images)", "View", (e) => e.key.toLowerCase() === "h", () => viewer.toggleFormPanel(), BOTH],
  ["Z", "Magnifier under the pointer on / off", "View", (e) => e.key.toLowerCase() === "z", () => viewer.toggleMagnifier(), BOTH],
  ["B / Shift+B", "Darker / brighter (raise / lower the window level)", "Window", (e) => e.key === "b", () => viewer.adjust(0.02, 1), BOTH],
  ["", "", "Window", (e) => e.key === "B", () => viewer.adjust(-0.02, 1), BOTH],
  ["C / Shift+C", "Less / more contrast (widen / narrow the window)", "Window", (e) => e.key === "c", () => viewer.adjust(0, 1.1), BOTH],
  ["", "", "Window", (e) => e.key === "C", () => viewer.adjust(0, 1 / 1.1), BOTH],
  ["L", "W/L tool: left-drag sets the window (right-drag always does)", "Window", (e) => e.key.toLowerCase() === "l", () => viewer.toggleWlTool(), BOTH],
  ["W", "Next window preset (the DICOM's own window first)", "Window", (e) => e.key.toLowerCase() === "w", () => viewer.nextPreset(), BOTH],
  ["I", "Invert", "Window", (e) => e.key.toLowerCase() === "i", () => viewer.toggleInvert(), BOTH],
  ["R", "Reset window/level (first preset), invert and zoom", "Window", (e) => e.key.toLowerCase() === "r", () => viewer.resetWindow(), BOTH],
  ["Shift+F", "Full screen", "View", (e) => e.key === "F", () => toggleFullscreen(), BOTH],
  ["X", "Explore this case (after finalising)", "View", (e) => e.key.toLowerCase() === "x", () => document.getElementById("explore-link")?.click(), BOTH],
  ["?", "This list", "Help", (e) => e.key === "?", () => toggleOverlay(helpOverlay), BOTH],
  ["Esc", "Close a panel, leave a text box", "Help", (e) => e.key === "Escape", () => closeAll(), BOTH],
];

// The before-stage of a confidence-change item: rate the call from the original alone, then ask for the
// explanation; navigation, passing on the item and viewing the original work as usual.
const BOTH_STAGES = KEYMAP.filter((entry) => entry[5]);
const BEFORE_STAGE = [
  ...BOTH_STAGES.filter((entry) => entry[2] === "Navigate"),
  ["Enter", "Show the explanation: your rating is then fixed (with U or S chosen: submit, passing on the item)", "Navigate", (e) => e.key === "Enter", () => (form.form.querySelector('input[name="flag"]:checked')?.value ? form.submit() : showExplanation())],
  ["1 – 5", "Confidence in the classifier's call, before the explanation: 1 (low) to 5 (high)", "Answer", (e) => !e.shiftKey && /^Digit[1-5]$/.test(e.code), (e) => form.chooseNth("confidence_before", Number(e.code.slice(5)))],
  ...BOTH_STAGES.filter((entry) => entry[2] !== "Navigate"),
];
const keymap = awaitingBefore ? BEFORE_STAGE : KEYMAP;

function setRate(hz) {
  viewer.setFlickerRate(hz);
}

function panWithArrow(key) {
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  viewer.panStep(...steps[key]);
}

function closeAll() {
  helpOverlay.hidden = true;
  gifOverlay.hidden = true;
}

function typing(target) {
  return (
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLInputElement && target.type === "text")
  );
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey && event.key !== "Enter") return;
  if (event.altKey || event.metaKey) return;
  if (typing(event.target)) {
    if (event.key === "Escape") event.target.blur();
    else if (event.key === "Enter" && event.ctrlKey) {
      event.preventDefault();
      form.submit();
    }
    return;
  }
  if (event.repeat && event.code === "Space") {
    event.preventDefault();
    return;
  }
  const entry = keymap.find(([, , , matches]) => matches(event));
  if (!entry) return;
  event.preventDefault();
  entry[4](event);
});

document.addEventListener("keyup", (event) => {
  if (event.code === "Space" && viewer.holding) viewer.hold(false);
});

// --- toolbar ------------------------------------------------------------------------------------

const actions = {
  flicker: () => viewer.toggleFlicker(),
  gif: () => toggleOverlay(gifOverlay),
  difference: () => viewer.toggleDifference(),
  "zoom-in": () => viewer.zoomIn(),
  "zoom-out": () => viewer.zoomOut(),
  fit: () => viewer.fit(),
  invert: () => viewer.toggleInvert(),
  reset: () => viewer.resetWindow(),
  "wl-tool": () => viewer.toggleWlTool(),
  "form-panel": () => viewer.toggleFormPanel(),
  magnifier: () => viewer.toggleMagnifier(),
  fullscreen: () => toggleFullscreen(),
  help: () => toggleOverlay(helpOverlay),
};
for (const button of root.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => {
    if (!button.disabled) actions[button.dataset.action]();
    button.blur();
  });
}
for (const button of root.querySelectorAll("[data-set-layout]")) {
  button.addEventListener("click", () => {
    if (!button.disabled) viewer.setLayout(Number(button.dataset.setLayout));
    button.blur();
  });
}
for (const overlay of [helpOverlay, gifOverlay]) {
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) overlay.hidden = true;
  });
}
for (const link of root.querySelectorAll("a[data-nav]")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    go(link.href);
  });
}

const rate = document.getElementById("flicker-rate");
rate.addEventListener("input", () => viewer.setFlickerRate(Number(rate.value)));
const preset = document.getElementById("wl-preset");
preset.addEventListener("change", () => {
  viewer.setPreset(Number(preset.value));
  preset.blur();
});
let presetNames = "";

function formatUnits(value, span) {
  return span >= 50 ? String(Math.round(value)) : value.toFixed(2);
}

function render() {
  document.getElementById("zoom-level").textContent = `${Math.round(viewer.scale * 100)}%`;
  document.getElementById("wl-value").textContent =
    `W ${formatUnits(viewer.width, viewer.span)} · L ${formatUnits(viewer.center, viewer.span)}`;
  const units = document.getElementById("wl-units");
  const source = viewer.sourceState === "loaded";
  units.textContent = source ? `${viewer.range.units} · generated 8-bit` : "8-bit PNG values";
  units.title = source
    ? `Window/level in the source's units (${viewer.range.units}). The original is drawn from its source pixels; the generated images are 8-bit PNGs, mapped onto the source's scale (${formatUnits(viewer.range.low, viewer.span)} to ${formatUnits(viewer.range.high, viewer.span)}).`
    : "Window/level on the 8-bit PNG values (0 to 255): this case keeps no higher-depth source pixels.";
  const presets = viewer.presets();
  const names = presets.map((p) => p.name).join("|");
  if (names !== presetNames) {
    presetNames = names;
    preset.replaceChildren(...presets.map((p, i) => new Option(p.name, String(i))));
  }
  document.getElementById("flicker-rate-value").textContent = `${viewer.flickerRate} Hz`;
  rate.value = String(viewer.flickerRate);
  if (viewer.presetIndex >= 0) preset.value = String(viewer.presetIndex);
  else preset.selectedIndex = -1;
  const press = (name, on) => root.querySelector(`[data-action="${name}"]`).setAttribute("aria-pressed", String(on));
  press("flicker", viewer.flickering);
  press("difference", !viewer.differencePanel.hidden);
  press("invert", viewer.inverted);
  press("wl-tool", viewer.wlTool);
  press("form-panel", viewer.formPanel);
  press("magnifier", viewer.magnifying);
  for (const button of root.querySelectorAll("[data-set-layout]")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.setLayout) === viewer.layout));
  }
}
viewer.onChange(render);
render();

// --- saliency items: the heat map's opacity -----------------------------------------------------

const heatOpacity = document.getElementById("heat-opacity");
if (heatOpacity) {
  const heat = document.getElementById("heat-layer");
  const applyOpacity = () => {
    heat.style.opacity = String(Number(heatOpacity.value) / 100);
    document.getElementById("heat-opacity-value").textContent = `${heatOpacity.value}%`;
  };
  heatOpacity.addEventListener("input", applyOpacity);
  applyOpacity();
}

// --- confidence change: the explanation is shown once the call is rated from the original alone ---
// The server records the showing (and from then on refuses a change of the before-rating) and only then
// serves the explanation's images, so the page is loaded again to show them.

let showing = false;

async function showExplanation() {
  if (!awaitingBefore || showing) return;
  const chosen = form.form.querySelector('input[name="confidence_before"]:checked');
  if (!chosen) {
    form.show("Rate your confidence in the classifier's call first (1 to 5).", "error");
    return;
  }
  showing = true;
  try {
    await form.flush();
    if (form.conflict) return;
    const data = new FormData();
    const token = form.form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    data.set("csrfmiddlewaretoken", token);
    data.set("confidence_before", chosen.value);
    if (form.version?.value) data.set("version", form.version.value);
    const response = await fetch(config.showExplanationUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": token, Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.replace(window.location.href);
      return;
    }
    const body = await response.json().catch(() => ({}));
    const messages = Object.values(body.errors || {}).flat().map((e) => e.message || e);
    form.show(messages.join(" ") || `The explanation cannot be shown (error ${response.status})`, "error");
  } catch {
    form.show("The explanation cannot be shown: the server cannot be reached.", "error");
  } finally {
    showing = false;
  }
}

document.getElementById("show-explanation")?.addEventListener("click", (event) => {
  showExplanation();
  event.currentTarget.blur();
});

// --- help overlay -------------------------------------------------------------------------------

const table = document.getElementById("keymap");
if (awaitingBefore) {
  const note = table.createCaption();
  note.id = "keymap-before-note";
  note.textContent =
    "Before the explanation is shown, only these keys work: rate the classifier's call from the original, then show the explanation. The explanation's keys (flicker, GIF, difference, layouts) work once it is shown.";
}
let group = "";
for (const [keys, description, heading] of keymap) {
  if (!keys) continue;
  if (heading !== group) {
    group = heading;
    const row = table.insertRow();
    const cell = document.createElement("th");
    cell.colSpan = 2;
    cell.textContent = heading;
    row.appendChild(cell);
  }
  const row = table.insertRow();
  const key = row.insertCell();
  for (const [i, part] of keys.split(" / ").entries()) {
    if (i) key.append(" / ");
    const kbd = document.createElement("kbd");
    kbd.textContent = part;
    key.appendChild(kbd);
  }
  row.insertCell().textContent = description;
}

// --- preload the next item's images once this one is shown --------------------------------------

window.addEventListener("load", () => {
  const preload = () => {
    for (const [kind, url] of Object.entries(config.preload || {})) {
      if (kind === "stack") continue;
      new Image().src = url;
    }
    // The next item's source pixels, into the browser's cache (the response is privately cacheable).
    if (config.preloadSource) fetch(config.preloadSource, { credentials: "same-origin" }).catch(() => {});
  };
  if ("requestIdleCallback" in window) window.requestIdleCallback(preload);
  else window.setTimeout(preload, 300);
});

// For tests and the curious: the viewer's state.
window.reader = { viewer, form };
