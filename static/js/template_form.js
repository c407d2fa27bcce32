// The create-template form shows only the terms that apply to the chosen kind and validity
// (each term's row says which in data-kinds / data-validity, from coupons/validators.py),
// hides the products list while "All products" is ticked, and notes a fixed window that
// starts before the platform's today. The server checks every term whatever is shown.
(function () {
  const form = document.getElementById("template-form");
  if (!form) return;
  // Words from Django's JavaScript catalog (djangojs, loaded before this script).
  const _ = window.gettext || ((text) => text);
  const fill = window.interpolate
    || ((text, values) => text.replace(/%\((\w+)\)s/g, (m, name) => values[name]));
  const checked = (name) => (form.querySelector(`input[name=${name}]:checked`) || {}).value;
  const applies = (element, attribute, value) => {
    const list = element.dataset[attribute];
    return list === undefined || list.split(" ").includes(value);
  };
  const pastNote = document.createElement("div");
  pastNote.className = "form-text text-warning-emphasis";
  pastNote.id = "valid-from-past";
  function sync() {
    const kind = checked("kind");
    const validity = checked("validity_type");
    form.querySelectorAll("[data-kinds], [data-validity]").forEach((element) => {
      element.hidden = !(applies(element, "kinds", kind) && applies(element, "validity", validity));
    });
    // The face value means what the chosen kind makes of it (data-help-<kind>).
    const faceValue = form.querySelector("input[name=face_value]");
    const faceHelp = document.getElementById("id_face_value_helptext");
    const help = faceValue && kind && faceValue.getAttribute(`data-help-${kind}`);
    if (faceHelp && help) faceHelp.textContent = help;
    const all = form.querySelector("input[name=all_products]");
    form.querySelectorAll("[data-unless=all_products]").forEach((element) => {
      element.hidden = Boolean(all && all.checked);
    });
    const start = form.querySelector("input[name=valid_from]");
    if (start) {
      const past = validity === "fixed" && start.value && start.value < start.dataset.today;
      pastNote.textContent = past
        ? fill(_("Starts before today (%(today)s): the days already gone count toward the window."),
          { today: start.dataset.today }, true)
        : "";
      if (!pastNote.isConnected) start.insertAdjacentElement("afterend", pastNote);
    }
  }
  form.addEventListener("change", sync);
  form.addEventListener("input", sync);
  sync();
  const errors = document.getElementById("form-errors");
  if (errors) errors.focus();
})();
