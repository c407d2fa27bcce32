(function () {
  const form = document.getElementById("template-form");
  function sync() {
    const kind = (form.querySelector("input[name=kind]:checked") || {}).value;
    const validity = (form.querySelector("input[name=validity_type]:checked") || {}).value;
    form.querySelectorAll(".kind-discount").forEach(e => e.hidden = kind !== "discount");
    form.querySelectorAll(".kind-threshold").forEach(e => e.hidden = kind !== "threshold");
    form.querySelectorAll(".validity-fixed").forEach(e => e.hidden = validity !== "fixed");
    form.querySelectorAll(".validity-relative").forEach(e => e.hidden = validity !== "relative");
    const all = form.querySelector("input[name=all_products]");
    const products = document.getElementById("div_id_products");
    if (all && products) products.hidden = all.checked;
    const fv = document.querySelector("label[for=id_face_value]");
    if (fv) fv.textContent = kind === "discount" ? "Upper limit per use" : "Face value";
    const help = document.getElementById("id_face_value_helptext");
    if (help) help.textContent = {
      cash: "What the coupon is worth, spent down across bills until used up.",
      threshold: "What the coupon takes off a bill line that reaches the minimum amount.",
      discount: "The most one use can take off a bill line.",
    }[kind] || "";
  }
  form.addEventListener("change", sync);
  sync();
  const errors = document.getElementById("form-errors");
  if (errors) errors.focus();
})();
