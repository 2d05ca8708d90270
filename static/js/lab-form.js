// The lab's launch form shows only the options of the chosen method; without JavaScript all are shown and
// the server uses the chosen method's.

const form = document.getElementById("lab-form");

if (form) {
  const method = form.querySelector('select[name="method"]');
  const show = () => {
    form.querySelectorAll(".method-options").forEach((fieldset) => {
      fieldset.hidden = fieldset.dataset.method !== method.value;
    });
  };
  method.addEventListener("change", show);
  show();
}
