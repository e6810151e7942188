// Copy buttons: data-copy holds the value, data-copy-target the id of an element to copy.
document.addEventListener("click", function (event) {
  var button = event.target.closest(".copy-button");
  if (!button) return;
  var value = button.dataset.copy;
  if (value === undefined && button.dataset.copyTarget) {
    value = document.getElementById(button.dataset.copyTarget).textContent;
  }
  var label = button.textContent;
  function done(text) {
    button.textContent = text;
    button.classList.add("copied");
    setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1800);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(value).then(function () { done("Copied"); }, function () { done("Press Ctrl+C"); });
  } else {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done("Copied"); } catch (e) { done("Press Ctrl+C"); }
    document.body.removeChild(area);
  }
});
