// The live figures of a running sweep (units and perturbations done, measured rate), polled every 2 s from
// /sweeps/<pk>/progress until the sweep has finished.

const POLL_MS = 2000;
const facts = document.querySelector("[data-sweep-progress]");

function set(name, text) {
  const element = facts.querySelector(`[data-sweep-field="${name}"]`);
  if (element) element.textContent = text;
}

async function poll() {
  try {
    const response = await fetch(facts.dataset.sweepProgress, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    set("units", `${state.units_done} of ${state.units_total}`);
    set("perturbations", String(state.perturbations));
    set(
      "rate",
      state.perturbations_per_second == null ? "–" : `${state.perturbations_per_second.toFixed(1)} perturbed images/s`,
    );
    if (["succeeded", "failed", "cancelled"].includes(state.status)) return;
  } catch (error) {
    set("rate", "unavailable, retrying…");
  }
  setTimeout(poll, POLL_MS);
}

if (facts) poll();
