(function () {
  const all = document.getElementById("pick-all");
  if (!all) return;
  all.addEventListener("change", () => {
    document.querySelectorAll('#pick-form input[name=pick]').forEach(c => c.checked = all.checked);
  });
})();
