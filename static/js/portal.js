// Copy buttons: data-copy holds the value, data-copy-target the id of an element to copy.
document.addEventListener("click", function (event) {
  var button = event.target.closest(".copy-button");
  if (!button) return;
  var value = button.dataset.copy;
  if (value === undefined && button.dataset.copyTarget) {
    value = document.getElementById(button.dataset.copyTarget).textContent;
  }
  var label = button.textContent;
  // The words come from the page, in its language; the status region reads them out.
  var status = document.getElementById("copy-status");
  function done(copied) {
    var text = copied ? status.dataset.copied : status.dataset.failed;
    button.textContent = text;
    status.textContent = text;
    button.classList.add("copied");
    setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1800);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(value).then(function () { done(true); }, function () { done(false); });
  } else {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(true); } catch (e) { done(false); }
    document.body.removeChild(area);
  }
});

// An error summary takes the focus when its page loads, so that it is read out first
// (GOV.UK error summary); its links move the focus to the field in error.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
});
document.addEventListener("click", function (event) {
  var link = event.target.closest("[data-error-summary] a[href^='#']");
  if (!link) return;
  var field = document.getElementById(link.getAttribute("href").slice(1));
  if (!field) return;
  event.preventDefault();
  var group = field.closest("fieldset") || field.closest(".field");
  (group || field).scrollIntoView();
  field.focus();
});
