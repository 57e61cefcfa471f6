/* registry-auth-proxy web catalog: optional niceties; every page works without this file.
   Never builds HTML: it only sets textContent and the hidden property. */
(function () {
  "use strict";
  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    var text = target.textContent;
    var done = function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
  }
  function filter(input) {
    var list = document.getElementById(input.getAttribute("data-filter"));
    if (!list) { return; }
    var items = list.querySelectorAll("[data-name]");
    var count = document.getElementById(list.id + "-shown");
    input.addEventListener("input", function () {
      var query = input.value.trim().toLowerCase();
      var shown = 0;
      for (var i = 0; i < items.length; i++) {
        var hit = items[i].getAttribute("data-name").toLowerCase().indexOf(query) !== -1;
        items[i].hidden = !hit;
        if (hit) { shown++; }
      }
      if (count) { count.textContent = query ? shown + " of " + items.length + " on this page match" : ""; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    document.querySelectorAll("input[data-filter]").forEach(filter);
  });
})();
