// What every page needs without inline code (the Content-Security-Policy allows none):
// - data-percent="N" on a progress bar's inner span sets its width to N %;
// - a form with data-confirm="question" asks that question before it is sent.

for (const bar of document.querySelectorAll("[data-percent]")) {
  const percent = Math.min(100, Math.max(0, Number(bar.dataset.percent) || 0));
  bar.style.width = `${percent}%`;
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
