// The cost of the sweep on the "Launch sweep" form, updated as cases are ticked and the mode changes:
// perturbed images to evaluate and, when a sweep of these models has run here, the time at its measured rate.

const form = document.getElementById("sweep-form");

function formatDuration(seconds) {
  // The same words as reviewapp/views/sweeps.py _format_duration.
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function plannedPerturbations(mode, images, dims, topK) {
  // As reviewapp.selectors.sweeps.sweep_planned_perturbations.
  if (mode === "screening") return images * (2 * Math.min(topK, dims) + 1);
  return 2 * images * dims;
}

function update() {
  const dims = Number(form.dataset.dims || 0);
  const images = form.querySelectorAll('input[name="cases"]:checked').length;
  const mode = form.querySelector('[name="mode"]')?.value || "exact";
  const topK = Number(form.querySelector('[name="screening_top_k"]')?.value || 0);
  const count = plannedPerturbations(mode, images, dims, topK);
  const out = document.getElementById("sweep-estimate");
  out.querySelector('[data-estimate="perturbations"]').textContent = String(count);
  const duration = out.querySelector('[data-estimate="duration"]');
  const rate = Number(form.dataset.perturbationsPerSecond || 0);
  if (duration && rate > 0) duration.textContent = formatDuration(count / rate);
}

if (form) {
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
}
