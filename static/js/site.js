// Small behaviours the pages ask for with data- attributes (no inline handlers: the Content-Security-Policy
// refuses them). Every page still works without JavaScript.
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLElement && field.matches("[data-submit-on-change]") && field.form) {
    field.form.requestSubmit();
  }
});
